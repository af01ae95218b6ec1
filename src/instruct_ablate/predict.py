"""Greedy decoding of a variant's test prompts with a fine-tuned or an untuned model.

NIv2 and Kung & Peng (2023) decode greedily with at most 128 new tokens. The
decoder here does the same work as ``model.generate(do_sample=False,
num_beams=1)`` run on one prompt at a time, but batched without waste:

* prompts are sorted by token length (longest first), so a batch pads little;
* a batch holds as many prompts as fit a **token budget**
  (``rows x (longest prompt + max_new_tokens) <= batch_tokens``), so short prompts
  go in large batches and long ones in small batches, at a bounded memory;
* the encoder runs once per batch; the decoder reuses its key/value cache
  (self- and cross-attention) and each step feeds one token per sequence;
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

from .batching import encode_sources, pad_batch
from .io import write_table
from .models import load_base, load_checkpoint, resolve_device, source_length_limit
from .prompts import read_shards

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


def _special_ids(model) -> tuple[int, int]:
    gen = model.generation_config
    start = gen.decoder_start_token_id
    if start is None:
        start = model.config.decoder_start_token_id
    eos = gen.eos_token_id if gen.eos_token_id is not None else model.config.eos_token_id
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if len(eos) == 1 else list(eos)
    if start is None or eos is None:
        raise ValueError("the model's generation config names no decoder_start_token_id or eos_token_id")
    return int(start), eos


def _needs_generate(model) -> list[str]:
    """Generation-config fields that ask for more than argmax (then ``model.generate`` decodes)."""
    gen = model.generation_config
    return [k for k, neutral in _PROCESSOR_DEFAULTS.items() if getattr(gen, k, None) not in (None, neutral, [], {})]


@torch.inference_mode()
def greedy_decode(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    prefixes: list[list[int]] | None = None,
    handover_at: int | None = None,
) -> tuple[list[list[int]], int, list[int]]:
    """Greedy-decode one batch of an encoder-decoder model; drop each sequence from the batch at its end token.

    ``input_ids`` and ``attention_mask`` are ``LongTensor[rows, width]`` (right-padded, on
    the model's device). ``prefixes``: tokens already generated for each row, all of
    one length ``p`` (decoding goes on from there: the decoder reads start token +
    prefix in one pass, then one token per step). ``handover_at``: at that many
    generated tokens, if at most half of the batch's rows are still running, stop and
    hand them over (see :func:`generate`).

    Returns ``(tokens, decoder_positions, handed_over)``: for each row its generated
    token ids (prefix included, start and end tokens excluded, at most
    ``max_new_tokens``), the number of decoder positions computed, and the rows handed
    over unfinished. Follows ``transformers``' greedy search (argmax of the last
    position's logits, KV cache reused), which it matches token for token.
    """
    from transformers.modeling_outputs import BaseModelOutput

    start, eos = _special_ids(model)
    dev = input_ids.device
    eos_ids = torch.tensor(eos if isinstance(eos, list) else [eos], device=dev)
    rows = input_ids.shape[0]
    tokens: list[list[int]] = [list(p) for p in prefixes] if prefixes else [[] for _ in range(rows)]
    done_len = len(tokens[0]) if rows else 0
    if any(len(t) != done_len for t in tokens):
        raise ValueError("greedy_decode: every prefix of a batch must have the same length")
    hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask
    alive = torch.arange(rows, device=dev)
    step_input = torch.tensor([[start, *t] for t in tokens], dtype=torch.long, device=dev)
    cache, computed = None, 0
    for generated in range(done_len, max_new_tokens):
        out = model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
            attention_mask=mask,
            decoder_input_ids=step_input,
            past_key_values=cache,
            use_cache=True,
        )
        computed += int(step_input.numel())
        cache = out.past_key_values
        next_tok = out.logits[:, -1, :].argmax(dim=-1)
        done = torch.isin(next_tok, eos_ids)
        for row, tok, fin in zip(alive.tolist(), next_tok.tolist(), done.tolist()):
            if not fin:
                tokens[row].append(tok)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            hidden, mask, alive, next_tok = hidden[keep], mask[keep], alive[keep], next_tok[keep]
        if handover_at is not None and generated + 1 == handover_at < max_new_tokens and 2 * alive.numel() <= rows:
            return tokens, computed, alive.tolist()
        step_input = next_tok[:, None]
    return tokens, computed, []


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    sources: list[list[int]],
    *,
    max_new_tokens: int = 128,
    batch_tokens: int = 16384,
    max_batch_size: int | None = None,
    device: torch.device = torch.device("cpu"),
    handover_every: int | None = 8,
    desc: str = "predict",
    stats: dict[str, int] | None = None,
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
    """
    pad_id = tokenizer.pad_token_id
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
            ids, mask = pad_batch([sources[i] for i in idx], pad_id)
            ids, mask = ids.to(device), mask.to(device)
            counters["batches"] += 1
            if fallback:
                gen = model.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1
                )
                seqs, left = gen.tolist(), []
                new_tokens += int((gen[:, 1:] != pad_id).sum())
            else:
                seqs, computed, left = greedy_decode(
                    model, ids, mask, max_new_tokens=max_new_tokens,
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
    max_source_length: int = 1024,
    max_new_tokens: int = 128,
    batch_tokens: int = 16384,
    max_batch_size: int | None = None,
    handover_every: int | None = 8,
    device: str = "auto",
    bf16: bool = True,
    threads: int | None = None,
) -> pl.DataFrame:
    """Predict every instance of the test shards in ``shard_dir``; write ``out_path`` (Parquet).

    ``model_source`` is ``{"checkpoint": dir}`` (optionally with
    ``"attn_implementation"``) for a fine-tuned model or ``{"base": spec, "seed": int}``
    for the untuned baseline. On CUDA with
    ``bf16`` the model decodes in bfloat16, elsewhere in float32. The table has
    one row per instance: ``task``, ``id``, ``category``, ``task_type``,
    ``prediction``, ``references`` (List[String]) and ``source_tokens``.
    """
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    if "checkpoint" in model_source:
        model, tokenizer = load_checkpoint(model_source["checkpoint"], model_source.get("attn_implementation"))
    else:
        model, tokenizer = load_base(model_source["base"], seed=int(model_source.get("seed", 0)))
    dtype = torch.bfloat16 if dev.type == "cuda" and bf16 else torch.float32
    model.to(device=dev, dtype=dtype)
    data = read_shards(shard_dir).sort(["task", "rank"])
    max_src = source_length_limit(model, max_source_length)
    sources = encode_sources(data, tokenizer, max_src, desc="tokenise test")
    start = time.perf_counter()
    preds = generate(
        model, tokenizer, sources, max_new_tokens=max_new_tokens, batch_tokens=batch_tokens,
        max_batch_size=max_batch_size, handover_every=handover_every, device=dev,
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
