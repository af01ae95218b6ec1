"""Snakemake script of rules `predict` and `predict_untuned`: greedy predictions on test prompts."""

from instruct_ablate.gpu_slots import job_device
from instruct_ablate.io import setup_logging
from instruct_ablate.predict import predict
from instruct_ablate.settings import DecodingSettings

setup_logging(snakemake.log[0])
d = snakemake.params.decoding
# Batching settings come from the config, not params: they give identical predictions, so no rerun trigger.
batching = DecodingSettings.from_dict(snakemake.config.get("decoding"))
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
        batch_tokens=batching.batch_tokens,
        max_batch_size=batching.max_batch_size,
        handover_every=batching.handover_every,
        device=device,
        bf16=d["bf16"],
        threads=snakemake.threads,
    )
