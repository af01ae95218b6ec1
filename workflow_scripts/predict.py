"""Snakemake script of rules `predict` and `predict_untuned`: greedy predictions on test prompts."""

from instruct_ablate.gpu_slots import job_device
from instruct_ablate.io import setup_logging
from instruct_ablate.predict import predict

setup_logging(snakemake.log[0])
# Batching settings come from the config, not params: they give identical predictions, so no rerun trigger.
d = {**snakemake.config.get("decoding", {}), **snakemake.params.decoding}
if "model" in snakemake.input.keys():
    source = {"checkpoint": snakemake.input.model, "attn_implementation": d.get("attn_implementation")}
else:
    source = {"base": snakemake.params.model, "seed": snakemake.params.seed or 0}
# On CUDA: one device per job, pinned through CUDA_VISIBLE_DEVICES before CUDA initialises.
with job_device(d["device"]) as device:
    predict(
        source,
        snakemake.input.prompts,
        snakemake.output[0],
        max_source_length=d["max_source_length"],
        max_new_tokens=d["max_new_tokens"],
        batch_tokens=d.get("batch_tokens", 16384),
        max_batch_size=d.get("max_batch_size"),
        handover_every=d.get("handover_every", 8),
        device=device,
        bf16=d["bf16"],
        threads=snakemake.threads,
    )
