"""Model families: the few things that differ between encoder-decoder and decoder-only models.

:func:`instruct_ablate.train.train` and :func:`instruct_ablate.predict.predict`
never ask which kind of model they hold; they call the five operations of a
:class:`ModelFamily` (the shape of lm-evaluation-harness's ``LM`` interface):

* ``encode_example`` / ``encode_prompt``: a shard row -> token ids (what the
  model reads, and for training what it must write);
* ``batch``: token ids -> padded tensors with labels;
* ``loss_sum``: the summed cross-entropy over a batch's target tokens;
* ``decode``: batched greedy decoding of a list of prompts;
* saving and loading checkpoints (with LoRA adapters, :mod:`instruct_ablate.lora`).

**Seq2seq** (T5, BART, BERT2BERT): the prompt goes to the encoder, right-padded;
the target (ending in the end token) is the decoder's label sequence.

**Causal LM** (LLaMA, Qwen, Mistral, SmolLM): prompt and target are tokenised
separately and concatenated, the end token appended; the loss covers the target
tokens only (prompt and padding positions are ignored), and the LM head is
applied only at the positions that carry a loss, so no ``[rows, seq, vocab]``
logits tensor is built for the prompt. *Seam rule*: the space between
``Output:`` and the answer belongs to the target. The prompt is right-stripped
(it ends in ``Output:``) and the target is tokenised as ``" " + answer``, which is
how a byte-level BPE tokenises the joined text ``"... Output: answer"``; at
prediction time the prompt is stripped the same way and the decoded answer is
stripped of surrounding whitespace. With ``prompt_format: chat`` the stripped
prompt is the user turn of the tokenizer's chat template and the answer (no
leading space) the assistant turn, ended by the template's end-of-turn token.
Prompts are fitted to ``max_source_length`` keeping the query whole: demonstrations
are dropped first (Tk-Instruct's rule, :func:`~instruct_ablate.prompts.fit_prompt`),
then the definition is cut from its end; a query longer than the budget keeps its
last tokens (it ends in ``Output:``). Prediction left-pads, gives each row its
position ids (``cumsum(mask) - 1``, as ``transformers``' ``generate``), reuses the
KV cache, drops finished rows from the batch and its cache and stops at any of
the model's end tokens.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import polars as pl
import torch
from tqdm.auto import tqdm

from .batching import encode_sources, encode_targets, pad_batch
from .models import CAUSAL_KINDS, load_base, source_length_limit
from .prompts import fit_prompt

__all__ = [
    "ModelFamily",
    "Seq2SeqFamily",
    "CausalLMFamily",
    "Batch",
    "family_of",
    "family_for_model",
    "load_checkpoint",
    "PROMPT_FORMATS",
]

log = logging.getLogger("instruct_ablate.families")

PROMPT_FORMATS = ("text", "chat")
METADATA = "metadata.json"


@dataclass
class Batch:
    """One micro-batch: model inputs (tensors on CPU), its target-token count and the positions it computes."""

    inputs: dict[str, torch.Tensor]
    target_tokens: int
    positions: int


class ModelFamily(ABC):
    """How one family of models reads prompts, is trained and decodes. Stateless but for the prompt format."""

    name: str = ""
    lora_task: str = ""  # peft's TaskType for this family's LoRA adapters

    def __init__(self, prompt_format: str = "text") -> None:
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"models: prompt_format {prompt_format!r} is not one of {PROMPT_FORMATS}")
        self.prompt_format = prompt_format

    # --- data -------------------------------------------------------------------------------------
    @abstractmethod
    def encode_examples(
        self, data: pl.DataFrame, tokenizer, model, max_source_length: int, max_target_length: int
    ) -> tuple[list[list[int]], list[list[int]]]:
        """``(prompts, targets)`` token ids of each shard row (training). Targets end in the end token."""

    @abstractmethod
    def encode_prompts(self, data: pl.DataFrame, tokenizer, model, max_source_length: int, max_new_tokens: int) -> list[list[int]]:
        """Token ids of each shard row's prompt (prediction), fitted exactly as at training time."""

    @abstractmethod
    def batch(self, prompts: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], pad_id: int) -> Batch:
        """Padded model inputs with labels for one micro-batch."""

    @abstractmethod
    def loss_sum(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy summed over the batch's target tokens (float32 scalar, differentiable)."""

    # --- decoding ---------------------------------------------------------------------------------
    @abstractmethod
    def decode(
        self,
        model,
        prompts: Sequence[Sequence[int]],
        *,
        pad_id: int,
        end_ids: Sequence[int],
        max_new_tokens: int,
        prefixes: list[list[int]] | None = None,
        handover_at: int | None = None,
    ) -> tuple[list[list[int]], int, list[int]]:
        """Greedy-decode one batch: ``(tokens per row, positions computed, rows handed over unfinished)``.

        ``tokens`` exclude start, end and padding tokens and include ``prefixes`` (the
        tokens a handed-over row already has). See the implementations.
        """

    @abstractmethod
    def generate(self, model, prompts: Sequence[Sequence[int]], *, pad_id: int, end_ids: Sequence[int],
                 max_new_tokens: int) -> list[list[int]]:
        """``model.generate`` on one batch (models with logits processors): new tokens per row, end excluded."""

    def end_ids(self, model, tokenizer) -> list[int]:
        """Every token that ends an output: the generation config's EOS ids (a list for chat models) and the
        tokenizer's EOS."""
        ids: list[int] = []
        for source in (model.generation_config.eos_token_id, model.config.eos_token_id, tokenizer.eos_token_id):
            for t in source if isinstance(source, (list, tuple)) else [source]:
                if t is not None and int(t) not in ids:
                    ids.append(int(t))
        if not ids:
            raise ValueError("the model names no end token (eos_token_id) in its configs or tokenizer")
        return ids

    def source_limit(self, model, configured: int, generated: int) -> int:
        """The prompt budget in tokens: ``configured`` capped by the model's position limit."""
        return source_length_limit(model, configured)


# ==================================================================================================
# Encoder-decoder
# ==================================================================================================


class Seq2SeqFamily(ModelFamily):
    """T5, BART, BERT2BERT: prompt -> encoder (right-padded), target -> decoder labels."""

    name = "seq2seq"
    lora_task = "SEQ_2_SEQ_LM"

    def __init__(self, prompt_format: str = "text") -> None:
        if prompt_format != "text":
            raise ValueError("models: prompt_format 'chat' is for causal_lm models (encoder-decoders have no chat template)")
        super().__init__(prompt_format)

    def encode_examples(self, data, tokenizer, model, max_source_length, max_target_length):
        sources = encode_sources(data, tokenizer, max_source_length, desc="tokenise train")
        return sources, encode_targets(data["target"].to_list(), tokenizer, max_target_length)

    def encode_prompts(self, data, tokenizer, model, max_source_length, max_new_tokens):
        return encode_sources(data, tokenizer, max_source_length, desc="tokenise test")

    def batch(self, prompts, targets, pad_id):
        ids, mask = pad_batch(prompts, pad_id)
        labels, lmask = pad_batch(targets, pad_id)
        labels[lmask == 0] = -100
        return Batch({"input_ids": ids, "attention_mask": mask, "labels": labels}, int(lmask.sum()),
                     ids.numel() + labels.numel())

    def loss_sum(self, model, inputs):
        out = model(**inputs)
        return out.loss.float() * int((inputs["labels"] != -100).sum())

    @staticmethod
    def start_id(model) -> int:
        start = model.generation_config.decoder_start_token_id
        if start is None:
            start = model.config.decoder_start_token_id
        if start is None:
            raise ValueError("the model's generation config names no decoder_start_token_id")
        return int(start)

    @torch.inference_mode()
    def decode(self, model, prompts, *, pad_id, end_ids, max_new_tokens, prefixes=None, handover_at=None):
        dev = model.device
        ids, mask = pad_batch(prompts, pad_id)
        return greedy_decode_seq2seq(model, ids.to(dev), mask.to(dev), max_new_tokens=max_new_tokens,
                                     prefixes=prefixes, handover_at=handover_at, end_ids=end_ids)

    @torch.inference_mode()
    def generate(self, model, prompts, *, pad_id, end_ids, max_new_tokens):
        ids, mask = pad_batch(prompts, pad_id)
        gen = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=list(end_ids))
        return [_until_end(row[1:], end_ids, pad_id) for row in gen.tolist()]


