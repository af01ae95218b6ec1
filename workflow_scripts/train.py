"""Snakemake script of rule `train`: fine-tune one model on one training variant."""

import contextlib

from instruct_ablate.gpu_slots import acquire_gpu
from instruct_ablate.io import setup_logging
from instruct_ablate.train import TrainingConfig, train

setup_logging(snakemake.log[0])
training = dict(snakemake.params.training)
on_gpu = str(training.get("device", "cpu")).startswith("cuda")
# On CUDA: one device per job, pinned through CUDA_VISIBLE_DEVICES before CUDA initialises.
with acquire_gpu() if on_gpu else contextlib.nullcontext() as slot:
    if slot is not None:
        training["device"] = slot.torch_device(training["device"])
    train(
        snakemake.params.model,
        snakemake.input[0],
        snakemake.output[0],
        TrainingConfig.from_dict(training),
        instances_per_task=int(snakemake.wildcards.n),
        seed=int(snakemake.wildcards.seed),
        threads=snakemake.threads,
    )
