"""Prompt rendering in Tk-Instruct's encoding, and Parquet prompt shards.

Source followed: ``src/ni_collator.py`` of yizhongw/Tk-Instruct (Wang et al. 2022),
the encoding NIv2's models and Kung & Peng (2023) use::

    Definition: {definition}.\\n\\n
     Positive Example 1 -\\nInput: {input}.\\n Output: {output}.\\n\\n
     Positive Example 2 -\\n...
    Now complete the following example -\\nInput: {input}.\\nOutput:{space}

(a ``.`` is added to a field that does not end in punctuation). Demonstrations
are kept only while the whole prompt fits in ``max_source_length`` tokens;
the prompt is then cut to that length (:func:`fit_prompt`), so demonstrations
are dropped before the instance is cut.

A shard row keeps the rendered pieces (``definition_text``, ``demonstrations``,
``query``) apart so that each model fits them with its own tokenizer and
length limit; ``prompt`` is their concatenation, for reading.
"""

from __future__ import annotations

import logging
import random
import string
from pathlib import Path
from typing import Callable, Sequence

import polars as pl

from .io import atomic_dir, stable_seed, write_json
from .variants import SimplifiedTemplates, VariantSpec, choose_demonstrations, task_simplified_definition

__all__ = [
    "render_definition",
    "render_demonstration",
    "render_query",
    "fit_prompt",
    "render_variant",
    "write_shards",
    "read_shards",
    "SHARD_SCHEMA",
]

log = logging.getLogger("instruct_ablate.prompts")

SHARD_SCHEMA = {
    "task": pl.String,
    "id": pl.String,
    "category": pl.String,
    "task_type": pl.String,
    "rank": pl.Int32,
    "definition_text": pl.String,
    "demonstrations": pl.List(pl.String),
    "query": pl.String,
    "prompt": pl.String,
    "target": pl.String,
    "references": pl.List(pl.String),
}


def _period(text: str) -> str:
    return text if text and text[-1] in string.punctuation else text + "."


def render_definition(definition: str) -> str:
    """``"Definition: {definition}.\\n\\n"``, or ``""`` for an empty definition."""
    definition = definition.strip()
    if not definition:
        return ""
    return _period("Definition: " + definition) + "\n\n"


def render_demonstration(index: int, input_text: str, output_text: str) -> str:
    """One demonstration block, ``index`` counting from 1 (Tk-Instruct's positive-example format)."""
    block = _period(f" Positive Example {index} -\nInput: {input_text.strip()}") + "\n"
    block = _period(block + f" Output: {output_text.strip()}") + "\n"
    return block + "\n"


def render_query(input_text: str) -> str:
    """The instance to complete: ``"Now complete the following example -\\nInput: ….\\nOutput: "``."""
    return _period(f"Now complete the following example -\nInput: {input_text.strip()}") + "\nOutput: "


def fit_prompt(
    definition_text: str,
    demonstrations: Sequence[str],
    query: str,
    count_tokens: Callable[[str], int],
    max_source_length: int,
) -> tuple[str, int]:
    """Assemble the prompt, keeping demonstrations only while it fits (Tk-Instruct's rule).

    ``count_tokens(text)`` returns the model's token count of ``text`` with its
    special tokens. Returns ``(text, n_demonstrations_kept)``; ``text`` may
    still exceed ``max_source_length`` (definition + instance alone too long):
    the caller's tokenizer then cuts it (``truncation=True``), cutting the
    instance, never a demonstration.
    """
    kept: list[str] = []
    for demo in demonstrations:
        # Tk-Instruct measures with " ".join of the kept blocks; we do the same.
        if count_tokens(definition_text + " ".join(kept) + demo + query) <= max_source_length:
            kept.append(demo)
        else:
            break
    return definition_text + "".join(kept) + query, len(kept)