@torch.inference_mode()
def greedy_decode_seq2seq(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    prefixes: list[list[int]] | None = None,
    handover_at: int | None = None,
    end_ids: Sequence[int] | None = None,
) -> tuple[list[list[int]], int, list[int]]:
    """Greedy-decode one batch of an encoder-decoder model; drop each sequence from the batch at its end token.

    ``input_ids`` and ``attention_mask`` are ``LongTensor[rows, width]`` (right-padded, on
    the model's device). ``prefixes``: tokens already generated for each row, all of
    one length ``p`` (decoding goes on from there: the decoder reads start token +
    prefix in one pass, then one token per step). ``handover_at``: at that many
    generated tokens, if at most half of the batch's rows are still running, stop and
    hand them over (see :func:`instruct_ablate.predict.generate`). ``end_ids``: tokens
    that end a sequence (default: the generation config's EOS).

    Returns ``(tokens, decoder_positions, handed_over)``: for each row its generated
    token ids (prefix included, start and end tokens excluded, at most
    ``max_new_tokens``), the number of decoder positions computed, and the rows handed
    over unfinished. Follows ``transformers``' greedy search (argmax of the last
    position's logits, KV cache reused), which it matches token for token.
    """
    from transformers.modeling_outputs import BaseModelOutput

    start = Seq2SeqFamily.start_id(model)
    if end_ids is None:
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = model.config.eos_token_id
        if eos is None:
            raise ValueError("the model's generation config names no eos_token_id")
        end_ids = list(eos) if isinstance(eos, (list, tuple)) else [eos]
    dev = input_ids.device
    eos_ids = torch.tensor(list(end_ids), device=dev)
    rows = input_ids.shape[0]
    tokens, done_len = _start_tokens(prefixes, rows)
    hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask
    alive = torch.arange(rows, device=dev)
    step_input = torch.tensor([[start, *t] for t in tokens], dtype=torch.long, device=dev)
    cache, computed, cache_kw = None, 0, _cache_kwarg(model)
    for generated in range(done_len, max_new_tokens):
        out = model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
            attention_mask=mask,
            decoder_input_ids=step_input,
            use_cache=True,
            **{cache_kw: cache},
        )
        computed += int(step_input.numel())
        cache = out.past_key_values
        next_tok, done = _greedy_step(out.logits, eos_ids, alive, tokens)
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


