"""Snakemake script of rule `report`: summary tables and plots across all runs, the claims table and figures."""

from pathlib import Path

import polars as pl

from instruct_ablate.io import setup_logging
from instruct_ablate.provenance import describe
from instruct_ablate.report import build_report

setup_logging(snakemake.log[0])
build_report(
    list(snakemake.input.metrics),
    Path(snakemake.output.md).parent,
    title=snakemake.params.title,
    random_expected=pl.read_csv(snakemake.input.random_expected),
    comparisons=snakemake.params.comparisons,
    study=snakemake.params.study,
    **snakemake.params.statistics,
    provenance=describe(snakemake.params.code, snakemake.config),
)
