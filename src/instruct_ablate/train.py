"""Instruction tuning: fine-tune a seq2seq model on a variant's training prompts.

Follows the paper's recipe (Kung & Peng 2023, §2; Tk-Instruct): AdamW with a
constant learning rate, an effective batch reached by gradient accumulation,
targets cut at ``max_target_length`` (128), sources fitted to
``min(max_source_length, the model's position limit)``. On CUDA the forward
pass runs under bf16 autocast. Padded label positions are ignored (-100) and
each optimiser step averages the loss over the target tokens of all its
micro-batches, so accumulation does not change the objective.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import polars as pl
import torch
from tqdm.auto import tqdm

from .batching import encode_sources, encode_targets, length_grouped_batches, pad_batch
from .io import atomic_dir, write_json
from .models import load_base, resolve_device, source_length_limit
from .prompts import read_shards

__all__ = ["TrainingConfig", "train"]

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
        return out

    @property
    def accumulation_steps(self) -> int:
        return self.effective_batch_size // self.per_device_batch_size


def train(
    model_spec: dict[str, Any],
    shard_dir: str | Path,
    out_dir: str | Path,
    cfg: TrainingConfig,
    *,
    instances_per_task: int,
    seed: int,
    threads: int | None = None,
) -> dict[str, Any]:
    """Fine-tune the base model of ``model_spec`` on the training shards of ``shard_dir``.

    Uses the first ``instances_per_task`` ranks of each training task. Writes,
    atomically, ``out_dir`` with the checkpoint (``model.safetensors``,
    ``config.json``, tokenizer files), ``train_log.parquet`` (one row per
    optimiser step: step, epoch, loss, learning_rate, target and source tokens,
    elapsed seconds) and ``metadata.json``; returns the metadata dict.

    Raises ``ValueError`` if the shards hold no training instance.
    """
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(cfg.device)
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
        "lr %g, source <= %d tokens, device %s",
        model_spec.get("pretrained", model_spec.get("kind")), n, data["task"].n_unique(), total_steps,
        steps_per_epoch, cfg.effective_batch_size, cfg.per_device_batch_size, cfg.accumulation_steps,
        cfg.learning_rate, max_src, device,
    )

    torch.manual_seed(seed)
    model.to(device)
    model.train()
    use_cuda = device.type == "cuda"
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=use_cuda or None
    )
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16) if use_cuda and cfg.bf16 else contextlib.nullcontext()
    )
    pad_id = tokenizer.pad_token_id
    lengths = [len(s) + len(t) for s, t in zip(sources, targets)]

    def micro_batches():
        epoch = 0
        while True:
            for batch in length_grouped_batches(lengths, cfg.per_device_batch_size, seed=seed * 1_000_003 + epoch):
                yield epoch, batch
            epoch += 1

    stream = micro_batches()
    log_rows = []
    start = time.perf_counter()
    tokens_seen = 0
    bar = tqdm(total=total_steps, desc="train", unit="step")
    for step in range(1, total_steps + 1):
        window = [next(stream) for _ in range(cfg.accumulation_steps)]
        step_target_tokens = sum(len(targets[i]) for _, b in window for i in b)
        step_source_tokens = sum(len(sources[i]) for _, b in window for i in b)
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _, batch in window:
            ids, mask = pad_batch([sources[i] for i in batch], pad_id)
            labels, lmask = pad_batch([targets[i] for i in batch], pad_id)
            labels[lmask == 0] = -100
            n_tok = int(lmask.sum())
            with autocast:
                out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
            loss = out.loss.float() * (n_tok / step_target_tokens)
            loss.backward()
            step_loss += float(loss.detach())
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        tokens_seen += step_target_tokens + step_source_tokens
        elapsed = time.perf_counter() - start
        log_rows.append(
            {
                "step": step,
                "epoch": window[-1][0],
                "loss": step_loss,
                "learning_rate": cfg.learning_rate,
                "target_tokens": step_target_tokens,
                "source_tokens": step_source_tokens,
                "elapsed_s": elapsed,
            }
        )
        bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tokens_seen / max(elapsed, 1e-9):.0f}")
        bar.update(1)
        if step == 1 or step % max(1, total_steps // 10) == 0 or step == total_steps:
            log.info("step %d/%d loss %.4f tokens/s %.0f", step, total_steps, step_loss, tokens_seen / max(elapsed, 1e-9))
    bar.close()
    elapsed = time.perf_counter() - start

    model.eval()
    model.to("cpu")
    meta = {
        "model_spec": model_spec,
        "training": asdict(cfg),
        "instances_per_task": instances_per_task,
        "seed": seed,
        "n_instances": n,
        "n_tasks": int(data["task"].n_unique()),
        "steps": total_steps,
        "epochs_seen": log_rows[-1]["epoch"] + 1,
        "max_source_length_used": max_src,
        "final_loss": log_rows[-1]["loss"],
        "train_seconds": elapsed,
        "tokens_per_second": tokens_seen / max(elapsed, 1e-9),
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
    log.info("saved checkpoint to %s (%.1f s, final loss %.4f)", out_dir, elapsed, meta["final_loss"])
    return meta
