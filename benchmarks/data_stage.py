"""Benchmark: the data stage (ingest + prompt shards) over every task of an NIv2 checkout, in tasks per second.

Runs the same library calls as the rules `ingest` and `prompts` (read and check each task file,
sample instances, type the task, render every instruction variant of config.yaml in Tk-Instruct's
encoding, write Parquet shards), for the training and the test part of the split, and prints the
time of each step. Task files absent from a partial copy (../shared/niv2) are skipped and counted.

Example (the figures in the README came from this):
  python benchmarks/data_stage.py                      # ../shared/niv2, split default, config.yaml's variants
  python benchmarks/data_stage.py --instances-per-task 800
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml
from _common import REPO, default_niv2, machine, print_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Example" + __doc__.split("Example")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--niv2", type=Path, default=default_niv2(), help="NIv2 checkout (default: ../shared/niv2)")
    p.add_argument("--split", default=None, help="default: 'default' for a full layout, 'sample' for the sample")
    p.add_argument("--instances-per-task", type=int, default=100, help="training instances per task")
    p.add_argument("--config", type=Path, default=REPO / "config.yaml", help="variants and typing rule from here")
    a = p.parse_args()

    from instruct_ablate.ingest import ingest_split, write_ingest
    from instruct_ablate.labels import TypingRule, read_overrides
    from instruct_ablate.prompts import render_variant, write_shards
    from instruct_ablate.variants import SimplifiedTemplates, VariantSpec

    cfg = yaml.safe_load(a.config.read_text())
    split = a.split or ("sample" if a.niv2.name == "niv2-sample" else "default")
    typing = dict(cfg.get("task_typing", {}))
    overrides_file = typing.pop("overrides_file", None)
    if overrides_file:
        typing["overrides"] = {**read_overrides(REPO / overrides_file), **typing.get("overrides", {})}
    rule = TypingRule.from_config(typing)
    templates = SimplifiedTemplates.from_config(cfg.get("simplified_definition"))
    variants = [VariantSpec.from_config(n, v) for n, v in cfg["variants"].items()]
    print(f"# data stage: {a.niv2} (split {split}) on {machine()}; variants: {', '.join(v.name for v in variants)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for part, n in (("train", a.instances_per_task), ("test", cfg.get("data", {}).get("test_instances_per_task", 100))):
            t0 = time.perf_counter()
            result = ingest_split(a.niv2, split, part, instances_per_task=n, seed=42, skip_missing=True,
                                  typing_rule=rule)
            write_ingest(result, Path(tmp) / part / "tasks.parquet", Path(tmp) / part / "instances.parquet")
            n_tasks = result.tasks.height
            rows.append({"step": f"ingest {part}", "tasks": n_tasks, "instances": result.instances.height,
                         "seconds": time.perf_counter() - t0, "skipped": len(result.skipped)})
            for spec in variants:
                t0 = time.perf_counter()
                prompts, audit = render_variant(result.tasks, result.instances, spec, seed=42, templates=templates)
                write_shards(prompts, audit, Path(tmp) / "prompts" / spec.name / part, 50, meta={"part": part})
                rows.append({"step": f"prompts {spec.name}/{part}", "tasks": n_tasks, "instances": prompts.height,
                             "seconds": time.perf_counter() - t0})
    for r in rows:
        r["tasks_s"] = r["tasks"] / r["seconds"]
        r["inst_s"] = r["instances"] / r["seconds"]
    total = sum(r["seconds"] for r in rows)
    task_files = sum(r["tasks"] for r in rows if r["step"].startswith("ingest"))
    print_table(rows, [("step", "step", ""), ("tasks", "tasks", "d"), ("instances", "instances", "d"),
                       ("seconds", "seconds", ".2f"), ("tasks_s", "tasks/s", ".1f"), ("inst_s", "instances/s", ".0f"),
                       ("skipped", "absent (skipped)", "")])
    print(f"whole data stage: {task_files} tasks through ingest and {len(variants)} variants in {total:.1f} s "
          f"= {task_files / total:.1f} tasks/s")


if __name__ == "__main__":
    main()
