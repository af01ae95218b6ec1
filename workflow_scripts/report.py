"""Snakemake script of rule `report`: summary tables and plots across all runs."""

from pathlib import Path

from instruct_ablate.io import setup_logging
from instruct_ablate.report import build_report

setup_logging(snakemake.log[0])
build_report(list(snakemake.input), Path(snakemake.output.md).parent, title=snakemake.params.title)
