"""LoRA adapters through ``peft`` (Hu et al. 2022), for fine-tuning 7B-class models on one GPU.

``training.lora: {r, alpha, dropout, target_modules}`` wraps the base model in a
``peft`` LoRA model: the base weights are frozen (in ``training.dtype``, bf16 for a
7B model on CUDA), only the adapter matrices train (kept in float32 by ``peft``).
The checkpoint holds the adapter (``adapter_model.safetensors``,
``adapter_config.json``) beside the base model's identity (``metadata.json``'s
``model_spec``: hub id, path or ``pkg:``, plus the seed of any random init), so
it is a few MB, not a copy of the base model. Prediction loads the base, loads
the adapter and merges it into the weights (``merge_and_unload``), or decodes
through it; both give the same predictions (tested).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LoraSettings", "apply_lora", "load_adapter"]

log = logging.getLogger("instruct_ablate.lora")


@dataclass(frozen=True)
class LoraSettings:
    """``training.lora`` in ``config.yaml``: rank ``r``, scaling ``alpha`` (scale = alpha / r), dropout on the
    adapter's input, and the module names to adapt (``all-linear``: every linear layer but the LM head)."""

    r: int = 16
    alpha: float = 32
    dropout: float = 0.05
    target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> "LoraSettings | None":
        if not cfg:
            return None
        known = {"r", "alpha", "dropout", "target_modules"}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"training.lora: unknown keys {sorted(unknown)} (known: {sorted(known)})")
        tm = cfg.get("target_modules", cls().target_modules)
        return cls(r=int(cfg.get("r", 16)), alpha=float(cfg.get("alpha", 32)), dropout=float(cfg.get("dropout", 0.05)),
                   target_modules=list(tm) if isinstance(tm, (list, tuple)) else tm)


def apply_lora(model, settings: LoraSettings, *, task_type: str):
    """Wrap ``model`` in a ``peft`` LoRA model (adapter weights drawn from torch's RNG: seed before).

    ``task_type`` is peft's ``TaskType`` name (``CAUSAL_LM``, ``SEQ_2_SEQ_LM``: the family's
    ``lora_task``). Returns the ``PeftModel``; only the adapter parameters have ``requires_grad``.
    Raises ``ValueError`` when no module matches ``target_modules``.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type=TaskType[task_type],
    )
    peft_model = get_peft_model(model, cfg)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    log.info("LoRA r=%d alpha=%g dropout=%g on %s: %d trainable of %d parameters (%.2f%%)", settings.r,
             settings.alpha, settings.dropout, settings.target_modules, trainable, total, 100 * trainable / total)
    return peft_model


def load_adapter(base, path: str | Path, *, merge: bool = True):
    """``base`` with the LoRA adapter saved in ``path``; merged into its weights when ``merge``."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base, str(path))
    return model.merge_and_unload() if merge else model
