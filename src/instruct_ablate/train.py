"""Instruction tuning: fine-tune a seq2seq model on a variant's training prompts.

Follows the paper's recipe (Kung & Peng 2023, §2; Tk-Instruct): AdamW with a
constant learning rate, an effective batch reached by gradient accumulation,
targets cut at ``max_target_length`` (128), sources fitted to
``min(max_source_length, the model's position limit)``. Padded label positions
are ignored (-100) and each optimiser step averages the loss over the target
tokens of all its micro-batches, so accumulation does not change the objective.

Speed: prompts are tokenised once per job; micro-batches group prompts of
similar length (seeded, :func:`~instruct_ablate.batching.length_grouped_batches`)
and are padded only to their own longest; attention runs through PyTorch's
scaled-dot-product attention (``attn_implementation: sdpa``, the default); on
CUDA the forward pass runs under bf16 autocast and AdamW is fused;
``training.compile: true`` wraps the model in ``torch.compile``.

Resumption: every ``checkpointing.every_steps`` optimiser steps and/or every
``every_minutes`` minutes, and when the job receives SIGTERM (SLURM's
pre-emption signal), the model, optimiser, scheduler, RNG states, data position
and loss log are written atomically to ``resume_dir/state.pt``. A job started
again with the same inputs and settings resumes from it and, on CPU, ends with
weights bit-identical to an uninterrupted run. State written for other inputs
or settings is ignored (and replaced). The resume state is removed once the
checkpoint is written.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import json
import logging
import math
import platform
import random
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import polars as pl
import torch
from tqdm.auto import tqdm

from .batching import encode_sources, encode_targets, length_grouped_batches, pad_batch
from .io import atomic_dir, atomic_path, stable_digest, write_json
from .models import attention_of, load_base, resolve_device, source_length_limit
from .prompts import read_shards

__all__ = ["TrainingConfig", "Checkpointing", "TrainingPreempted", "train", "RESUME_STATE"]

RESUME_STATE = "state.pt"

log = logging.getLogger("instruct_ablate.train")


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
    device: str = "auto"
    bf16: bool = True
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    compile: bool = False

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "TrainingConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(cfg) - names
        if unknown:
            raise ValueError(f"training: unknown keys {sorted(unknown)} (known: {sorted(names)})")
        out = cls(**cfg)
        if out.effective_batch_size % out.per_device_batch_size:
            raise ValueError(
                f"training.effective_batch_size ({out.effective_batch_size}) must be a multiple of "
                f"training.per_device_batch_size ({out.per_device_batch_size})"
            )
        if out.lr_scheduler not in ("constant", "linear"):
            raise ValueError(f"training.lr_scheduler: {out.lr_scheduler!r} is neither 'constant' nor 'linear'")
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
        return cls(**(cfg or {}))


class TrainingPreempted(RuntimeError):
    """Raised after SIGTERM, once the resume state is saved: start the job again to resume."""


def _lr_lambda(kind: str, warmup: int, total: int):
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "linear":
            return max(0.0, (total - step) / max(1, total - warmup))
        return 1.0

    return factor


def _data_digest(sources: list[list[int]], targets: list[list[int]]) -> str:
    h = hashlib.sha256()
    for seq in (*sources, *targets):
        h.update(len(seq).to_bytes(4, "little"))
        h.update(array.array("q", seq).tobytes())
    return h.hexdigest()[:16]


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _load_resume_state(resume_dir: Path | None, fingerprint: str) -> dict[str, Any] | None:
    if resume_dir is None or not (resume_dir / RESUME_STATE).is_file():
        return None
    path = resume_dir / RESUME_STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable state is discarded, never trusted
        log.warning("%s: unreadable resume state (%s); starting from scratch", path, exc)
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning(
            "%s: resume state was written for other inputs or settings (fingerprint %s, now %s); starting from scratch",
            path, state.get("fingerprint"), fingerprint,
        )
        return None
    return state


class _SigtermFlag:
    """Turns SIGTERM into a flag the loop checks after each optimiser step (main thread only)."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = None

    def __enter__(self) -> "_SigtermFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        log.warning("SIGTERM received: saving the resume state after this step")
        self.raised = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def train(
    model_spec: dict[str, Any],
    shard_dir: str | Path,
    out_dir: str | Path,
    cfg: TrainingConfig,
    *,
    instances_per_task: int,
    seed: int,
    threads: int | None = None,
    resume_dir: str | Path | None = None,
    checkpointing: Checkpointing = Checkpointing(),
) -> dict[str, Any]:
    """Fine-tune the base model of ``model_spec`` on the training shards of ``shard_dir``.

    Uses the first ``instances_per_task`` ranks of each training task. Writes,
    atomically, ``out_dir`` with the checkpoint (``model.safetensors``,
    ``config.json``, tokenizer files), ``train_log.parquet`` (one row per
    optimiser step: step, epoch, loss, learning_rate, target and source tokens,
    positions computed including padding, elapsed seconds) and ``metadata.json``; returns the metadata dict.

    With ``resume_dir`` the job saves its resume state there (see the module
    docstring and :class:`Checkpointing`) and resumes from a matching one.

    Raises ``ValueError`` if the shards hold no training instance and
    :class:`TrainingPreempted` after SIGTERM (the state is saved first).
    """
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(cfg.device)
    resume_dir = Path(resume_dir) if resume_dir is not None else None
    data = read_shards(shard_dir, max_rank=instances_per_task).sort(["task", "rank"])
    if data.height == 0:
        raise ValueError(f"{shard_dir}: no training instance with rank < {instances_per_task}")
    model, tokenizer = load_base(model_spec, seed=seed)
    max_src = source_length_limit(model, cfg.max_source_length)
    sources = encode_sources(data, tokenizer, max_src, desc="tokenise train")
    targets = encode_targets(data["target"].to_list(), tokenizer, cfg.max_target_length)
    n = len(sources)

    micro_per_epoch = math.ceil(n / cfg.per_device_batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.accumulation_steps)
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.num_epochs * steps_per_epoch))
    log.info(
        "training %s on %d instances of %d tasks: %d steps (%d per epoch), batch %d = %d x %d accumulation, "
        "lr %g (%s, %d warm-up steps), source <= %d tokens, device %s, attention %s%s",
        model_spec.get("pretrained", model_spec.get("kind")), n, data["task"].n_unique(), total_steps,
        steps_per_epoch, cfg.effective_batch_size, cfg.per_device_batch_size, cfg.accumulation_steps,
        cfg.learning_rate, cfg.lr_scheduler, cfg.warmup_steps, max_src, device,
        attention_of(model), ", torch.compile" if cfg.compile else "",
    )
    fingerprint = stable_digest(
        {
            "model_spec": model_spec,
            "training": asdict(cfg),
            "instances_per_task": instances_per_task,
            "seed": seed,
            "data": _data_digest(sources, targets),
        }
    )

    torch.manual_seed(seed)
    model.to(device)
    model.train()
    use_cuda = device.type == "cuda"
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=use_cuda or None
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.lr_scheduler, cfg.warmup_steps, total_steps))
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16) if use_cuda and cfg.bf16 else contextlib.nullcontext()
    )
    pad_id = tokenizer.pad_token_id
    lengths = [len(s) + len(t) for s, t in zip(sources, targets)]

    # Where training starts: from scratch, or from a matching resume state.
    step0, position, log_rows, tokens_seen, elapsed_before, resumed_at = 0, (0, 0), [], 0, 0.0, []
    state = _load_resume_state(resume_dir, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step0, position = state["step"], tuple(state["position"])
        log_rows, resumed_at = state["log_rows"], [*state["resumed_at"], step0]
        # Tokens and time so far follow from the loss log, which the state carries.
        tokens_seen = sum(r["target_tokens"] + r["source_tokens"] for r in log_rows)
        elapsed_before = log_rows[-1]["elapsed_s"] if log_rows else 0.0
        _set_rng_state(state["rng"])
        log.info("resuming from step %d/%d (resume state %s)", step0, total_steps, resume_dir / RESUME_STATE)
        del state
    elif resume_dir is not None and (resume_dir / RESUME_STATE).exists():
        (resume_dir / RESUME_STATE).unlink()
    if cfg.compile:
        model.compile()

    def micro_batches(epoch: int, index: int):
        """(epoch, index in epoch, batch) from a data position on; the batches of an epoch depend on the seed only."""
        while True:
            batches = length_grouped_batches(lengths, cfg.per_device_batch_size, seed=seed * 1_000_003 + epoch)
            for k in range(index, len(batches)):
                yield epoch, k, batches[k]
            epoch, index = epoch + 1, 0

    def save_state(step: int, position: tuple[int, int]) -> None:
        resume_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": fingerprint,
            "step": step,
            "position": list(position),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            "log_rows": log_rows,
            "resumed_at": resumed_at,
        }
        t0 = time.perf_counter()
        with atomic_path(resume_dir / RESUME_STATE) as tmp:
            torch.save(state, tmp)
        write_json({"step": step, "total_steps": total_steps, "fingerprint": fingerprint}, resume_dir / "progress.json")
        log.info("resume state saved at step %d/%d (%.1f s)", step, total_steps, time.perf_counter() - t0)

    stream = micro_batches(*position)
    start = time.perf_counter()
    last_save = start
    bar = tqdm(total=total_steps, initial=step0, desc="train", unit="step")
    with _SigtermFlag() as sigterm:
        for step in range(step0 + 1, total_steps + 1):
            window = [next(stream) for _ in range(cfg.accumulation_steps)]
            step_target_tokens = sum(len(targets[i]) for *_, b in window for i in b)
            step_source_tokens = sum(len(sources[i]) for *_, b in window for i in b)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad(set_to_none=True)
            step_loss, positions = 0.0, 0
            for *_, batch in window:
                ids, mask = pad_batch([sources[i] for i in batch], pad_id)
                labels, lmask = pad_batch([targets[i] for i in batch], pad_id)
                labels[lmask == 0] = -100
                n_tok = int(lmask.sum())
                positions += ids.numel() + labels.numel()
                with autocast:
                    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
                loss = out.loss.float() * (n_tok / step_target_tokens)
                loss.backward()
                step_loss += float(loss.detach())
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            tokens_seen += step_target_tokens + step_source_tokens
            now = time.perf_counter()
            elapsed = elapsed_before + now - start
            log_rows.append(
                {
                    "step": step,
                    "epoch": window[-1][0],
                    "loss": step_loss,
                    "learning_rate": lr,
                    "target_tokens": step_target_tokens,
                    "source_tokens": step_source_tokens,
                    "positions": positions,
                    "elapsed_s": elapsed,
                }
            )
            tok_s = tokens_seen / max(elapsed, 1e-9)
            bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tok_s:.0f}")
            bar.update(1)
            if step == 1 or step % max(1, total_steps // 10) == 0 or step == total_steps:
                log.info("step %d/%d loss %.4f lr %.3g tokens/s %.0f", step, total_steps, step_loss, lr, tok_s)
            due = (checkpointing.every_steps and step % checkpointing.every_steps == 0) or (
                checkpointing.every_minutes and now - last_save >= 60 * checkpointing.every_minutes
            )
            if resume_dir is not None and (sigterm.raised or (due and step < total_steps)):
                epoch, index, _ = window[-1]
                save_state(step, (epoch, index + 1))
                last_save = time.perf_counter()
            if sigterm.raised:
                bar.close()
                raise TrainingPreempted(
                    f"stopped by SIGTERM after step {step}/{total_steps}; run the job again to resume from "
                    f"{resume_dir / RESUME_STATE if resume_dir else 'scratch (no resume_dir)'}"
                )
    bar.close()
    elapsed = elapsed_before + time.perf_counter() - start

    model.eval()
    model.to("cpu")
    segment_tokens = sum(r["target_tokens"] + r["source_tokens"] for r in log_rows[step0:])
    meta = {
        "model_spec": model_spec,
        "training": asdict(cfg),
        "instances_per_task": instances_per_task,
        "seed": seed,
        "n_instances": n,
        "n_tasks": int(data["task"].n_unique()),
        "steps": total_steps,
        "resumed_at_steps": resumed_at,
        "epochs_seen": log_rows[-1]["epoch"] + 1,
        "max_source_length_used": max_src,
        "attn_implementation": attention_of(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": log_rows[-1]["loss"],
        "train_seconds": elapsed,
        "tokens_per_second": tokens_seen / max(elapsed, 1e-9),
        "last_segment_tokens_per_second": segment_tokens / max(elapsed - elapsed_before, 1e-9),
        "fingerprint": fingerprint,
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "shard_meta": json.loads((Path(shard_dir) / "meta.json").read_text()),
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        pl.DataFrame(log_rows).write_parquet(tmp / "train_log.parquet")
        write_json(meta, tmp / "metadata.json")
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    log.info("saved checkpoint to %s (%.1f s, final loss %.4f)", out_dir, elapsed, meta["final_loss"])
    return meta
