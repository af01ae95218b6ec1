"""instruct-ablate: do models really learn to follow instructions?

A Snakemake pipeline that asks the question of Kung & Peng (ACL 2023) of any
model and any instruction-tuning set in the Super-NaturalInstructions (NIv2)
layout. The package holds the logic, one module per stage of the DAG:

``ingest`` (NIv2 checkout -> Parquet tables), ``labels`` (task type and label
space), ``variants`` (instruction variants: simplified definitions, delusive
demonstrations), ``prompts`` (Tk-Instruct prompt rendering, Parquet shards),
``models`` (loading base models and checkpoints), ``train`` (fine-tuning),
``predict`` (greedy decoding), ``metrics`` (NIv2 exact match and ROUGE-L),
``report`` (summary tables and plots).
"""

__version__ = "0.1.0"