def render_variant(
    tasks: pl.DataFrame,
    instances: pl.DataFrame,
    spec: VariantSpec,
    *,
    seed: int | None,
    templates: SimplifiedTemplates = SimplifiedTemplates(),
    max_rank: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Render every instance of ``instances`` under variant ``spec``.

    Returns ``(prompts, audit)``: ``prompts`` follows :data:`SHARD_SCHEMA`, one
    row per instance with ``rank < max_rank`` (all when ``None``); ``audit`` has
    one row per task with the definition and demonstrations actually shown
    (the reviewable record of simplified definitions and delusive examples) and a
    ``note`` where the task could not be shown what the variant asks for (e.g.
    ``"no positive examples: 0 of 2 demonstrations shown"``; see
    :func:`instruct_ablate.variants.choose_demonstrations`); the ``prompts`` rule
    logs a warning listing those tasks and records them in ``meta.json``.
    ``target`` is one reference chosen with a seeded RNG per instance
    (Tk-Instruct draws ``random.choice`` of the references); with ``seed=None``
    (unseen tasks, where the target is never trained on) it is the first
    reference, and the shards do not depend on the data seed. Delusive
    demonstrations need a seed: ``seed=None`` with a delusive variant raises
    ``ValueError``.
    """
    if seed is None and spec.demonstration_kind == "delusive":
        raise ValueError(f"variant {spec.name}: delusive demonstrations are drawn with the data seed; seed=None given")
    if max_rank is not None:
        instances = instances.filter(pl.col("rank") < max_rank)
    by_task = instances.partition_by("task", as_dict=True, maintain_order=True)
    rows, audit = [], []
    for t in tasks.iter_rows(named=True):
        name = t["task"]
        inst = by_task.get((name,))
        if inst is None:
            continue
        all_outputs = [o for refs in inst["references"].to_list() for o in refs]
        if spec.definition == "original":
            definition = t["definition"]
        elif spec.definition == "simplified":
            definition = task_simplified_definition(t, all_outputs, templates)
        else:
            definition = ""
        demos, note = choose_demonstrations(
            spec,
            name,
            t["task_type"],
            t["label_space"],
            t["positive_examples"],
            t["negative_examples"],
            all_outputs,
            seed,
        )
        definition_text = render_definition(definition)
        blocks = [render_demonstration(i + 1, d["input"], d["output"]) for i, d in enumerate(demos)]
        audit.append(
            {
                "task": name,
                "task_type": t["task_type"],
                "variant": spec.name,
                "definition_shown": definition,
                "demonstrations_shown": demos,
                "note": note,
            }
        )
        rng = random.Random(stable_seed("target", seed, name)) if seed is not None else None
        for r in inst.iter_rows(named=True):
            query = render_query(r["input"])
            rows.append(
                {
                    "task": name,
                    "id": r["id"],
                    "category": t["category"],
                    "task_type": t["task_type"],
                    "rank": r["rank"],
                    "definition_text": definition_text,
                    "demonstrations": blocks,
                    "query": query,
                    "prompt": definition_text + "".join(blocks) + query,
                    "target": rng.choice(r["references"]) if rng else r["references"][0],
                    "references": r["references"],
                }
            )
    prompts = pl.DataFrame(rows, schema=SHARD_SCHEMA)
    audit_df = pl.DataFrame(
        audit,
        schema={
            "task": pl.String,
            "task_type": pl.String,
            "variant": pl.String,
            "definition_shown": pl.String,
            "demonstrations_shown": pl.List(pl.Struct({"input": pl.String, "output": pl.String})),
            "note": pl.String,
        },
    )
    return prompts, audit_df


def write_shards(
    prompts: pl.DataFrame, audit: pl.DataFrame, out_dir: str | Path, tasks_per_shard: int, meta: dict
) -> list[str]:
    """Write ``prompts`` as ``shard-XXXXX.parquet`` files of ``tasks_per_shard`` tasks each, atomically.

    Tasks are assigned to shards in sorted-name order. Also writes
    ``definitions.parquet`` (the per-task audit) and ``meta.json``. Returns the
    shard file names.
    """
    if tasks_per_shard < 1:
        raise ValueError("tasks_per_shard must be >= 1")
    names = sorted(prompts["task"].unique().to_list())
    files = []
    with atomic_dir(out_dir) as tmp:
        for k in range(0, max(len(names), 1), tasks_per_shard):
            group = names[k : k + tasks_per_shard]
            fname = f"shard-{k // tasks_per_shard:05d}.parquet"
            part = prompts.filter(pl.col("task").is_in(group)).sort(["task", "rank"])
            part.write_parquet(tmp / fname, compression="zstd")
            files.append(fname)
        audit.sort("task").write_parquet(tmp / "definitions.parquet", compression="zstd")
        write_json({**meta, "shards": files, "n_rows": prompts.height, "n_tasks": len(names)}, tmp / "meta.json")
    return files


def read_shards(shard_dir: str | Path, max_rank: int | None = None) -> pl.DataFrame:
    """Concatenate the shards of ``shard_dir`` (optionally ``rank < max_rank`` only).

    Raises ``FileNotFoundError`` naming the directory if it holds no shard.
    """
    shard_dir = Path(shard_dir)
    files = sorted(shard_dir.glob("shard-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{shard_dir}: no shard-*.parquet files (was the prompts rule run?)")
    lf = pl.scan_parquet(files)
    if max_rank is not None:
        lf = lf.filter(pl.col("rank") < max_rank)
    return lf.collect()