def _start_tokens(prefixes: list[list[int]] | None, rows: int) -> tuple[list[list[int]], int]:
    """Each row's tokens so far (copies of ``prefixes``, else empty) and their common length."""
    tokens = [list(p) for p in prefixes] if prefixes else [[] for _ in range(rows)]
    done_len = len(tokens[0]) if rows else 0
    if any(len(t) != done_len for t in tokens):
        raise ValueError("greedy decoding: every prefix of a batch must have the same length")
    return tokens, done_len


def _greedy_step(logits: torch.Tensor, end_ids: torch.Tensor, alive: torch.Tensor,
                 tokens: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax of the last position for each running row; append it to that row unless it is an end token.

    Returns ``(next_tok, done)``, both ``[running rows]``."""
    next_tok = logits[:, -1, :].argmax(dim=-1)
    done = torch.isin(next_tok, end_ids)
    for row, tok, fin in zip(alive.tolist(), next_tok.tolist(), done.tolist()):
        if not fin:
            tokens[row].append(tok)
    return next_tok, done


def _cache_kwarg(model) -> str:
    """The forward argument that takes the KV cache: ``cache`` (transformers >= 5.2x), else ``past_key_values``."""
    import inspect

    forward = type(_inner(model)).forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def _until_end(seq: Sequence[int], end_ids: Sequence[int], pad_id: int | None) -> list[int]:
    """Generated tokens up to (excluding) the first end token; padding dropped."""
    out = []
    for t in seq:
        if t in end_ids:
            break
        if t != pad_id:
            out.append(t)
    return out


# ==================================================================================================
# Decoder-only
# ==================================================================================================


def _inner(model):
    """The ``transformers`` model under a PEFT wrapper (LoRA layers are injected in place), or the model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad ``seqs``: ``(ids, mask, position_ids)``, each ``LongTensor[rows, longest]``.

    Position ids count real tokens from 0 (``cumsum(mask) - 1``, 0 on padding), as
    ``transformers``' ``generate`` computes them, so a left-padded row sees the same
    positions as the unpadded prompt alone.
    """
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
            mask[i, width - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, pos


class CausalLMFamily(ModelFamily):
    """Decoder-only models: ``prompt + target + end`` in one sequence, loss on the target tokens only."""

    name = "causal_lm"
    lora_task = "CAUSAL_LM"

    # --- prompts ----------------------------------------------------------------------------------
    def _chat_parts(self, tokenizer) -> tuple[str, str, int | None]:
        """``(before, after, end_of_turn_id)``: the chat template around a user turn (with the assistant
        header), and the token that ends the assistant's turn."""
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("models: prompt_format 'chat' needs a tokenizer with a chat template")
        marker_u, marker_a = "\x00USER\x00", "\x00ANSWER\x00"
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": marker_u}], tokenize=False,
                                               add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": marker_u}, {"role": "assistant", "content": marker_a}], tokenize=False
        )
        before, _, after = prompt.partition(marker_u)
        if not full.startswith(prompt):
            raise ValueError("models: the chat template renders the assistant turn differently with and without "
                             "add_generation_prompt; prompt_format 'chat' cannot split prompt from target")
        closing = full[len(prompt):].partition(marker_a)[2]
        ids = tokenizer(closing, add_special_tokens=False)["input_ids"]
        special = set(tokenizer.all_special_ids)
        end = next((t for t in ids if t in special), None)
        return before, after, end

    def _wrap(self, tokenizer, text: str) -> str:
        if self.prompt_format == "chat":
            before, after, _ = self._chat_parts(tokenizer)
            return before + text + after
        return text

    def _special(self) -> bool:
        """Whether the tokenizer adds its own special tokens (BOS) to a prompt: not in chat (the template does)."""
        return self.prompt_format == "text"

    def _fit(self, row: tuple, tokenizer, budget: int, overhead: int) -> list[int]:
        """One prompt's token ids, fitted to ``budget`` keeping the query whole (see the module docstring)."""
        definition, demonstrations, query = row[0], row[1], row[2].rstrip()
        room = budget - overhead

        def count(text: str) -> int:
            return len(tokenizer(text.rstrip(), add_special_tokens=self._special())["input_ids"])

        text, _ = fit_prompt(definition, demonstrations, query, count, room)
        ids = tokenizer(self._wrap(tokenizer, text.rstrip()), add_special_tokens=self._special())["input_ids"]
        if len(ids) <= budget:
            return ids
        # Definition + query alone are too long: cut the definition from its end, then the query from its start.
        q = tokenizer(query, add_special_tokens=False)["input_ids"]
        d = tokenizer(definition, add_special_tokens=False)["input_ids"]
        base = tokenizer(self._wrap(tokenizer, ""), add_special_tokens=self._special())["input_ids"]
        room = budget - len(base)
        body = (d[: max(0, room - len(q))] + q)[-room:] if room > 0 else []
        if self.prompt_format == "chat":
            before, after, _ = self._chat_parts(tokenizer)
            pre = tokenizer(before, add_special_tokens=False)["input_ids"]
            post = tokenizer(after, add_special_tokens=False)["input_ids"]
            return pre + body + post
        return base + body  # text: the tokenizer's own specials (a BOS) stay in front

    def _overhead(self, tokenizer) -> int:
        return len(tokenizer(self._wrap(tokenizer, ""), add_special_tokens=self._special())["input_ids"])

    def source_limit(self, model, configured, generated):
        limit = getattr(_inner(model).config, "max_position_embeddings", None)
        if isinstance(limit, int) and limit > 0:
            return max(1, min(configured, limit - generated))
        return configured

    def _encode_prompts(self, data, tokenizer, budget, desc):
        overhead = self._overhead(tokenizer)
        rows = data.select("definition_text", "demonstrations", "query").iter_rows()
        return [
            self._fit(r, tokenizer, budget, overhead)
            for r in tqdm(rows, total=data.height, desc=desc, unit="prompt", mininterval=2.0)
        ]

    def end_of_target(self, tokenizer) -> int:
        """The token appended to every target: the chat template's end of turn, else the tokenizer's EOS."""
        if self.prompt_format == "chat":
            end = self._chat_parts(tokenizer)[2]
            if end is not None:
                return end
        if tokenizer.eos_token_id is None:
            raise ValueError("models: the tokenizer has no eos_token, needed to end each target")
        return tokenizer.eos_token_id

    def target_text(self, answer: str) -> str:
        """The seam rule: the space after ``Output:`` starts the target (text); none in a chat turn."""
        return answer.strip() if self.prompt_format == "chat" else " " + answer.strip()

    def encode_examples(self, data, tokenizer, model, max_source_length, max_target_length):
        prompts = self._encode_prompts(data, tokenizer, max_source_length, "tokenise train")
        end = self.end_of_target(tokenizer)
        texts = [self.target_text(t) for t in data["target"].to_list()]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        return prompts, [t[: max_target_length - 1] + [end] for t in ids]

    def encode_prompts(self, data, tokenizer, model, max_source_length, max_new_tokens):
        return self._encode_prompts(data, tokenizer, max_source_length, "tokenise test")

    def end_ids(self, model, tokenizer):
        ids = super().end_ids(model, tokenizer)
        if self.prompt_format == "chat":
            end = self._chat_parts(tokenizer)[2]
            if end is not None and end not in ids:
                ids.append(end)
        return ids

    # --- training ---------------------------------------------------------------------------------
    def batch(self, prompts, targets, pad_id):
        seqs = [list(p) + list(t) for p, t in zip(prompts, targets)]
        ids, mask = pad_batch(seqs, pad_id)
        labels = torch.full_like(ids, -100)
        for i, (p, t) in enumerate(zip(prompts, targets)):
            labels[i, len(p): len(p) + len(t)] = torch.tensor(list(t), dtype=torch.long)
        n_tok = sum(len(t) for t in targets)
        return Batch({"input_ids": ids, "attention_mask": mask, "labels": labels}, n_tok, ids.numel())

    def loss_sum(self, model, inputs):
        """Hidden states of the backbone, the LM head only where a next token is a target token.

        ``hidden[:, t]`` predicts token ``t + 1``: the positions kept are those whose next
        label is not -100, so the logits tensor is ``[target tokens, vocab]`` instead of
        ``[rows, seq, vocab]``. Equals ``transformers``' own shifted loss (tested to 1e-6).
        """
        inner = _inner(model)
        backbone = getattr(inner, inner.base_model_prefix)
        hidden = backbone(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        labels = inputs["labels"][:, 1:]
        keep = labels != -100
        logits = inner.get_output_embeddings()(hidden[:, :-1][keep])
        cap = getattr(inner.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return torch.nn.functional.cross_entropy(logits.float(), labels[keep], reduction="sum")

    # --- decoding ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def decode(self, model, prompts, *, pad_id, end_ids, max_new_tokens, prefixes=None, handover_at=None):
        """Greedy decoding, left-padded, KV cache; finished rows leave the batch and its cache.

        ``prefixes``: tokens a row already generated (all of one length ``p``); they are
        read with the prompt in one pass. Returns ``(tokens, positions computed, handed
        over)`` as :func:`greedy_decode_seq2seq`; ``positions`` counts every position fed
        to the model (prompt prefill included).
        """
        from transformers import DynamicCache

        dev = model.device
        rows = len(prompts)
        tokens, done_len = _start_tokens(prefixes, rows)
        ids, mask, pos = left_pad([list(p) + t for p, t in zip(prompts, tokens)], pad_id)
        ids, mask, pos = ids.to(dev), mask.to(dev), pos.to(dev)
        eos = torch.tensor(list(end_ids), device=dev)
        alive = torch.arange(rows, device=dev)
        cache = DynamicCache(config=_inner(model).config)
        step_ids, step_pos, computed, cache_kw = ids, pos, 0, _cache_kwarg(model)
        for generated in range(done_len, max_new_tokens):
            out = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, use_cache=True,
                        logits_to_keep=1, **{cache_kw: cache})
            computed += int(step_ids.numel())
            next_tok, done = _greedy_step(out.logits, eos, alive, tokens)
            if bool(done.all()):
                break
            step_pos = step_pos[:, -1:] + 1
            if bool(done.any()):
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                mask, alive, next_tok, step_pos = mask[keep], alive[keep], next_tok[keep], step_pos[keep]
            if handover_at is not None and generated + 1 == handover_at < max_new_tokens and 2 * alive.numel() <= rows:
                return tokens, computed, alive.tolist()
            step_ids = next_tok[:, None]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        return tokens, computed, []

    @torch.inference_mode()
    def generate(self, model, prompts, *, pad_id, end_ids, max_new_tokens):
        ids, mask, _ = left_pad(prompts, pad_id)
        gen = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             eos_token_id=list(end_ids), pad_token_id=pad_id)
        return [_until_end(row[ids.shape[1]:], end_ids, None) for row in gen.tolist()]


