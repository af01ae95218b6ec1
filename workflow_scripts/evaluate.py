"""Snakemake script of rule `evaluate`: NIv2 exact match and ROUGE-L of one predictions file."""

from pathlib import Path

from instruct_ablate.evaluate import evaluate_predictions
from instruct_ablate.io import setup_logging

setup_logging(snakemake.log[0])
evaluate_predictions(snakemake.input[0], Path(snakemake.output.tasks).parent, snakemake.params.run)
