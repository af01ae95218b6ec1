"""Greedy decoding of a variant's test prompts with a fine-tuned or an untuned model.

NIv2 and Kung & Peng (2023) decode greedily with at most 128 new tokens. The
decoder here does the same work as ``model.generate(do_sample=False,
num_beams=1)`` run on one prompt at a time, but batched without waste (the
per-batch decoding is the model family's, :mod:`instruct_ablate.families`:
encoder-decoders right-pad and run the encoder once; decoder-only models
left-pad with matching position ids and prefill once):

* prompts are sorted by token length (longest first), so a batch pads little;
* a batch holds as many prompts as fit a **token budget**
  (``rows x (longest prompt + max_new_tokens) <= batch_tokens``), so short prompts
  go in large batches and long ones in small batches, at a bounded memory;
* the prompt is read once per batch; the decoder reuses its key/value cache
  and each step feeds one token per sequence;
* a sequence that emits its end token leaves the batch: its rows are dropped
  from the cache, so the remaining steps compute only on unfinished sequences
  (``model.generate`` keeps finished rows until the whole batch is done);
* when few sequences of a batch are still running (long outputs among short
  ones), they are handed over to a pool of such stragglers from every batch,
  which is decoded in full batches, each going on from its tokens so far;
* on CUDA the model runs in bf16.

Results are written back in the shard's order. Greedy decoding is a pure
argmax: models whose generation config asks for logits processors
(repetition penalty, n-gram blocking, forced or suppressed tokens, a minimum
length) are decoded with ``model.generate`` per batch instead (same sorting and
budget), so their predictions still follow their own configuration.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

import polars as pl
import torch
from tqdm.auto import tqdm

from .families import ModelFamily, family_for_model, family_of, greedy_decode_seq2seq, load_checkpoint
from .io import write_table
from .models import load_base, resolve_device
from .prompts import read_shards
from .settings import DecodingSettings, TrainingConfig

DECODING = DecodingSettings()  # the defaults, one place

__all__ = ["plan_batches", "greedy_decode", "generate", "predict"]

log = logging.getLogger("instruct_ablate.predict")

# Generation-config fields that change greedy decoding beyond argmax, with their neutral values.
_PROCESSOR_DEFAULTS = {
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "min_length": 0,
    "min_new_tokens": None,
    "bad_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
}


def plan_batches(
    lengths: Sequence[int], *, max_new_tokens: int, batch_tokens: int, max_batch_size: int | None = None
) -> list[list[int]]:
    """Cut prompt indices into batches under a token budget, longest prompts first.

    ``lengths`` are prompt lengths in tokens. Indices are sorted by length
    (descending; ties keep input order) and taken greedily: a batch grows while
    ``rows x (its longest prompt + max_new_tokens) <= batch_tokens`` and, when
    given, ``rows <= max_batch_size``. A prompt that alone exceeds the budget
    gets a batch of its own. Returns lists of indices; every index appears once.
    Raises ``ValueError`` for a non-positive budget.
    """
    if batch_tokens < 1:
        raise ValueError(f"decoding.batch_tokens must be positive, got {batch_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches:
            cur = batches[-1]
            width = lengths[cur[0]] + max_new_tokens  # the first (longest) prompt sets the batch width
            if (len(cur) + 1) * width <= batch_tokens and (max_batch_size is None or len(cur) < max_batch_size):
                cur.append(i)
                continue
        batches.append([i])
    return batches


def _needs_generate(model) -> list[str]:
    """Generation-config fields that ask for more than argmax (then ``model.generate`` decodes)."""
    gen = model.generation_config
    return [k for k, neutral in _PROCESSOR_DEFAULTS.items() if getattr(gen, k, None) not in (None, neutral, [], {})]


def greedy_decode(model, input_ids, attention_mask, **kwargs):
    """Greedy-decode one right-padded batch of an encoder-decoder model (see
    :func:`instruct_ablate.families.greedy_decode_seq2seq`)."""
    return greedy_decode_seq2seq(model, input_ids, attention_mask, **kwargs)


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    sources: list[list[int]],
    *,
    max_new_tokens: int = DECODING.max_new_tokens,
    batch_tokens: int = DECODING.batch_tokens,
    max_batch_size: int | None = DECODING.max_batch_size,
    device: torch.device = torch.device("cpu"),
    handover_every: int | None = DECODING.handover_every,
    desc: str = "predict",
    stats: dict[str, int] | None = None,
    family: ModelFamily | None = None,
) -> list[str]:
    """Greedy-decode each token-id list of ``sources``; return the decoded strings in input order.

    ``model`` must already be on ``device`` (in the dtype to decode in). Batches come from
    :func:`plan_batches`. Straggler hand-over: once a batch has generated
    ``handover_every`` tokens (then 2x, 4x, ... as many), if at most half of its rows are
    still running, those rows leave it and wait in a pool with the stragglers of other
    batches; the pool is decoded in full batches (token budget again), each straggler
    going on from the tokens it has. So a few long outputs never keep a nearly empty
    batch running for the rest of ``max_new_tokens``. ``None`` turns it off.

    Special tokens are skipped and surrounding whitespace stripped. Progress (instances,
    new tokens per second) goes to a tqdm bar and, every tenth of the work, to the log.
    ``stats``, when given, receives counters: batches, handed_over, decoder_positions.
    ``family`` defaults to the model's (:func:`~instruct_ablate.families.family_for_model`); decoding
    stops at any of its :meth:`~instruct_ablate.families.ModelFamily.end_ids`.
    """
    family = family or family_for_model(model)
    pad_id = tokenizer.pad_token_id
    end_ids = family.end_ids(model, tokenizer)
    fallback = _needs_generate(model)
    if fallback:
        log.warning("generation config sets %s: decoding each batch with model.generate", ", ".join(fallback))
    counters = {"batches": 0, "handed_over": 0, "decoder_positions": 0}
    log.info(
        "decoding %d prompts, token budget %d per batch, at most %d new tokens", len(sources), batch_tokens,
        max_new_tokens,
    )
    out: list[str] = [""] * len(sources)
    bar = tqdm(total=len(sources), desc=desc, unit="inst")
    start, new_tokens, done_inst, next_log = time.perf_counter(), 0, 0, 0
    # Work by prefix length: 0 (every prompt) first, then each hand-over level's pool.
    pending: dict[int, list[tuple[int, list[int]]]] = {0: [(i, []) for i in range(len(sources))]}
    while pending:
        level = min(pending)
        items = pending.pop(level)
        handover = None if fallback or not handover_every else (handover_every if level == 0 else 2 * level)
        plan = plan_batches([len(sources[i]) for i, _ in items], max_new_tokens=max_new_tokens,
                            batch_tokens=batch_tokens, max_batch_size=max_batch_size)
        for batch in plan:
            idx = [items[k][0] for k in batch]
            prompts = [sources[i] for i in idx]
            counters["batches"] += 1
            if fallback:
                seqs = family.generate(model, prompts, pad_id=pad_id, end_ids=end_ids, max_new_tokens=max_new_tokens)
                left = []
                new_tokens += sum(len(s) for s in seqs)
            else:
                seqs, computed, left = family.decode(
                    model, prompts, pad_id=pad_id, end_ids=end_ids, max_new_tokens=max_new_tokens,
                    prefixes=[items[k][1] for k in batch] if level else None, handover_at=handover,
                )
                counters["decoder_positions"] += computed
                new_tokens += sum(len(s) for s in seqs) - level * len(seqs)
            if left:
                pending.setdefault(handover, []).extend((idx[r], seqs[r]) for r in left)
                counters["handed_over"] += len(left)
            unfinished = set(left)
            finished = [r for r in range(len(idx)) if r not in unfinished]
            texts = tokenizer.batch_decode([seqs[r] for r in finished], skip_special_tokens=True)
            for r, text in zip(finished, texts):
                out[idx[r]] = text.strip()
            done_inst += len(finished)
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.update(len(finished))
            bar.set_postfix(inst_s=f"{done_inst / elapsed:.1f}", new_tok_s=f"{new_tokens / elapsed:.0f}")
            if done_inst >= next_log or done_inst == len(sources):
                log.info(
                    "%d/%d instances, %.1f instances/s, %.0f new tokens/s",
                    done_inst, len(sources), done_inst / elapsed, new_tokens / elapsed,
                )
                next_log = done_inst + max(1, len(sources) // 10)
    bar.close()
    log.info("%d batches, %d stragglers handed over, %d decoder positions", counters["batches"],
             counters["handed_over"], counters["decoder_positions"])
    if stats is not None:
        stats.update(counters)
    return out


def predict(
    model_source: dict[str, Any],
    shard_dir: str | Path,
    out_path: str | Path,
    *,
    max_source_length: int = TrainingConfig.max_source_length,
    max_new_tokens: int = DECODING.max_new_tokens,
    batch_tokens: int = DECODING.batch_tokens,
    max_batch_size: int | None = DECODING.max_batch_size,
    handover_every: int | None = DECODING.handover_every,
    device: str = TrainingConfig.device,
    bf16: bool = True,
    threads: int | None = None,
) -> pl.DataFrame:
    """Predict every instance of the test shards in ``shard_dir``; write ``out_path`` (Parquet).

    ``model_source`` is ``{"checkpoint": dir}`` (optionally with
    ``"attn_implementation"``) for a fine-tuned model or ``{"base": spec, "seed": int}``
    for the untuned baseline; the prompt format is the checkpoint's (its metadata) or the
    spec's ``prompt_format``. On CUDA with
    ``bf16`` the model decodes in bfloat16, elsewhere in float32. The table has
    one row per instance: ``task``, ``id``, ``category``, ``task_type``,
    ``prediction``, ``references`` (List[String]) and ``source_tokens``.
    """
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" and bf16 else torch.float32
    if "checkpoint" in model_source:
        model, tokenizer, family = load_checkpoint(model_source["checkpoint"], model_source.get("attn_implementation"),
                                                   dtype=dtype)
    else:
        model, tokenizer = load_base(model_source["base"], seed=int(model_source.get("seed", 0)), dtype=dtype)
        family = family_of(model_source["base"])
    model.to(device=dev, dtype=dtype)
    data = read_shards(shard_dir).sort(["task", "rank"])
    max_src = family.source_limit(model, max_source_length, max_new_tokens)
    sources = family.encode_prompts(data, tokenizer, model, max_src, max_new_tokens)
    log.info("%s model, %s prompts of at most %d tokens", family.name, family.prompt_format, max_src)
    start = time.perf_counter()
    preds = generate(
        model, tokenizer, sources, max_new_tokens=max_new_tokens, batch_tokens=batch_tokens,
        max_batch_size=max_batch_size, handover_every=handover_every, device=dev, family=family,
    )
    elapsed = time.perf_counter() - start
    log.info(
        "predicted %d instances in %.1f s (%.1f instances/s) on %s in %s",
        len(preds), elapsed, len(preds) / max(elapsed, 1e-9), dev, str(dtype).removeprefix("torch."),
    )
    table = data.select("task", "id", "category", "task_type").with_columns(
        pl.Series("prediction", preds, dtype=pl.String),
        data["references"],
        pl.Series("source_tokens", [len(s) for s in sources], dtype=pl.Int32),
    )
    write_table(table, out_path)
    return table