# ==================================================================================================
# Choosing a family; checkpoints
# ==================================================================================================


def family_of(spec: dict[str, Any]) -> ModelFamily:
    """The family of a ``models.<name>`` spec (its ``kind``), with its ``prompt_format`` (default ``text``)."""
    fmt = spec.get("prompt_format", "text")
    if spec.get("kind", "seq2seq") in CAUSAL_KINDS:
        return CausalLMFamily(fmt)
    return Seq2SeqFamily(fmt)


def family_for_model(model, prompt_format: str = "text") -> ModelFamily:
    """The family of a loaded model: encoder-decoder configs are seq2seq, the rest causal."""
    if getattr(_inner(model).config, "is_encoder_decoder", False):
        return Seq2SeqFamily(prompt_format)
    return CausalLMFamily(prompt_format)


def load_checkpoint(
    path: str | os.PathLike,
    attn_implementation: str | None = None,
    *,
    merge_lora: bool = True,
    dtype: torch.dtype = torch.float32,
):
    """Load a checkpoint directory written by :func:`instruct_ablate.train.train`.

    Returns ``(model, tokenizer, family)``: in ``dtype`` (float32 unless asked; bf16
    for a 7B model on a GPU halves the memory of loading), eval mode, on CPU; the family
    carries the prompt format the model was trained with (``metadata.json``). A
    LoRA checkpoint (``adapter_config.json``) is its base model (rebuilt from the
    ``model_spec`` in ``metadata.json``) with the adapter loaded, merged into the
    weights when ``merge_lora`` (faster decoding, same outputs: tested). Raises
    ``FileNotFoundError`` when ``path`` holds no checkpoint.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    path = Path(path)
    meta = json.loads((path / METADATA).read_text()) if (path / METADATA).is_file() else {}
    spec = meta.get("model_spec", {})
    if (path / "adapter_config.json").is_file():
        from .lora import load_adapter

        if not spec:
            raise FileNotFoundError(f"{path}: LoRA adapter without {METADATA} (the base model's identity)")
        base, _ = load_base({**spec, **({"attn_implementation": attn_implementation} if attn_implementation else {})},
                            seed=int(meta.get("seed", 0)), dtype=dtype)
        model = load_adapter(base, path, merge=merge_lora)
    elif (path / "config.json").is_file():
        auto = AutoModelForCausalLM if spec.get("kind") in CAUSAL_KINDS else AutoModelForSeq2SeqLM
        model = auto.from_pretrained(path, dtype=dtype, attn_implementation=attn_implementation)
    else:
        raise FileNotFoundError(f"{path}: not a checkpoint directory (config.json or adapter_config.json missing)")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    family = family_of(spec) if spec else family_for_model(model)
    return model, tokenizer, family
