"""Instruction tuning: fine-tune a model (seq2seq or decoder-only) on a variant's training prompts.

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
``training.compile: true`` wraps the model in ``torch.compile``. What differs
between encoder-decoder and decoder-only models (batches, labels, the loss) is
the :class:`~instruct_ablate.families.ModelFamily`'s; the loop never asks.

LoRA (``training.lora``, :mod:`instruct_ablate.lora`): the base weights are
frozen (``training.dtype``: bf16 halves a 7B model's memory) and only the
adapter trains; ``training.gradient_checkpointing`` recomputes activations in
the backward pass instead of storing them.

The file reads as nanoGPT's ``train.py`` does: :func:`prepare` (data, model,
optimiser, schedule), :class:`ResumeState` (what a killed job needs to go on),
:func:`run_loop` (the optimiser steps) and :func:`write_checkpoint`.

Resumption: every ``checkpointing.every_steps`` optimiser steps and/or every
``every_minutes`` minutes, and when the job receives SIGTERM (SLURM's
pre-emption signal), the model, optimiser, scheduler, RNG states, data position
and loss log are written atomically to ``resume_dir/state.pt`` (for the model, only its
trainable parameters: the adapter, under LoRA). A job started
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from tqdm.auto import tqdm

from .batching import length_grouped_batches
from .families import ModelFamily, family_of
from .io import atomic_dir, atomic_path, stable_digest, write_json
from .lora import LoraSettings, apply_lora
from .models import attention_of, load_base, resolve_device, torch_dtype
from .prompts import read_shards
from .settings import Checkpointing, TrainingConfig

__all__ = [
    "TrainingConfig",
    "Checkpointing",
    "TrainingPreempted",
    "TrainingJob",
    "ResumeState",
    "prepare",
    "run_loop",
    "write_checkpoint",
    "train",
    "RESUME_STATE",
]

RESUME_STATE = "state.pt"

log = logging.getLogger("instruct_ablate.train")


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


def _trainable_state(model) -> dict[str, torch.Tensor]:
    """The parameters that train (all for full fine-tuning, the adapter under LoRA), by name."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


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


@dataclass
class TrainingJob:
    """Everything :func:`prepare` builds for one run: tokenised data, model, optimiser and schedule."""

    model_spec: dict[str, Any]
    cfg: TrainingConfig
    seed: int
    instances_per_task: int
    shard_dir: Path
    family: ModelFamily
    model: Any
    tokenizer: Any
    prompts: list[list[int]]
    targets: list[list[int]]
    n_tasks: int
    max_source_length: int
    total_steps: int
    device: torch.device
    optimizer: torch.optim.Optimizer
    scheduler: Any
    fingerprint: str

    def micro_batches(self, epoch: int, index: int):
        """(epoch, index in epoch, batch) from a data position on; an epoch's batches depend on the seed only."""
        lengths = [len(s) + len(t) for s, t in zip(self.prompts, self.targets)]
        while True:
            batches = length_grouped_batches(lengths, self.cfg.per_device_batch_size, seed=self.seed * 1_000_003 + epoch)
            for k in range(index, len(batches)):
                yield epoch, k, batches[k]
            epoch, index = epoch + 1, 0


