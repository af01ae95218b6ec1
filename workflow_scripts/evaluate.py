"""Snakemake script of rule `evaluate`: NIv2 exact match and ROUGE-L of one predictions file."""

from pathlib import Path

import polars as pl

from instruct_ablate.evaluate import evaluate_predictions
from instruct_ablate.io import setup_logging
from instruct_ablate.provenance import describe

setup_logging(snakemake.log[0])
evaluate_predictions(
    snakemake.input.predictions,
    Path(snakemake.output.tasks).parent,
    snakemake.params.run,
    task_info=pl.read_parquet(snakemake.input.tasks),
    provenance=describe(snakemake.params.get("code"), snakemake.config),
)
