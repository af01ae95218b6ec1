"""Tokenisation of prompt shards and padding-aware batching (shared by training and prediction)."""

from __future__ import annotations

import random
from typing import Sequence

import polars as pl
import torch
from tqdm.auto import tqdm

from .prompts import fit_prompt

__all__ = ["encode_sources", "encode_targets", "length_grouped_batches", "pad_batch"]


def encode_sources(shard: pl.DataFrame, tokenizer, max_source_length: int, desc: str = "tokenise") -> list[list[int]]:
    """Token ids of each row's prompt, fitted by :func:`instruct_ablate.prompts.fit_prompt`.

    Returns one list of ints per row of ``shard`` (length <= ``max_source_length``,
    special tokens included). Each row is fitted on its own: the demonstrations
    kept depend on the length of its query.
    """

    def count(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    texts = []
    for row in tqdm(
        shard.select("definition_text", "demonstrations", "query").iter_rows(),
        total=shard.height,
        desc=desc,
        unit="prompt",
        mininterval=2.0,
    ):
        text, _ = fit_prompt(row[0], row[1], row[2], count, max_source_length)
        texts.append(text)
    enc = tokenizer(texts, truncation=True, max_length=max_source_length)
    return enc["input_ids"]


def encode_targets(targets: Sequence[str], tokenizer, max_target_length: int) -> list[list[int]]:
    """Token ids of the target strings, ending in the tokenizer's end token, cut at ``max_target_length``.

    A leading ``[CLS]`` (BERT-style tokenizers) is dropped: the model's
    ``decoder_start_token_id`` already starts every decoder input, so the label
    sequence must not repeat it.
    """
    ids = tokenizer(text_target=list(targets), truncation=True, max_length=max_target_length)["input_ids"]
    start = getattr(tokenizer, "cls_token_id", None)
    if start is not None:
        ids = [s[1:] if s and s[0] == start else s for s in ids]
    return ids


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, group_factor: int = 50) -> list[list[int]]:
    """Batches of indices with similar lengths, in a seeded random order.

    Indices are shuffled, cut into mega-batches of ``group_factor * batch_size``,
    each sorted by length (longest first) and cut into batches; the batch order
    is then shuffled. Deterministic in ``seed``. Every index appears once.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = group_factor * batch_size
    batches = []
    for k in range(0, len(order), mega):
        chunk = sorted(order[k : k + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``seqs`` to their longest: ``(ids, mask)``, both ``LongTensor[batch, max_len]``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask
