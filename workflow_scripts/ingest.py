"""Snakemake script of rule `ingest`: a NIv2 split part -> tasks and instances Parquet tables."""

from instruct_ablate.ingest import ingest_split, write_ingest
from instruct_ablate.io import setup_logging
from instruct_ablate.labels import TypingRule, read_overrides

setup_logging(snakemake.log[0])
cfg = snakemake.params.cfg
typing = dict(cfg["typing"])
for path in snakemake.input.overrides:
    typing["overrides"] = {**read_overrides(path), **typing.get("overrides", {})}
result = ingest_split(
    cfg["niv2_dir"],
    cfg["split"],
    snakemake.wildcards.part,
    instances_per_task=cfg["instances_per_task"],
    seed=cfg["seed"] or 0,
    skip_missing=bool(cfg["skipped"]),
    typing_rule=TypingRule.from_config(typing),
    limit_tasks=cfg["limit_tasks"],
    train_test_overlap=cfg["train_test_overlap"],
)
write_ingest(result, snakemake.output.tasks, snakemake.output.instances)
