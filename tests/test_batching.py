"""Tests of instruct_ablate.batching: length-grouped batches, padding and prompt encoding."""

from __future__ import annotations

import random

import polars as pl
import pytest
import torch

from instruct_ablate.batching import encode_sources, encode_targets, length_grouped_batches, pad_batch
from instruct_ablate.prompts import render_definition, render_demonstration, render_query


def _lengths(n: int, seed: int = 0) -> list[int]:
    """Distinct lengths 1..n in a random order."""
    lengths = list(range(1, n + 1))
    random.Random(seed).shuffle(lengths)
    return lengths


@pytest.mark.parametrize("n, batch_size, group_factor", [(1, 4, 50), (10, 3, 50), (257, 8, 4), (100, 100, 1)])
def test_every_index_appears_exactly_once(n, batch_size, group_factor):
    batches = length_grouped_batches(_lengths(n), batch_size, seed=0, group_factor=group_factor)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_no_lengths_give_no_batches():
    assert length_grouped_batches([], 4, seed=0) == []


def test_batches_are_deterministic_per_seed():
    lengths = _lengths(300)
    a = length_grouped_batches(lengths, 8, seed=11, group_factor=5)
    assert a == length_grouped_batches(lengths, 8, seed=11, group_factor=5)
    assert a != length_grouped_batches(lengths, 8, seed=12, group_factor=5)


def test_batches_within_a_mega_batch_have_non_overlapping_length_ranges():
    """With one mega-batch (group_factor * batch_size >= n), the batches cut the length-sorted
    order: the length ranges of two batches never overlap, and each batch is longest first."""
    lengths = _lengths(200, seed=3)
    batches = length_grouped_batches(lengths, 16, seed=5, group_factor=50)
    ranges = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in batches)
    for (lo1, hi1), (lo2, _) in zip(ranges, ranges[1:]):
        assert hi1 < lo2
    for b in batches:
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    # only the shortest batch may be incomplete: 200 = 12 * 16 + 8
    sizes = sorted(len(b) for b in batches)
    assert sizes == [8] + [16] * 12
    assert min(lengths[i] for i in min(batches, key=len)) == 1


def test_grouping_reduces_padding_compared_with_random_batches():
    """Padding waste (sum of max - len) is much smaller than with random batches of the same size."""
    lengths = [random.Random(i).randint(1, 500) for i in range(1000)]

    def waste(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    grouped = length_grouped_batches(lengths, 8, seed=0, group_factor=25)
    order = list(range(1000))
    random.Random(0).shuffle(order)
    plain = [order[k : k + 8] for k in range(0, 1000, 8)]
    assert waste(grouped) < 0.2 * waste(plain)


def test_batch_order_is_shuffled():
    """Batches do not come longest first: the order of batches is itself shuffled."""
    lengths = _lengths(400, seed=1)
    batches = length_grouped_batches(lengths, 10, seed=2, group_factor=100)
    maxima = [max(lengths[i] for i in b) for b in batches]
    assert maxima != sorted(maxima, reverse=True) and maxima != sorted(maxima)


def test_pad_batch_right_pads_and_masks():
    ids, mask = pad_batch([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert ids.dtype == torch.long and mask.dtype == torch.long
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]


def test_pad_batch_with_a_pad_id_that_is_also_a_token():
    """The mask comes from the lengths, not from comparing with pad_id."""
    ids, mask = pad_batch([[1, 1], [1]], pad_id=1)
    assert ids.shape == mask.shape == (2, 2)
    assert ids.tolist() == [[1, 1], [1, 1]]
    assert mask.tolist() == [[1, 1], [1, 0]]


# --------------------------------------------------------------------------- encoding with a real tokenizer


@pytest.fixture(scope="module")
def byt5():
    transformers = pytest.importorskip("transformers")
    return transformers.ByT5Tokenizer()  # byte-level: needs no vocabulary file


def test_encode_sources_fits_each_prompt(byt5):
    """Demonstrations are dropped to fit; a prompt whose query alone is too long is cut to the limit."""
    definition = render_definition("Copy the input")
    demos = [render_demonstration(i + 1, "x" * 40, "y" * 10) for i in range(2)]
    short_q, long_q = render_query("short"), render_query("z" * 500)
    shard = pl.DataFrame(
        {
            "definition_text": [definition, definition, definition],
            "demonstrations": [demos, demos, []],
            "query": [short_q, short_q, long_q],
        }
    )
    full = definition + "".join(demos) + short_q
    limit = len(full.encode()) + 1  # exactly room for both demonstrations and </s>
    ids = encode_sources(shard, byt5, limit)
    assert len(ids) == 3
    assert byt5.decode(ids[0], skip_special_tokens=True) == full
    assert ids[0][-1] == byt5.eos_token_id
    assert all(len(x) <= limit for x in ids)
    assert len(ids[2]) == limit  # truncated, not dropped

    tighter = encode_sources(shard, byt5, limit - 1)
    assert byt5.decode(tighter[0], skip_special_tokens=True) == definition + demos[0] + short_q


def test_encode_targets_cuts_and_ends_with_eos(byt5):
    ids = encode_targets(["Yes", "a" * 50], byt5, max_target_length=8)
    assert ids[0] == [byte + 3 for byte in b"Yes"] + [byt5.eos_token_id]  # ByT5: id = byte + 3
    assert len(ids[1]) == 8 and ids[1][-1] == byt5.eos_token_id
