"""Greedy decoding of a variant's test prompts with a fine-tuned or an untuned model.

NIv2 and Kung & Peng (2023) decode greedily with at most 128 new tokens. Prompts
are sorted by length (longest first) and decoded in batches, with the KV cache,
each sequence stopping at its end token; results are written back in the
shard's order.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch
from tqdm.auto import tqdm

from .batching import encode_sources
from .io import write_table
from .models import load_base, load_checkpoint, resolve_device, source_length_limit
from .prompts import read_shards

__all__ = ["generate", "predict"]

log = logging.getLogger("instruct_ablate.predict")


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    sources: list[list[int]],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 32,
    device: torch.device = torch.device("cpu"),
    bf16: bool = True,
    desc: str = "predict",
) -> list[str]:
    """Greedy-decode each token-id list of ``sources``; return the decoded strings in input order.

    Special tokens are skipped and surrounding whitespace stripped.
    """
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    out: list[str] = [""] * len(sources)
    pad_id = tokenizer.pad_token_id
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if device.type == "cuda" and bf16
        else contextlib.nullcontext()
    )
    bar = tqdm(total=len(sources), desc=desc, unit="inst")
    start, new_tokens = time.perf_counter(), 0
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        width = max(len(sources[i]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(idx):
            ids[row, : len(sources[i])] = torch.tensor(sources[i])
            mask[row, : len(sources[i])] = 1
        with autocast:
            gen = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
            )
        texts = tokenizer.batch_decode(gen, skip_special_tokens=True)
        for i, text in zip(idx, texts):
            out[i] = text.strip()
        new_tokens += int((gen != pad_id).sum())
        bar.update(len(idx))
        bar.set_postfix(new_tok_s=f"{new_tokens / max(time.perf_counter() - start, 1e-9):.0f}")
    bar.close()
    return out


def predict(
    model_source: dict[str, Any],
    shard_dir: str | Path,
    out_path: str | Path,
    *,
    max_source_length: int = 1024,
    max_new_tokens: int = 128,
    batch_size: int = 32,
    device: str = "auto",
    bf16: bool = True,
    threads: int | None = None,
) -> pl.DataFrame:
    """Predict every instance of the test shards in ``shard_dir``; write ``out_path`` (Parquet).

    ``model_source`` is ``{"checkpoint": dir}`` for a fine-tuned model or
    ``{"base": spec, "seed": int}`` for the untuned baseline. The table has one
    row per instance: ``task``, ``id``, ``category``, ``task_type``,
    ``prediction``, ``references`` (List[String]) and ``source_tokens``.
    """
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    if "checkpoint" in model_source:
        model, tokenizer = load_checkpoint(model_source["checkpoint"])
    else:
        model, tokenizer = load_base(model_source["base"], seed=int(model_source.get("seed", 0)))
    model.to(dev)
    data = read_shards(shard_dir).sort(["task", "rank"])
    max_src = source_length_limit(model, max_source_length)
    sources = encode_sources(data, tokenizer, max_src, desc="tokenise test")
    start = time.perf_counter()
    preds = generate(
        model, tokenizer, sources, max_new_tokens=max_new_tokens, batch_size=batch_size, device=dev, bf16=bf16
    )
    elapsed = time.perf_counter() - start
    log.info("predicted %d instances in %.1f s (%.1f instances/s)", len(preds), elapsed, len(preds) / max(elapsed, 1e-9))
    table = data.select("task", "id", "category", "task_type").with_columns(
        pl.Series("prediction", preds, dtype=pl.String),
        data["references"],
        pl.Series("source_tokens", [len(s) for s in sources], dtype=pl.Int32),
    )
    write_table(table, out_path)
    return table
