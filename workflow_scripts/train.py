"""Snakemake script of rule `train`: fine-tune one model on one training variant."""

from instruct_ablate.io import setup_logging
from instruct_ablate.train import TrainingConfig, train

setup_logging(snakemake.log[0])
train(
    snakemake.params.model,
    snakemake.input[0],
    snakemake.output[0],
    TrainingConfig.from_dict(snakemake.params.training),
    instances_per_task=int(snakemake.wildcards.n),
    seed=int(snakemake.wildcards.seed),
    threads=snakemake.threads,
)
