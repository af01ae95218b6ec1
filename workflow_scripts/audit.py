"""Snakemake script of rule `audit`: reviewable tables of task types, label spaces, simplified definitions."""

import polars as pl

from instruct_ablate.audit import task_audit
from instruct_ablate.baselines import random_expected_exact_match
from instruct_ablate.io import setup_logging, write_table
from instruct_ablate.variants import SimplifiedTemplates

log = setup_logging(snakemake.log[0])
tasks = pl.concat([pl.read_parquet(snakemake.input.train), pl.read_parquet(snakemake.input.test)])
audit = task_audit(tasks, SimplifiedTemplates.from_config(snakemake.params.simplified))
write_table(audit, snakemake.output.tasks)
expected = random_expected_exact_match(pl.read_parquet(snakemake.input.test), pl.read_parquet(snakemake.input.test_instances))
write_table(expected, snakemake.output.random)
log.info("audit: %d tasks; random baseline expected EM over %d classification tasks", audit.height, expected.height)
