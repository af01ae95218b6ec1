"""Snakemake script of rule `train`: fine-tune one model on one training variant (resumable)."""

from instruct_ablate.gpu_slots import job_device
from instruct_ablate.io import setup_logging
from instruct_ablate.provenance import describe
from instruct_ablate.train import Checkpointing, TrainingConfig, train

setup_logging(snakemake.log[0])
training = dict(snakemake.params.training)
# On CUDA: one device per job, pinned through CUDA_VISIBLE_DEVICES before CUDA initialises.
with job_device(training.get("device", "cpu")) as device:
    training["device"] = device
    train(
        snakemake.params.model,
        snakemake.input[0],
        snakemake.output[0],
        TrainingConfig.from_dict(training),
        instances_per_task=int(snakemake.wildcards.n),
        seed=int(snakemake.wildcards.seed),
        threads=snakemake.threads,
        resume_dir=snakemake.params.resume_dir,
        # Read from the config, not params: how often to save does not change the weights, so it is no rerun trigger.
        checkpointing=Checkpointing.from_dict(snakemake.config.get("checkpointing")),
        provenance=describe(snakemake.params.get("code"), snakemake.config),
    )
