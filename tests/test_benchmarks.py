"""The benchmark scripts still run (tiny settings, embedded sample). Their figures are not checked here:
benchmarks print measurements, they are not timed tests."""

from __future__ import annotations

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
               "--instances-per-task", "4", "--steps", "2", "--batch", "4", "--micro-batch", "2", "--sides", "ours")
    assert "| ours |" in out and "tokens/s" in out


def test_predict_benchmark_runs_and_compares_outputs():
    out = _run("benchmarks/predict_throughput.py", "--model", "tiny", "--niv2", SAMPLE, "--tasks", "2",
               "--instances-per-task", "3", "--max-new-tokens", "4", "--naive-batch-size", "2")
    assert "| ours |" in out and "| naive |" in out and "outputs identical: 6/6" in out


def test_data_stage_benchmark_runs():
    out = _run("benchmarks/data_stage.py", "--niv2", SAMPLE, "--instances-per-task", "8")
    assert "whole data stage: 18 tasks" in out


@pytest.mark.parametrize("script", ["train_throughput.py", "predict_throughput.py", "data_stage.py"])
def test_benchmarks_explain_themselves(script):
    assert "Example" in _run(f"benchmarks/{script}", "--help")
