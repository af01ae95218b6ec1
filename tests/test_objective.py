"""Gradient accumulation leaves the objective unchanged: the mean over a step's target tokens.

The training loop (``train.run_loop``) divides each micro-batch's summed target-token loss by the
step's target tokens and adds the gradients. Whatever the split of a step's rows into micro-batches,
the gradient must equal that of the whole batch's mean loss: checked for both model families.
"""

from __future__ import annotations

import pytest
import torch

from instruct_ablate.families import family_of
from instruct_ablate.models import load_base
from instruct_ablate.prompts import read_shards

SPECS = {
    "seq2seq": {"kind": "t5_random", "config": {"d_model": 32, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2,
                                                "num_heads": 2, "d_kv": 16, "dropout_rate": 0.0}},
    "causal": {"kind": "llama_random", "tokenizer": "tests/data/tiny-bpe",
               "config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "num_key_value_heads": 1, "max_position_embeddings": 512}},
}


def _grads(model, family, prompts, targets, pad_id, splits):
    """Gradients of one step accumulated over micro-batches of the given sizes, as run_loop does."""
    model.zero_grad(set_to_none=True)
    step_tokens = sum(len(t) for t in targets)
    k = 0
    for size in splits:
        batch = family.batch(prompts[k:k + size], targets[k:k + size], pad_id)
        (family.loss_sum(model, batch.inputs) / step_tokens).backward()
        k += size
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("name", list(SPECS))
def test_accumulation_splits_give_the_gradient_of_the_whole_batch(name, sample_shards):
    from pathlib import Path

    spec = dict(SPECS[name])
    if "tokenizer" in spec:
        spec["tokenizer"] = str(Path(__file__).resolve().parents[1] / spec["tokenizer"])
    model, tok = load_base(spec, seed=1)
    model.train()
    family = family_of(spec)
    data = read_shards(sample_shards["test"])  # generation tasks among them: long and short targets.sort(["task", "rank"])
    data = data.with_columns(data["target"].str.len_chars().alias("_n")).sort("_n")
    rows = data[[0, 1, data.height // 3, data.height // 2, data.height - 2, data.height - 1]]
    prompts, targets = family.encode_examples(rows, tok, model, 384, 16)  # rows of different lengths
    assert len({len(t) for t in targets}) > 1 and len({len(p) for p in prompts}) > 1
    whole = _grads(model, family, prompts, targets, tok.pad_token_id, [6])
    for splits in ([3, 3], [1, 5], [2, 2, 2], [1] * 6):
        parts = _grads(model, family, prompts, targets, tok.pad_token_id, splits)
        for a, b in zip(whole, parts):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    # A per-micro-batch mean (the naive accumulation) is a different objective: the test can fail.
    model.zero_grad(set_to_none=True)
    for k in range(0, 6, 3):
        batch = family.batch(prompts[k:k + 3], targets[k:k + 3], tok.pad_token_id)
        (family.loss_sum(model, batch.inputs) / batch.target_tokens / 2).backward()
    naive = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert any(not torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(whole, naive))
