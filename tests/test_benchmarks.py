"""The benchmark scripts still run (tiny settings, embedded sample). Their figures are not checked here:
benchmarks print measurements, they are not timed tests. What is checked is that the comparisons are fair:
the Trainer anchor optimises the objective it is said to, and the prediction sides agree on their outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = str(REPO / "data" / "niv2-sample")


def _run(*args: str) -> str:
    env = {**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_train_benchmark_runs():
    out = _run("benchmarks/train_throughput.py", "--model", "tiny", "--niv2", SAMPLE, "--tasks", "4",
               "--instances-per-task", "4", "--steps", "2", "--batch", "4", "--micro-batch", "2", "--sides", "ours",
               "--repeats", "2", "--threads", "1")
    assert "| ours | 8 |" in out and "tokens/s" in out and "–" in out  # two runs: median (min–max)


def test_predict_benchmark_runs_and_compares_outputs():
    out = _run("benchmarks/predict_throughput.py", "--model", "tiny", "--niv2", SAMPLE, "--tasks", "2",
               "--instances-per-task", "3", "--max-new-tokens", "4", "--naive-batch-size", "2", "--repeats", "1",
               "--threads", "1")
    assert "| ours |" in out and "| naive-b2 |" in out and "outputs identical (ours vs naive-b2): 6/6" in out


def test_gpu_benchmarks_run_their_comparisons_on_cpu_with_a_tiny_llama():
    """benchmarks/gpu/run_all.py drives the causal presets of both scripts (full fine-tuning, LoRA, prediction)
    with MFU; on CPU with the tiny Llama everything but CUDA itself runs."""
    out = _run("benchmarks/gpu/run_all.py", "--device", "cpu", "--model", "tiny-llama", "--scale", "tiny",
               "--repeats", "1", "--threads", "1", "--niv2", SAMPLE)
    assert out.count("| ours | 8 |") == 2 and out.count("| trainer-grouped | 8 |") == 2  # full and LoRA
    assert "LoRA r 16" in out and "MFU over a peak of 989 TFLOP/s" in out
    assert "| naive-b2 | 6 |" in out and "outputs identical (ours vs naive-b2): 6/6" in out
    assert "failed" not in out


def test_gpu_benchmarks_dry_run_names_cuda_bf16_commands():
    out = _run("benchmarks/gpu/run_all.py", "--dry-run")
    assert "H100 SXM dense bf16" in out
    lines = [line for line in out.splitlines() if line.split(":")[0] in ("train", "lora", "predict")]
    assert len(lines) == 3 and all("--device cuda" in line and "--peak-tflops 989" in line for line in lines)
    assert lines[1].endswith("--lora")


@pytest.mark.parametrize("model", ["tiny-llama", "tiny"])
def test_trainer_anchor_loss_is_the_step_mean(model, tmp_path):
    """At one step of 2 micro-batches the Trainer's loss is ours' objective (the mean over the step's target
    tokens) for a causal LM, and the mean of the micro-batch means for T5, whose loss ignores
    num_items_in_batch (without the benchmark's fix the Trainer would report and descend twice the loss)."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    import train_throughput as tt
    from _common import PRESETS, build_shards

    a = tt._parser().parse_args(["--model", model, "--steps", "1", "--batch", "4", "--micro-batch", "2",
                                 "--threads", "1", "--instances-per-task", "4"])
    no_dropout = {"dropout_rate": 0.0, "attention_dropout": 0.0}  # T5's and Llama's names
    a.spec = json.dumps({**PRESETS[model], "config": {**PRESETS[model]["config"], **no_dropout}})
    a.shards = build_shards(Path(SAMPLE), "sample", "train", tmp_path / "train", instances_per_task=4, limit_tasks=4)
    job = tt.prepare_job(a)
    sums, tokens = [], []
    with torch.no_grad():
        for k in (0, 2):  # sequential sampling: instances 0-1, then 2-3
            batch = job.family.batch(job.prompts[k : k + 2], job.targets[k : k + 2], job.tokenizer.pad_token_id)
            sums.append(float(job.family.loss_sum(job.model, batch.inputs)))
            tokens.append(batch.target_tokens)
    counts = {"tokens": 0, "positions": 0, "instances": 0}
    trainer = tt.make_trainer(job, str(tmp_path / "out"), grouped=False, counts=counts, seed=1, sampling="sequential")
    loss = trainer.train().training_loss
    expected = sum(sums) / sum(tokens) if model == "tiny-llama" else sum(s / t for s, t in zip(sums, tokens)) / 2
    assert loss == pytest.approx(expected, rel=1e-5)
    assert trainer.model_accepts_loss_kwargs == (model == "tiny-llama")
    assert counts["instances"] == 4 and counts["tokens"] == sum(len(job.prompts[i]) + len(job.targets[i]) for i in range(4))


def test_data_stage_benchmark_runs():
    out = _run("benchmarks/data_stage.py", "--niv2", SAMPLE, "--instances-per-task", "8")
    assert "whole data stage: 18 tasks" in out


@pytest.mark.parametrize("script", ["train_throughput.py", "predict_throughput.py", "data_stage.py", "gpu/run_all.py"])
def test_benchmarks_explain_themselves(script):
    assert "Example" in _run(f"benchmarks/{script}", "--help")
