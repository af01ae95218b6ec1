"""Benchmark: build the DAG of a full study with `snakemake -n` and print the time it takes.

The grid is a real configuration's: NIv2's default split (756 seen + 119 unseen tasks), 6 instruction
variants, 5 instances-per-task sizes, 3 seeds, one model on CUDA, delusive demonstrations at test time.
Task files are stand-ins (the dry run only checks that they exist), so no NIv2 clone is needed.

Usage: python benchmarks/dag_full_grid.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def make_checkout(root: Path, n_train: int = 756, n_test: int = 119) -> None:
    split = root / "splits" / "default"
    split.mkdir(parents=True)
    (root / "tasks").mkdir()
    for part, n in (("train", n_train), ("test", n_test)):
        names = [f"task{part}{k:04d}_standin" for k in range(n)]
        (split / f"{part}_tasks.txt").write_text("\n".join(names) + "\n")
        for name in names:
            (root / "tasks" / f"{name}.json").write_text("{}")


def config(niv2: Path) -> dict:
    cfg = yaml.safe_load((REPO / "configs" / "paper-t5-large.yaml").read_text())
    cfg["niv2_dir"] = str(niv2)
    cfg["variants"]["negative_delusive"] = {
        "definition": "original",
        "demonstrations": {"count": 2, "kind": "delusive", "method": "negative_as_positive"},
    }
    cfg["training_variants"] = list(cfg["variants"])
    cfg["data"]["instances_per_task"] = [10, 20, 50, 200, 800]
    cfg["seeds"] = [1, 2, 3]
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="dry runs to time (default 3)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_checkout(tmp / "niv2")
        cfg = config(tmp / "niv2")
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
        cmd = [
            sys.executable, "-m", "snakemake", "-n", "--quiet", "rules",
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp / "work"),
            "--configfile", str(tmp / "config.yaml"), "--cores", "8", "--resources", "gpu=2",
        ]
        times, jobs = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
            m = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
            jobs = int(m.group(1)) if m else None
        print(f"grid: 756 seen + 119 unseen tasks, {len(cfg['training_variants'])} variants, "
              f"{len(cfg['data']['instances_per_task'])} sizes, {len(cfg['seeds'])} seeds")
        print(f"jobs planned: {jobs}")
        print(f"snakemake -n wall time: median {statistics.median(times):.2f} s, "
              f"min {min(times):.2f} s, max {max(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