def prepare(
    model_spec: dict[str, Any], shard_dir: str | Path, cfg: TrainingConfig, *, instances_per_task: int, seed: int
) -> TrainingJob:
    """Read the shards (ranks < ``instances_per_task``), tokenise once, build model, optimiser and schedule.

    The model is the base model of ``model_spec`` in ``training.dtype``, wrapped in a
    LoRA adapter when ``training.lora`` is set (adapter drawn under ``seed``), on the
    training device in train mode. Raises ``ValueError`` if the shards hold no
    training instance.
    """
    device = resolve_device(cfg.device)
    data = read_shards(shard_dir, max_rank=instances_per_task).sort(["task", "rank"])
    if data.height == 0:
        raise ValueError(f"{shard_dir}: no training instance with rank < {instances_per_task}")
    family = family_of(model_spec)
    model, tokenizer = load_base(model_spec, seed=seed, dtype=torch_dtype(cfg.dtype))
    max_src = family.source_limit(model, cfg.max_source_length, cfg.max_target_length)
    prompts, targets = family.encode_examples(data, tokenizer, model, max_src, cfg.max_target_length)

    n = len(prompts)
    micro_per_epoch = math.ceil(n / cfg.per_device_batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.accumulation_steps)
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.num_epochs * steps_per_epoch))
    fingerprint = stable_digest(
        {
            "model_spec": model_spec,
            "training": asdict(cfg),
            "instances_per_task": instances_per_task,
            "seed": seed,
            "data": _data_digest(prompts, targets),
        }
    )
    torch.manual_seed(seed)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    lora = LoraSettings.from_dict(cfg.lora)
    if lora is not None:
        model = apply_lora(model, lora, task_type=family.lora_task)
    model.to(device)
    model.train()
    use_cuda = device.type == "cuda"
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
        fused=use_cuda or None,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.lr_scheduler, cfg.warmup_steps, total_steps))
    log.info(
        "training %s (%s, %s prompts%s) on %d instances of %d tasks: %d steps (%d per epoch), batch %d = %d x %d "
        "accumulation, lr %g (%s, %d warm-up steps), source <= %d tokens, device %s, attention %s%s%s",
        model_spec.get("pretrained", model_spec.get("kind")), family.name, family.prompt_format,
        f", LoRA r={lora.r}" if lora else "", n, data["task"].n_unique(), total_steps, steps_per_epoch,
        cfg.effective_batch_size, cfg.per_device_batch_size, cfg.accumulation_steps, cfg.learning_rate,
        cfg.lr_scheduler, cfg.warmup_steps, max_src, device, attention_of(model),
        ", gradient checkpointing" if cfg.gradient_checkpointing else "", ", torch.compile" if cfg.compile else "",
    )
    return TrainingJob(
        model_spec=model_spec, cfg=cfg, seed=seed, instances_per_task=instances_per_task, shard_dir=Path(shard_dir),
        family=family, model=model, tokenizer=tokenizer, prompts=prompts, targets=targets,
        n_tasks=int(data["task"].n_unique()), max_source_length=max_src, total_steps=total_steps, device=device,
        optimizer=optimizer, scheduler=scheduler, fingerprint=fingerprint,
    )


@dataclass
class ResumeState:
    """Where a run stands: the optimiser steps done, the data position, the loss log, the resumptions.

    :meth:`save` writes it with the job's trainable weights, optimiser, scheduler and RNG
    states atomically to ``resume_dir/state.pt``; :meth:`restore` loads a state written
    for the same fingerprint (a stale or unreadable one is discarded with a warning).
    """

    step: int = 0
    position: tuple[int, int] = (0, 0)  # (epoch, index of the next micro-batch in it)
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    resumed_at: list[int] = field(default_factory=list)

    @property
    def tokens_seen(self) -> int:
        return sum(r["target_tokens"] + r["source_tokens"] for r in self.log_rows)

    @property
    def elapsed(self) -> float:
        return self.log_rows[-1]["elapsed_s"] if self.log_rows else 0.0

    @classmethod
    def restore(cls, job: TrainingJob, resume_dir: Path | None) -> "ResumeState":
        """The state to start from: a matching saved one (loaded into ``job``), else a fresh one."""
        path = resume_dir / RESUME_STATE if resume_dir is not None else None
        if path is None or not path.is_file():
            return cls()
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - an unreadable state is discarded, never trusted
            log.warning("%s: unreadable resume state (%s); starting from scratch", path, exc)
            path.unlink()
            return cls()
        if saved.get("fingerprint") != job.fingerprint:
            log.warning(
                "%s: resume state was written for other inputs or settings (fingerprint %s, now %s); "
                "starting from scratch", path, saved.get("fingerprint"), job.fingerprint,
            )
            path.unlink()
            return cls()
        missing = set(_trainable_state(job.model)) - set(saved["model"])
        if missing:
            raise RuntimeError(f"{path}: resume state lacks trainable parameters {sorted(missing)[:3]}...")
        job.model.load_state_dict(saved["model"], strict=False)
        job.optimizer.load_state_dict(saved["optimizer"])
        job.scheduler.load_state_dict(saved["scheduler"])
        _set_rng_state(saved["rng"])
        state = cls(saved["step"], tuple(saved["position"]), saved["log_rows"], [*saved["resumed_at"], saved["step"]])
        log.info("resuming from step %d/%d (resume state %s)", state.step, job.total_steps, path)
        return state

    def save(self, job: TrainingJob, resume_dir: Path) -> None:
        resume_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "fingerprint": job.fingerprint,
            "step": self.step,
            "position": list(self.position),
            "model": _trainable_state(job.model),
            "optimizer": job.optimizer.state_dict(),
            "scheduler": job.scheduler.state_dict(),
            "rng": _rng_state(),
            "log_rows": self.log_rows,
            "resumed_at": self.resumed_at,
        }
        t0 = time.perf_counter()
        with atomic_path(resume_dir / RESUME_STATE) as tmp:
            torch.save(payload, tmp)
        write_json({"step": self.step, "total_steps": job.total_steps, "fingerprint": job.fingerprint},
                   resume_dir / "progress.json")
        log.info("resume state saved at step %d/%d (%.1f s)", self.step, job.total_steps, time.perf_counter() - t0)


