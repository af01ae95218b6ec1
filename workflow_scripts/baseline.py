"""Snakemake script of rule `baseline`: random or majority-label predictions on the unseen tasks."""

import polars as pl

from instruct_ablate.baselines import baseline_predictions
from instruct_ablate.io import setup_logging, write_table

log = setup_logging(snakemake.log[0])
preds = baseline_predictions(
    pl.read_parquet(snakemake.input.tasks),
    pl.read_parquet(snakemake.input.instances),
    snakemake.wildcards.baseline,
    seed=snakemake.params.seed,
)
write_table(preds, snakemake.output[0])
log.info("%s baseline: %d predictions", snakemake.wildcards.baseline, preds.height)
