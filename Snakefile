# instruct-ablate: do models really learn to follow instructions? (Kung & Peng, ACL 2023)
# NIv2 task files -> Parquet tables -> instruction-variant prompt shards -> fine-tuning
# -> per-task predictions -> NIv2 metrics -> summary tables and plots.

from snakemake.utils import min_version

min_version("9.0")


# The workflow's config.yaml is the default; a --configfile given on the command line replaces it
# (no merging, so a config of your own never inherits the default's models or variants).
# --config KEY=VALUE still overrides single keys.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/prompts.smk"
include: "rules/train.smk"
include: "rules/predict.smk"
include: "rules/baselines.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        report_outputs(),