def run_loop(
    job: TrainingJob, state: ResumeState, *, resume_dir: Path | None = None, checkpointing: Checkpointing = Checkpointing()
) -> float:
    """Run the optimiser steps from ``state.step`` to ``job.total_steps``, updating ``state``.

    Each step accumulates ``accumulation_steps`` micro-batches; each micro-batch's summed
    target-token loss is divided by the step's target tokens, so the step's gradient is
    that of the mean over all its target tokens whatever the micro-batch split. Returns
    the seconds this call ran. Raises :class:`TrainingPreempted` after SIGTERM (state saved).
    """
    cfg, model, family = job.cfg, job.model, job.family
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if job.device.type == "cuda" and cfg.bf16 else contextlib.nullcontext()
    )
    pad_id = job.tokenizer.pad_token_id
    params = [p for p in model.parameters() if p.requires_grad]
    stream = job.micro_batches(*state.position)
    tokens_seen, elapsed_before = state.tokens_seen, state.elapsed
    start = last_save = time.perf_counter()
    bar = tqdm(total=job.total_steps, initial=state.step, desc="train", unit="step")
    with _SigtermFlag() as sigterm:
        for step in range(state.step + 1, job.total_steps + 1):
            window = [next(stream) for _ in range(cfg.accumulation_steps)]
            step_target_tokens = sum(len(job.targets[i]) for *_, b in window for i in b)
            step_source_tokens = sum(len(job.prompts[i]) for *_, b in window for i in b)
            lr = job.optimizer.param_groups[0]["lr"]
            job.optimizer.zero_grad(set_to_none=True)
            step_loss, positions = 0.0, 0
            for *_, idx in window:
                batch = family.batch([job.prompts[i] for i in idx], [job.targets[i] for i in idx], pad_id)
                positions += batch.positions
                with autocast:
                    loss_sum = family.loss_sum(model, {k: v.to(job.device) for k, v in batch.inputs.items()})
                loss = loss_sum / step_target_tokens
                loss.backward()
                step_loss += float(loss.detach())
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            job.optimizer.step()
            job.scheduler.step()
            tokens_seen += step_target_tokens + step_source_tokens
            now = time.perf_counter()
            elapsed = elapsed_before + now - start
            state.log_rows.append(
                {"step": step, "epoch": window[-1][0], "loss": step_loss, "learning_rate": lr,
                 "target_tokens": step_target_tokens, "source_tokens": step_source_tokens, "positions": positions,
                 "elapsed_s": elapsed}
            )
            state.step, state.position = step, (window[-1][0], window[-1][1] + 1)
            tok_s = tokens_seen / max(elapsed, 1e-9)
            bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tok_s:.0f}")
            bar.update(1)
            if step == 1 or step % max(1, job.total_steps // 10) == 0 or step == job.total_steps:
                log.info("step %d/%d loss %.4f lr %.3g tokens/s %.0f", step, job.total_steps, step_loss, lr, tok_s)
            due = (checkpointing.every_steps and step % checkpointing.every_steps == 0) or (
                checkpointing.every_minutes and now - last_save >= 60 * checkpointing.every_minutes
            )
            if resume_dir is not None and (sigterm.raised or (due and step < job.total_steps)):
                state.save(job, resume_dir)
                last_save = time.perf_counter()
            if sigterm.raised:
                bar.close()
                raise TrainingPreempted(
                    f"stopped by SIGTERM after step {step}/{job.total_steps}; run the job again to resume from "
                    f"{resume_dir / RESUME_STATE if resume_dir else 'scratch (no resume_dir)'}"
                )
    bar.close()
    return time.perf_counter() - start


def write_checkpoint(
    job: TrainingJob, state: ResumeState, out_dir: str | Path, segment_seconds: float,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``out_dir`` atomically: weights (or the LoRA adapter), tokenizer, loss log, ``metadata.json``
    (with ``provenance``, :func:`instruct_ablate.provenance.describe`)."""
    model = job.model
    model.eval()
    model.to("cpu")
    segment = state.log_rows[state.resumed_at[-1] if state.resumed_at else 0:]  # row k is step k + 1
    segment_tokens = sum(r["target_tokens"] + r["source_tokens"] for r in segment)
    meta = {
        "model_spec": job.model_spec,
        "family": job.family.name,
        "prompt_format": job.family.prompt_format,
        "training": asdict(job.cfg),
        "instances_per_task": job.instances_per_task,
        "seed": job.seed,
        "n_instances": len(job.prompts),
        "n_tasks": job.n_tasks,
        "steps": job.total_steps,
        "resumed_at_steps": state.resumed_at,
        "epochs_seen": state.log_rows[-1]["epoch"] + 1,
        "max_source_length_used": job.max_source_length,
        "attn_implementation": attention_of(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "final_loss": state.log_rows[-1]["loss"],
        "train_seconds": state.elapsed,
        "tokens_per_second": state.tokens_seen / max(state.elapsed, 1e-9),
        "last_segment_tokens_per_second": segment_tokens / max(segment_seconds, 1e-9),
        "fingerprint": job.fingerprint,
        "device": str(job.device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "shard_meta": json.loads((job.shard_dir / "meta.json").read_text()),
        "provenance": provenance or {},
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        job.tokenizer.save_pretrained(tmp)
        pl.DataFrame(state.log_rows).write_parquet(tmp / "train_log.parquet")
        write_json(meta, tmp / "metadata.json")
    return meta


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
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune the base model of ``model_spec`` on the training shards of ``shard_dir``.

    Uses the first ``instances_per_task`` ranks of each training task. Writes,
    atomically, ``out_dir`` with the checkpoint (``model.safetensors`` or, under
    LoRA, ``adapter_model.safetensors``; ``config.json``, tokenizer files),
    ``train_log.parquet`` (one row per optimiser step: step, epoch, loss,
    learning_rate, target and source tokens, positions computed including
    padding, elapsed seconds) and ``metadata.json``; returns the metadata dict.

    With ``resume_dir`` the job saves its resume state there (see the module
    docstring and :class:`Checkpointing`) and resumes from a matching one.

    Raises ``ValueError`` if the shards hold no training instance and
    :class:`TrainingPreempted` after SIGTERM (the state is saved first).
    """
    if threads:
        torch.set_num_threads(threads)
    resume_dir = Path(resume_dir) if resume_dir is not None else None
    job = prepare(model_spec, shard_dir, cfg, instances_per_task=instances_per_task, seed=seed)
    state = ResumeState.restore(job, resume_dir)
    if cfg.compile:
        job.model.compile()
    seconds = run_loop(job, state, resume_dir=resume_dir, checkpointing=checkpointing)
    meta = write_checkpoint(job, state, out_dir, seconds, provenance)
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    log.info("saved checkpoint to %s (%.1f s, final loss %.4f)", out_dir, state.elapsed, meta["final_loss"])
    return meta
