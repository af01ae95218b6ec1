"""Snakemake script of rule `prompts`: tables -> one instruction variant's prompt shards."""

import polars as pl

from instruct_ablate.io import setup_logging
from instruct_ablate.provenance import describe
from instruct_ablate.prompts import render_variant, write_shards
from instruct_ablate.variants import SimplifiedTemplates, VariantSpec

log = setup_logging(snakemake.log[0])
p = snakemake.params
spec = VariantSpec.from_config(snakemake.wildcards.variant, p.variant)
prompts, audit = render_variant(
    pl.read_parquet(snakemake.input.tasks),
    pl.read_parquet(snakemake.input.instances),
    spec,
    seed=p.seed,
    templates=SimplifiedTemplates.from_config(p.simplified),
)
noted = audit.filter(pl.col("note") != "")
files = write_shards(
    prompts,
    audit,
    snakemake.output[0],
    # from the config, not params: the shard layout changes no prompt, so it is no rerun trigger
    snakemake.config["data"]["tasks_per_shard"],
    meta={
        "variant": spec.__dict__,
        "part": snakemake.wildcards.part,
        "seed": p.seed,
        "tasks_with_notes": dict(zip(noted["task"], noted["note"])),
        "provenance": describe(p.code, snakemake.config),
    },
)
log.info("%s/%s: %d prompts of %d tasks in %d shards", spec.name, snakemake.wildcards.part,
         prompts.height, audit.height, len(files))
if noted.height:
    log.warning("%s/%s: %d tasks could not be given the variant's demonstrations as specified "
                "(see definitions.parquet, column note): %s", spec.name, snakemake.wildcards.part,
                noted.height, ", ".join(noted["task"]))
