"""Benchmark: fine-tuning tokens per second of instruct-ablate's loop against transformers' Seq2SeqTrainer.

Both sides train the same model (same initial weights), on the same tokenised prompts, with the same
effective batch, micro-batch, accumulation, optimiser (AdamW, constant learning rate, grad-norm 1.0),
precision (bf16 autocast on CUDA, fp32 on CPU) and number of optimiser steps. Tokens per second count
non-padding source + target tokens, over the training loop only (model loading and tokenisation are
outside the clock on both sides). Each side runs in its own process, whose peak resident memory is
read from the kernel (CPU); on CUDA the peak allocated GPU memory is also given.

Sides:
  ours              instruct_ablate.train.train (length-grouped micro-batches, dynamic padding)
  trainer           Seq2SeqTrainer, defaults (random micro-batches, DataCollatorForSeq2Seq dynamic padding)
  trainer-grouped   Seq2SeqTrainer with train_sampling_strategy="group_by_length" (its own length grouping), for reference

On CUDA it also prints model FLOPs utilisation: 6 x parameters x tokens/s over the GPU's dense bf16 peak.

Examples (the figures in the README came from these):
  python benchmarks/train_throughput.py --model minilm --steps 12 --batch 16 --micro-batch 8 --max-source-length 256
  python benchmarks/train_throughput.py --model t5-small --steps 8 --batch 16 --micro-batch 8 --max-source-length 512
  python benchmarks/train_throughput.py --model t5-large --device cuda --steps 20 --batch 128 --micro-batch 16
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from _common import PRESETS, bf16_peak, build_shards, default_niv2, machine, print_table, run_worker

SIDES = ("ours", "trainer", "trainer-grouped")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Examples" + __doc__.split("Examples")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(PRESETS), default="minilm")
    p.add_argument("--niv2", type=Path, default=default_niv2(), help="NIv2 checkout (default: ../shared/niv2)")
    p.add_argument("--split", default=None, help="default: 'default' for a full layout, 'sample' for the sample")
    p.add_argument("--tasks", type=int, default=200, help="training tasks to take prompts from")
    p.add_argument("--instances-per-task", type=int, default=8)
    p.add_argument("--steps", type=int, default=12, help="optimiser steps per side")
    p.add_argument("--batch", type=int, default=16, help="effective batch (instances per optimiser step)")
    p.add_argument("--micro-batch", type=int, default=8, help="instances per forward pass")
    p.add_argument("--max-source-length", type=int, default=256)
    p.add_argument("--max-target-length", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--compile", action="store_true", help="ours with torch.compile")
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {SIDES}")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU bf16 peak, when not an H100/H200/A100/L4")
    p.add_argument("--seed", type=int, default=1)
    # internal: one side in this process
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--shards", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    return p


def _training_config(a):
    from instruct_ablate.train import TrainingConfig

    return TrainingConfig(learning_rate=a.lr, effective_batch_size=a.batch, per_device_batch_size=a.micro_batch,
                          max_steps=a.steps, max_source_length=a.max_source_length,
                          max_target_length=a.max_target_length, device=a.device, bf16=True, compile=a.compile)


def _cuda_peak_mib():
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def worker_ours(a) -> dict:
    import polars as pl
    import torch

    from instruct_ablate.train import train

    with tempfile.TemporaryDirectory() as tmp:
        meta = train(PRESETS[a.model], a.shards, Path(tmp) / "model", _training_config(a),
                     instances_per_task=a.instances_per_task, seed=a.seed, threads=a.threads)
        log = pl.read_parquet(Path(tmp) / "model" / "train_log.parquet")
    tokens = int(log["source_tokens"].sum() + log["target_tokens"].sum())
    return {"tokens": tokens, "positions": int(log["positions"].sum()), "seconds": meta["train_seconds"],
            "final_loss": meta["final_loss"], "params": meta["parameters"], "cuda_peak_mib": _cuda_peak_mib(),
            "attention": meta["attn_implementation"], "threads": torch.get_num_threads()}


def worker_trainer(a, grouped: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    from instruct_ablate.batching import encode_sources, encode_targets
    from instruct_ablate.models import attention_of, load_base, source_length_limit
    from instruct_ablate.prompts import read_shards

    torch.set_num_threads(a.threads)
    model, tokenizer = load_base(PRESETS[a.model], seed=a.seed)
    data = read_shards(a.shards, max_rank=a.instances_per_task).sort(["task", "rank"])
    sources = encode_sources(data, tokenizer, source_length_limit(model, a.max_source_length))
    targets = encode_targets(data["target"].to_list(), tokenizer, a.max_target_length)
    ds = Dataset.from_dict({"input_ids": sources, "attention_mask": [[1] * len(s) for s in sources], "labels": targets})
    base = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100, padding=True)
    counts = {"tokens": 0, "positions": 0}

    def collate(features):
        batch = base(features)
        counts["tokens"] += int(batch["attention_mask"].sum() + (batch["labels"] != -100).sum())
        counts["positions"] += batch["input_ids"].numel() + batch["labels"].numel()
        return batch

    clock = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            clock["start"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            clock["end"] = time.perf_counter()

    cuda = a.device.startswith("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        args = Seq2SeqTrainingArguments(
            output_dir=tmp, per_device_train_batch_size=a.micro_batch,
            gradient_accumulation_steps=a.batch // a.micro_batch, max_steps=a.steps, learning_rate=a.lr,
            lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
            optim="adamw_torch_fused" if cuda else "adamw_torch", bf16=cuda, use_cpu=not cuda,
            train_sampling_strategy="group_by_length" if grouped else "random", save_strategy="no", report_to=[], logging_steps=10**6, seed=a.seed,
            dataloader_num_workers=0, disable_tqdm=True,
        )
        trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=ds, data_collator=collate,
                                 callbacks=[Clock()])
        out = trainer.train()
    return {"tokens": counts["tokens"], "positions": counts["positions"], "seconds": clock["end"] - clock["start"],
            "final_loss": out.training_loss, "params": sum(p.numel() for p in model.parameters()),
            "cuda_peak_mib": _cuda_peak_mib(), "attention": attention_of(model), "threads": torch.get_num_threads()}


def main() -> None:
    a = _parser().parse_args()
    if a.worker:
        result = worker_ours(a) if a.worker == "ours" else worker_trainer(a, grouped=a.worker == "trainer-grouped")
        a.json_out.write_text(json.dumps(result))
        return
    if a.batch % a.micro_batch:
        raise SystemExit("--batch must be a multiple of --micro-batch")
    split = a.split or ("sample" if a.niv2.name == "niv2-sample" else "default")
    need = a.steps * a.batch
    print(f"# fine-tuning throughput: {a.model} on {machine()}, {a.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        shards = build_shards(a.niv2, split, "train", Path(tmp) / "train", instances_per_task=a.instances_per_task,
                              limit_tasks=a.tasks)
        from instruct_ablate.prompts import read_shards

        n = read_shards(shards, max_rank=a.instances_per_task).height
        print(f"data: {n} training prompts ({a.niv2}, split {split}, <= {a.tasks} tasks x {a.instances_per_task}); "
              f"{a.steps} steps x {a.batch} = {need} instances ({need / n:.2f} epochs); micro-batch {a.micro_batch}; "
              f"source <= {a.max_source_length} tokens; device {a.device}")
        common = ["--model", a.model, "--steps", str(a.steps), "--batch", str(a.batch), "--micro-batch",
                  str(a.micro_batch), "--max-source-length", str(a.max_source_length), "--max-target-length",
                  str(a.max_target_length), "--lr", str(a.lr), "--device", a.device, "--threads", str(a.threads),
                  "--instances-per-task", str(a.instances_per_task), "--seed", str(a.seed), "--shards", str(shards)]
        rows = []
        for side in a.sides.split(","):
            r = run_worker(__file__, [*common, "--worker", side, *(["--compile"] if a.compile and side == "ours" else [])])
            r["side"] = side
            r["tok_s"] = r["tokens"] / r["seconds"]
            r["padding"] = 100 * (1 - r["tokens"] / r["positions"])
            rows.append(r)
    peak = bf16_peak(a.peak_tflops) if a.device.startswith("cuda") else None
    ref = {r["side"]: r["tok_s"] for r in rows}
    for r in rows:
        r["vs_trainer"] = r["tok_s"] / ref["trainer"] if "trainer" in ref else None
        r["vs_grouped"] = r["tok_s"] / ref["trainer-grouped"] if "trainer-grouped" in ref else None
        r["mfu"] = 100 * 6 * r["params"] * r["tok_s"] / peak if peak else None
    print(f"model: {rows[0]['params'] / 1e6:.1f}M parameters, attention {rows[0]['attention']}")
    print_table(rows, [("side", "loop", ""), ("tokens", "tokens", "d"), ("seconds", "seconds", ".1f"),
                       ("tok_s", "tokens/s", ".0f"), ("vs_trainer", "x Trainer", ".2f"),
                       ("vs_grouped", "x Trainer grouped", ".2f"), ("padding", "padding %", ".1f"),
                       ("peak_rss_mib", "peak RSS MiB", ".0f"), ("cuda_peak_mib", "peak GPU MiB", ".0f"),
                       ("mfu", "MFU %", ".1f"), ("final_loss", "final loss", ".3f")])
    if not math.isfinite(rows[0]["tok_s"]):
        raise SystemExit("no tokens measured")


if __name__ == "__main__":
    main()
