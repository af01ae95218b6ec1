"""Benchmark: fine-tuning tokens per second of instruct-ablate's loop against Hugging Face's Trainer.

Both sides train the same model (same initial weights; with --lora the same adapter), on the same
tokenised prompts and targets (one `instruct_ablate.train.prepare` builds model and data for either side),
with the same effective batch, micro-batch, accumulation, optimiser (fused AdamW, constant learning rate,
grad-norm 1.0), precision (bf16 autocast on CUDA, fp32 on CPU) and number of optimiser steps, and the same
objective: the mean cross-entropy over the target tokens of each optimiser step (completion-only loss for
decoder-only models: prompt + target in one sequence, labels -100 on the prompt). Tokens per second count
non-padding prompt + target tokens of the steps run, over the training loop only (model loading and
tokenisation are outside the clock on both sides), after --warmup-steps steps (default 1: lazy
initialisation and allocator warm-up are not timed; the table's "instances" and "tokens" are the whole
run). Each run is a fresh process; the sides run alternately, --repeats times each (A B, B A, ...), and the
table gives median (min-max) per side and the ratio of the medians. Peak memory: resident set of the
training loop (its peak, and the resident set when it starts: libraries and model); on CUDA, peak
allocated GPU memory.

Sides:
  ours              instruct_ablate.train.run_loop (length-grouped micro-batches, dynamic padding; decoder-only:
                    LM head and cross-entropy only at target positions)
  trainer-grouped   Trainer with train_sampling_strategy="group_by_length" (transformers 5's name for
                    group_by_length; grouped by prompt + target length, as ours), DataCollatorForSeq2Seq dynamic
                    padding (right), the model's own loss: the anchor, the Trainer's best setting
  trainer           the same with random micro-batches (the Trainer's default), for reference

(Seq2seq models get Seq2SeqTrainer, whose training is the Trainer's.) The Trainer's loss: for models whose
loss honours num_items_in_batch (Llama and other causal LMs) the Trainer's default is kept: the model
normalises over the step's target tokens and the Trainer does not divide again by the accumulation steps,
the same per-step token mean as ours. Models that take **kwargs but ignore num_items_in_batch (T5,
BERT2BERT in transformers 5.25) would get neither normalisation (an upstream bug: loss and gradient x the
accumulation steps), so for them, found by one probe forward before the clock starts,
`trainer.model_accepts_loss_kwargs = False`: the mean of the micro-batch means, divided by the accumulation
steps. tests/test_benchmarks.py checks both at lr 0. "mean loss" is the mean over the steps run of each
step's loss, on both sides.

With --peak-tflops (or on CUDA, a known GPU) it also prints model FLOPs utilisation: 6 x parameters x tokens/s
over the peak (all parameters, embeddings included; the same 6N for LoRA).

Examples (the figures in the README came from these):
  python benchmarks/train_throughput.py --model minilm --steps 12 --batch 16 --micro-batch 8 --max-source-length 256
  python benchmarks/train_throughput.py --model t5-small --steps 8 --batch 16 --micro-batch 8 --max-source-length 512
  python benchmarks/train_throughput.py --model smollm2 --sides ours,trainer-grouped --steps 3 --batch 8 --micro-batch 4 --max-source-length 384
  python benchmarks/train_throughput.py --model smollm2 --lora --sides ours,trainer-grouped --steps 3 --batch 8 --micro-batch 4
  python benchmarks/train_throughput.py --model t5-large --device cuda --steps 20 --batch 128 --micro-batch 16
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from _common import (PRESETS, PeakMemory, alternate, bf16_peak, build_shards, default_niv2, machine, materialise,
                     print_table, spread)

SIDES = ("ours", "trainer", "trainer-grouped")
LORA = {"r": 16, "alpha": 32, "dropout": 0.05}  # instruct_ablate.lora defaults: q, k, v, o projections


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Examples" + __doc__.split("Examples")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(PRESETS), default="minilm")
    p.add_argument("--niv2", type=Path, default=default_niv2(), help="NIv2 checkout (default: ../shared/niv2)")
    p.add_argument("--split", default=None, help="default: 'default' for a full layout, 'sample' for the sample")
    p.add_argument("--tasks", type=int, default=200, help="training tasks to take prompts from")
    p.add_argument("--instances-per-task", type=int, default=8)
    p.add_argument("--steps", type=int, default=12, help="optimiser steps per run")
    p.add_argument("--warmup-steps", type=int, default=1, help="first steps not timed (kept below --steps)")
    p.add_argument("--batch", type=int, default=16, help="effective batch (instances per optimiser step)")
    p.add_argument("--micro-batch", type=int, default=8, help="instances per forward pass")
    p.add_argument("--max-source-length", type=int, default=256)
    p.add_argument("--max-target-length", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lora", action="store_true", help=f"LoRA {LORA} on both sides instead of full fine-tuning")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--compile", action="store_true", help="ours with torch.compile")
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {SIDES}")
    p.add_argument("--repeats", type=int, default=3, help="runs per side, alternating")
    p.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak for MFU (default: known GPUs only)")
    p.add_argument("--seed", type=int, default=1)
    # internal: one side in this process
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--shards", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    return p


def prepare_job(a):
    """Model (with LoRA when asked), tokenised data, optimiser: the same for every side."""
    import torch

    from instruct_ablate.train import TrainingConfig, prepare

    torch.set_num_threads(a.threads)
    cfg = TrainingConfig(learning_rate=a.lr, effective_batch_size=a.batch, per_device_batch_size=a.micro_batch,
                         max_steps=a.steps, max_source_length=a.max_source_length,
                         max_target_length=a.max_target_length, device=a.device, bf16=True, compile=a.compile,
                         lora=LORA if a.lora else None)
    spec = json.loads(a.spec) if a.spec else PRESETS[a.model]
    return prepare(spec, a.shards, cfg, instances_per_task=a.instances_per_task, seed=a.seed)


def _warmup(a) -> int:
    return max(0, min(a.warmup_steps, a.steps - 1))


def _result(job, peak: PeakMemory, run: dict, warm: dict, mean_loss: float) -> dict:
    """``run``: instances, tokens, positions of the whole run; ``warm``: the same and ``seconds`` at the end
    of the warm-up steps. The timed part is the difference."""
    import torch

    from instruct_ablate.models import attention_of

    return {**run, "timed_tokens": run["tokens"] - warm["tokens"], "seconds": peak.seconds - warm["seconds"],
            "mean_loss": mean_loss, "threads": torch.get_num_threads(), "start_rss_mib": peak.start_rss_mib,
            "params": sum(p.numel() for p in job.model.parameters()),
            "trainable": sum(p.numel() for p in job.model.parameters() if p.requires_grad),
            "loop_rss_mib": peak.rss_mib, "cuda_peak_mib": peak.cuda_mib, "attention": attention_of(job.model)}


def worker_ours(a) -> dict:
    from instruct_ablate.train import ResumeState, run_loop

    job = prepare_job(a)
    if a.compile:
        job.model.compile()
    state = ResumeState()
    with PeakMemory(a.device) as peak:
        run_loop(job, state)
    rows, w = state.log_rows, _warmup(a)

    def totals(rs):
        return {"instances": len(rs) * a.batch, "tokens": sum(r["source_tokens"] + r["target_tokens"] for r in rs),
                "positions": sum(r["positions"] for r in rs)}

    warm = {**totals(rows[:w]), "seconds": rows[w - 1]["elapsed_s"] if w else 0.0}
    return _result(job, peak, totals(rows), warm, sum(r["loss"] for r in rows) / len(rows))


def trainer_features(family, prompts, targets) -> dict[str, list]:
    """The job's tokenised examples as a Trainer dataset: seq2seq, the prompt is the input and the target the
    labels; decoder-only, prompt + target is the input, labels -100 on the prompt. ``length`` (prompt + target
    tokens) is what ``group_by_length`` sorts by and what the token count adds up."""
    if family.name == "seq2seq":
        ids, labels = list(prompts), list(targets)
    else:
        ids = [list(p) + list(t) for p, t in zip(prompts, targets)]
        labels = [[-100] * len(p) + list(t) for p, t in zip(prompts, targets)]
    return {"input_ids": ids, "attention_mask": [[1] * len(s) for s in ids], "labels": labels,
            "length": [len(p) + len(t) for p, t in zip(prompts, targets)]}


def make_trainer(job, out_dir: str, *, grouped: bool, counts: dict, seed: int, peak: PeakMemory | None = None,
                 warmup: int = 0, sampling: str | None = None):
    """A Trainer for ``job``'s model and data with ``job.cfg``'s batch, steps, optimiser and precision; its
    training steps add the instances, non-padding tokens and padded positions they train on to ``counts``; ``peak``
    clocks its training loop (from the Trainer's on_train_begin to on_train_end: its set-up is not timed), and
    ``counts["warm"]`` receives the counts and seconds at the end of step ``warmup``."""
    from datasets import Dataset
    from transformers import (DataCollatorForSeq2Seq, PrinterCallback, Seq2SeqTrainer, Seq2SeqTrainingArguments,
                              Trainer, TrainerCallback, TrainingArguments)

    cfg, family = job.cfg, job.family
    seq2seq = family.name == "seq2seq"
    job.tokenizer.padding_side = "right"  # as ours: right padding, the model's own position ids
    base = DataCollatorForSeq2Seq(job.tokenizer, model=job.model if seq2seq else None, label_pad_token_id=-100,
                                  padding=True)

    def collate(features):
        lengths = [f.pop("length") for f in features]
        batch = base(features)
        positions = batch["input_ids"].numel() + (batch["labels"].numel() if seq2seq else 0)
        return {**batch, "counts": (len(features), sum(lengths), positions)}

    cuda = job.device.type == "cuda"
    args_cls, trainer_cls = (Seq2SeqTrainingArguments, Seq2SeqTrainer) if seq2seq else (TrainingArguments, Trainer)
    args = args_cls(
        output_dir=out_dir, per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.accumulation_steps, max_steps=job.total_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm or 0.0,
        optim="adamw_torch_fused", bf16=cuda and cfg.bf16, use_cpu=not cuda,  # fused: as ours, CPU too
        train_sampling_strategy=sampling or ("group_by_length" if grouped else "random"),
        remove_unused_columns=False,  # the collator reads `length`
        save_strategy="no", report_to=[], logging_steps=10**6, seed=seed, dataloader_num_workers=0,
        disable_tqdm=True,
    )

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            peak.start()
            counts["warm"] = {"instances": 0, "tokens": 0, "positions": 0, "seconds": 0.0}

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup:
                counts["warm"] = {**{k: counts[k] for k in ("instances", "tokens", "positions")}, "seconds": peak.lap()}

        def on_train_end(self, args, state, control, **kw):
            peak.stop()

    class Counted(trainer_cls):
        """Counts what each training step consumes (the data loader fetches one batch ahead: not counted)."""

        def training_step(self, model, inputs, num_items_in_batch=None):
            for key, n in zip(("instances", "tokens", "positions"), inputs.pop("counts")):
                counts[key] += n
            return super().training_step(model, inputs, num_items_in_batch)

    ds = Dataset.from_dict(trainer_features(family, job.prompts, job.targets))
    trainer = Counted(model=job.model, args=args, train_dataset=ds, data_collator=collate,
                      callbacks=[Clock()] if peak else [])
    trainer.remove_callback(PrinterCallback)  # no metrics dict on stdout
    if trainer.model_accepts_loss_kwargs and not _loss_honours_num_items(job, collate(ds.select(range(2)).to_list())):
        # The model takes **kwargs but its loss ignores num_items_in_batch (T5, BERT2BERT in transformers 5.25):
        # the Trainer would then neither normalise over the step nor divide by the accumulation steps.
        trainer.model_accepts_loss_kwargs = False
    return trainer


def _loss_honours_num_items(job, batch) -> bool:
    """Whether the model's loss divides its sum by ``num_items_in_batch`` (one probe, eval mode, no grad)."""
    import torch

    batch = {k: v.to(job.device) for k, v in batch.items() if k != "counts"}
    job.model.eval()
    with torch.no_grad():
        one, two = (float(job.model(**batch, num_items_in_batch=n).loss) for n in (1000, 2000))
    job.model.train()
    return abs(one - 2 * two) <= 1e-4 * abs(one)


def worker_trainer(a, grouped: bool) -> dict:
    job = prepare_job(a)
    counts = {"tokens": 0, "positions": 0, "instances": 0}
    peak = PeakMemory(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(job, tmp, grouped=grouped, counts=counts, seed=a.seed, peak=peak, warmup=_warmup(a))
        out = trainer.train()
    warm = counts.pop("warm")
    return _result(job, peak, counts, warm, out.training_loss)


def main() -> None:
    a = _parser().parse_args()
    if a.worker:
        result = worker_ours(a) if a.worker == "ours" else worker_trainer(a, grouped=a.worker == "trainer-grouped")
        a.json_out.write_text(json.dumps(result))
        return
    if a.batch % a.micro_batch:
        raise SystemExit("--batch must be a multiple of --micro-batch")
    sides = a.sides.split(",")
    if set(sides) - set(SIDES):
        raise SystemExit(f"--sides: unknown {sorted(set(sides) - set(SIDES))}")
    split = a.split or ("sample" if a.niv2.name == "niv2-sample" else "default")
    need = a.steps * a.batch
    what = "LoRA " + ", ".join(f"{k} {v}" for k, v in LORA.items()) if a.lora else "full fine-tuning"
    print(f"# fine-tuning throughput: {a.model}, {what}, on {machine()}, {a.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        shards = build_shards(a.niv2, split, "train", Path(tmp) / "train", instances_per_task=a.instances_per_task,
                              limit_tasks=a.tasks)
        spec = materialise(PRESETS[a.model], Path(tmp) / "model")
        from instruct_ablate.prompts import read_shards

        n = read_shards(shards, max_rank=a.instances_per_task).height
        print(f"data: {n} training prompts ({a.niv2}, split {split}, <= {a.tasks} tasks x {a.instances_per_task}); "
              f"{a.steps} steps x {a.batch} = {need} instances ({need / n:.2f} epochs); micro-batch {a.micro_batch}; "
              f"source <= {a.max_source_length} tokens; device {a.device}; {a.repeats} runs per side, alternating; "
              f"first {_warmup(a)} step(s) not timed")
        common = ["--model", a.model, "--spec", json.dumps(spec), "--steps", str(a.steps), "--batch", str(a.batch),
                  "--micro-batch", str(a.micro_batch), "--warmup-steps", str(a.warmup_steps),
                  "--max-source-length", str(a.max_source_length), "--max-target-length", str(a.max_target_length),
                  "--lr", str(a.lr), "--device", a.device, "--threads", str(a.threads), "--instances-per-task",
                  str(a.instances_per_task), "--seed", str(a.seed), "--shards", str(shards),
                  *(["--lora"] if a.lora else [])]
        runs = [(s, [*common, "--worker", s, *(["--compile"] if a.compile and s == "ours" else [])]) for s in sides]
        results = alternate(__file__, runs, a.repeats)
    peak = bf16_peak(a.peak_tflops) if a.peak_tflops or a.device.startswith("cuda") else None
    rows = []
    for side in sides:
        rs = results[side]
        r = {"side": side, "instances": rs[0]["instances"], "tokens": rs[0]["tokens"],
             "padding": 100 * (1 - rs[0]["tokens"] / rs[0]["positions"]),
             "params": rs[0]["params"], "trainable": rs[0]["trainable"], "attention": rs[0]["attention"]}
        for key in ("seconds", "mean_loss", "start_rss_mib", "loop_rss_mib", "cuda_peak_mib"):
            vals = [x[key] for x in rs if x.get(key) is not None]
            r[key] = spread(vals) if vals else None
        r["tok_s"] = spread([x["timed_tokens"] / x["seconds"] for x in rs])
        r["mfu"] = spread([100 * 6 * x["params"] * x["timed_tokens"] / x["seconds"] / peak for x in rs]) if peak else None
        if len({x["tokens"] for x in rs}) > 1 or {x["instances"] for x in rs} != {a.steps * a.batch}:
            raise SystemExit(f"{side}: the runs saw {[x['instances'] for x in rs]} instances, "
                             f"{[x['tokens'] for x in rs]} tokens (expected {a.steps * a.batch} instances each)")
        rows.append(r)
    threads = {x["threads"] for rs in results.values() for x in rs}
    if threads != {a.threads}:
        print(f"warning: runs ended with {sorted(threads)} torch threads, not {a.threads}")
    med = {r["side"]: r["tok_s"]["median"] for r in rows}
    for r in rows:
        r["vs_trainer"] = r["tok_s"]["median"] / med["trainer"] if "trainer" in med else None
        r["vs_grouped"] = r["tok_s"]["median"] / med["trainer-grouped"] if "trainer-grouped" in med else None
    print(f"model: {rows[0]['params'] / 1e6:.1f}M parameters ({rows[0]['trainable'] / 1e6:.2f}M trainable), "
          f"attention {rows[0]['attention']}" + (f"; MFU over a peak of {peak / 1e12:.0f} TFLOP/s" if peak else ""))
    print_table(rows, [("side", "loop", ""), ("instances", "instances", "d"), ("tokens", "tokens", "d"),
                       ("seconds", "timed seconds", ".1f"),
                       ("tok_s", "tokens/s", ".0f"), ("vs_trainer", "x Trainer (medians)", ".2f"),
                       ("vs_grouped", "x Trainer grouped (medians)", ".2f"), ("padding", "padding %", ".1f"),
                       ("start_rss_mib", "RSS at loop start MiB", ".0f"), ("loop_rss_mib", "loop peak RSS MiB", ".0f"),
                       ("cuda_peak_mib", "peak GPU MiB", ".0f"), ("mfu", "MFU %", ".1f"),
                       ("mean_loss", "mean loss", ".4f")])
    if not all(math.isfinite(r["tok_s"]["median"]) for r in rows):
        raise SystemExit("no tokens measured")


if __name__ == "__main__":
    main()
