"""One place for the defaults: a typed dataclass per config section.

The rules (at DAG build), the per-rule scripts, the command line and the
library functions take their defaults from these classes; ``tests/test_settings.py``
holds them to ``schemas/config.schema.yaml`` (every field is a schema property and
back, every schema default equals the field's default, enums equal the registries).
No torch import here: the workflow reads this module when it builds the DAG.

Sections: ``training`` (:class:`TrainingConfig`), ``decoding``
(:class:`DecodingSettings`), ``checkpointing`` (:class:`Checkpointing`),
``resources`` (:data:`RESOURCES`, :class:`JobResources` per job kind).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "TrainingConfig",
    "Checkpointing",
    "DecodingSettings",
    "JobResources",
    "RESOURCES",
    "DTYPES",
    "LR_SCHEDULERS",
    "from_mapping",
]

DTYPES = (None, "float32", "bfloat16", "float16")
LR_SCHEDULERS = ("constant", "linear")


def from_mapping(cls, cfg: dict[str, Any] | None, section: str):
    """``cls(**cfg)``, rejecting unknown keys with a message naming the section."""
    cfg = dict(cfg or {})
    names = {f.name for f in fields(cls)}
    unknown = set(cfg) - names
    if unknown:
        raise ValueError(f"{section}: unknown keys {sorted(unknown)} (known: {sorted(names)})")
    return cls(**cfg)


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of one fine-tuning run (``training`` in ``config.yaml``, per model overridable)."""

    learning_rate: float = 1e-4
    effective_batch_size: int = 128
    per_device_batch_size: int = 8
    num_epochs: float = 2.0
    max_steps: int | None = None
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    max_source_length: int = 1024
    max_target_length: int = 128
    device: str = "cpu"  # cpu | cuda | cuda:N (explicit: a cuda job asks the scheduler for a GPU)
    bf16: bool = True
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    compile: bool = False
    dtype: str | None = None  # base weights: float32 (None) | bfloat16 | float16
    gradient_checkpointing: bool = False
    lora: dict[str, Any] | None = None  # {r, alpha, dropout, target_modules}; None: full fine-tuning

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "TrainingConfig":
        out = from_mapping(cls, cfg, "training")
        if out.effective_batch_size % out.per_device_batch_size:
            raise ValueError(
                f"training.effective_batch_size ({out.effective_batch_size}) must be a multiple of "
                f"training.per_device_batch_size ({out.per_device_batch_size})"
            )
        if out.lr_scheduler not in LR_SCHEDULERS:
            raise ValueError(f"training.lr_scheduler: {out.lr_scheduler!r} is not one of {LR_SCHEDULERS}")
        if out.dtype not in DTYPES:
            raise ValueError(f"training.dtype: {out.dtype!r} is not one of {DTYPES}")
        from .lora import LoraSettings

        LoraSettings.from_dict(out.lora)  # raises for unknown keys
        return out

    @property
    def accumulation_steps(self) -> int:
        return self.effective_batch_size // self.per_device_batch_size


@dataclass(frozen=True)
class Checkpointing:
    """When to write the resume state (``checkpointing`` in ``config.yaml``).

    ``every_steps``: optimiser steps between saves; ``every_minutes``: wall-clock
    minutes between saves; either may be ``None`` (off). SIGTERM always saves.
    These settings do not change the trained weights, so they are not rerun triggers.
    """

    every_steps: int | None = None
    every_minutes: float | None = 30.0

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> "Checkpointing":
        return from_mapping(cls, cfg, "checkpointing")


@dataclass(frozen=True)
class DecodingSettings:
    """Greedy decoding (``decoding`` in ``config.yaml``): at most ``max_new_tokens`` (NIv2: 128) new tokens;
    batches of ``rows x (longest prompt + max_new_tokens) <= batch_tokens`` (and ``<= max_batch_size`` rows);
    stragglers handed over after ``handover_every`` new tokens (then 2x, 4x, ...; ``None``: off). Only
    ``max_new_tokens`` changes predictions; the others are batching and rerun nothing."""

    max_new_tokens: int = 128
    batch_tokens: int = 16384
    max_batch_size: int | None = None
    handover_every: int | None = 8

    BATCHING_ONLY = ("batch_tokens", "max_batch_size", "handover_every")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> "DecodingSettings":
        return from_mapping(cls, cfg, "decoding")


@dataclass(frozen=True)
class JobResources:
    """Per-job resources (``resources.<train|predict>``): CPU threads, memory (MB), runtime (minutes)."""

    threads: int = 2
    mem_mb: int = 8000
    runtime: int = 60


RESOURCES = {"train": JobResources(runtime=120), "predict": JobResources(runtime=60)}
