"""Resumable training: a real training process is killed (SIGKILL, SIGTERM) and started again.

On CPU the resumed run must end with weights bit-identical to an uninterrupted run of the same
settings (model, optimiser, scheduler, RNG states and data position are all restored), and its loss
log must match step for step. The training process is the package's command line
(``python -m instruct_ablate train``), the same function the Snakemake rule calls.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch

from instruct_ablate.train import RESUME_STATE, Checkpointing, TrainingConfig, train

MODEL = {
    "kind": "t5_random",
    "config": {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "d_kv": 16},
}
# Dropout stays on (T5's 0.1), so the RNG state matters; a linear schedule with warm-up, so the scheduler does.
TRAINING = {
    "learning_rate": 1e-3,
    "effective_batch_size": 4,
    "per_device_batch_size": 2,
    "max_steps": 40,
    "lr_scheduler": "linear",
    "warmup_steps": 5,
    "max_source_length": 256,
    "max_target_length": 32,
    "device": "cpu",
}
N, SEED = 16, 3


def _cmd(shards: Path, out: Path, resume: Path | None, log: Path, every_steps: int | None = 5,
         model: dict = MODEL, training: dict = TRAINING) -> list[str]:
    cmd = [
        sys.executable, "-m", "instruct_ablate", "train",
        "--shards", str(shards), "--out", str(out),
        "--model", json.dumps(model), "--training", json.dumps(training),
        "--instances-per-task", str(N), "--seed", str(SEED), "--threads", "1", "--log", str(log),
    ]
    if resume is not None:
        cmd += ["--resume-dir", str(resume), "--checkpoint-every-minutes", "1000"]
        if every_steps:
            cmd += ["--checkpoint-every-steps", str(every_steps)]
    return cmd


def _start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, proc: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"training ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _saved_step(resume: Path) -> int:
    try:
        return json.loads((resume / "progress.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _logged_step(log: Path) -> int:
    """The last optimiser step the job log reports (it logs step 1 and every 4th step here)."""
    steps = [int(line.split(" step ")[1].split("/")[0]) for line in log.read_text().splitlines() if "] step " in line] \
        if log.exists() else []
    return max(steps, default=0)


@pytest.fixture(scope="module")
def reference(sample_shards, tmp_path_factory) -> Path:
    """The uninterrupted run (no resume state at all)."""
    out = tmp_path_factory.mktemp("reference") / "model"
    proc = subprocess.run(
        _cmd(sample_shards["train"], out, None, out.parent / "log"),
        env={**os.environ, "TQDM_DISABLE": "1"}, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _assert_same_run(out: Path, reference: Path, weights: str = "model.safetensors") -> None:
    assert (out / weights).read_bytes() == (reference / weights).read_bytes()
    cols = ["step", "epoch", "loss", "learning_rate", "target_tokens", "source_tokens"]
    got, want = pl.read_parquet(out / "train_log.parquet"), pl.read_parquet(reference / "train_log.parquet")
    assert got.select(cols).equals(want.select(cols))
    assert got.height == want.height


def test_sigkill_at_two_points_then_resume_gives_bit_identical_weights(sample_shards, reference, tmp_path):
    out, resume, log = tmp_path / "model", tmp_path / "resume", tmp_path / "train.log"
    cmd = _cmd(sample_shards["train"], out, resume, log)

    # 1st kill: right after the resume state of step >= 10 is written.
    proc = _start(cmd)
    _wait_for(lambda: _saved_step(resume) >= 10, proc, "a resume state at step 10")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    first = _saved_step(resume)
    assert 10 <= first < TRAINING["max_steps"] and not out.exists()

    # 2nd kill: at an arbitrary point between saves (mid-step), after the job has resumed and gone on.
    proc = _start(cmd)
    _wait_for(lambda: _logged_step(log) >= first + 9, proc, "9 more steps after resuming")
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert f"resuming from step {first}/" in log.read_text()
    second = _saved_step(resume)
    assert first < second < TRAINING["max_steps"] and not out.exists()
    assert not [p for p in resume.iterdir() if p.name not in (RESUME_STATE, "progress.json") and not p.name.endswith(".tmp")]

    # Started once more, it finishes from the last state.
    proc = _start(cmd)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    assert f"resuming from step {second}/" in log.read_text()
    _assert_same_run(out, reference)
    assert pl.read_parquet(out / "train_log.parquet")["learning_rate"].n_unique() > 2  # warm-up and decay happened
    assert json.loads((out / "metadata.json").read_text())["resumed_at_steps"] == [first, second]
    assert not resume.exists()  # the resume state is removed once the checkpoint is written


LLAMA = {
    "kind": "llama_random",
    "tokenizer": str(Path(__file__).resolve().parent / "data" / "tiny-bpe"),
    "config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 1024},
}
# LoRA dropout on (the RNG state matters), warm-up + linear decay, 24 steps.
LORA_TRAINING = {**TRAINING, "max_steps": 24,
                 "lora": {"r": 4, "alpha": 8, "dropout": 0.2, "target_modules": ["q_proj", "v_proj", "up_proj"]}}


def test_a_lora_run_killed_and_resumed_ends_with_a_bit_identical_adapter(sample_shards, tmp_path):
    """Decoder-only + LoRA: the resume state holds only the adapter; a SIGKILLed run resumes bit-identically."""
    shards = sample_shards["train"]
    ref = tmp_path / "ref"
    proc = subprocess.run(_cmd(shards, ref, None, tmp_path / "ref.log", model=LLAMA, training=LORA_TRAINING),
                          env={**os.environ, "TQDM_DISABLE": "1"}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]

    out, resume, log = tmp_path / "model", tmp_path / "resume", tmp_path / "train.log"
    cmd = _cmd(shards, out, resume, log, every_steps=4, model=LLAMA, training=LORA_TRAINING)
    proc = _start(cmd)
    _wait_for(lambda: _saved_step(resume) >= 8, proc, "a resume state at step 8")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    saved = _saved_step(resume)
    state = torch.load(resume / RESUME_STATE, weights_only=True)
    assert state["model"] and all("lora_" in name for name in state["model"])  # only what trains
    n_adapter = sum(t.numel() for t in state["model"].values())

    proc = _start(cmd)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    assert f"resuming from step {saved}/" in log.read_text()
    _assert_same_run(out, ref, "adapter_model.safetensors")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["resumed_at_steps"] == [saved]
    assert n_adapter == meta["trainable_parameters"] < meta["parameters"] / 5


def test_sigterm_saves_the_state_and_the_job_resumes(sample_shards, reference, tmp_path):
    """SLURM pre-emption sends SIGTERM: the step in flight finishes, the state is saved, the job exits non-zero."""
    out, resume, log = tmp_path / "model", tmp_path / "resume", tmp_path / "train.log"
    cmd = _cmd(sample_shards["train"], out, resume, log, every_steps=None)  # only SIGTERM saves
    proc = _start(cmd)
    _wait_for(lambda: _logged_step(log) >= 4, proc, "step 4")
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
    assert rc == 143, proc.stderr.read()[-3000:]
    stopped = _saved_step(resume)
    assert 4 <= stopped < TRAINING["max_steps"] and not out.exists()
    assert "SIGTERM received" in log.read_text()

    proc = _start(cmd)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    assert f"resuming from step {stopped}/" in log.read_text()
    _assert_same_run(out, reference)


def _short_cfg(**changes) -> TrainingConfig:
    return TrainingConfig.from_dict({**TRAINING, "max_steps": 3, **changes})


@pytest.mark.parametrize("content", ["other settings", "garbage"])
def test_a_resume_state_for_other_settings_or_unreadable_is_not_used(sample_shards, tmp_path, caplog, content):
    resume = tmp_path / "resume"
    resume.mkdir()
    if content == "garbage":
        (resume / RESUME_STATE).write_bytes(b"not a torch file")
    else:
        torch.save({"fingerprint": "0123456789abcdef", "step": 2}, resume / RESUME_STATE)
    threads = torch.get_num_threads()
    try:
        meta = train(MODEL, sample_shards["train"], tmp_path / "model", _short_cfg(), instances_per_task=N, seed=SEED,
                     threads=1, resume_dir=resume, checkpointing=Checkpointing(every_steps=1))
    finally:
        torch.set_num_threads(threads)
    assert meta["resumed_at_steps"] == []
    assert ("written for other inputs or settings" if content != "garbage" else "unreadable resume state") in caplog.text
    assert not resume.exists()


def test_the_fingerprint_covers_settings_and_data(sample_shards, tmp_path):
    """Another learning rate or other training data give another fingerprint (so no resume across them)."""
    threads = torch.get_num_threads()
    try:
        meta_a = train(MODEL, sample_shards["train"], tmp_path / "a", _short_cfg(), instances_per_task=N, seed=SEED,
                       threads=1)
        meta_b = train(MODEL, sample_shards["train"], tmp_path / "b", _short_cfg(learning_rate=5e-4),
                       instances_per_task=N, seed=SEED, threads=1)
        meta_c = train(MODEL, sample_shards["train"], tmp_path / "c", _short_cfg(), instances_per_task=N - 1,
                       seed=SEED, threads=1)
    finally:
        torch.set_num_threads(threads)
    assert len({meta_a["fingerprint"], meta_b["fingerprint"], meta_c["fingerprint"]}) == 3


def test_a_killed_workflow_resumes_its_training_job(tmp_path):
    """Snakemake and its training job are SIGKILLed together; after ``--unlock`` a new run resumes the job."""
    from tests.test_workflow import run_snakemake, snakemake_command, tiny_config

    cfg = tiny_config()
    cfg["training"]["max_steps"] = 60
    cfg["checkpointing"] = {"every_steps": 5, "every_minutes": None}
    target = "results/models/tiny-t5/original/n4/seed3"
    ref, work = tmp_path / "ref", tmp_path / "work"
    ref.mkdir(), work.mkdir()
    done = run_snakemake(ref, cfg, target)
    assert done.returncode == 0, done.stderr[-4000:]

    cmd, env = snakemake_command(work, cfg, target)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    resume = work / "results" / "resume" / "tiny-t5" / "original" / "n4" / "seed3"
    _wait_for(lambda: _saved_step(resume) >= 10, proc, "the training job's resume state at step 10", timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole session: snakemake and the job's Python process
    proc.wait()
    saved = _saved_step(resume)
    assert saved >= 10 and not (work / target).exists()

    assert run_snakemake(work, cfg, "--unlock").returncode == 0  # a killed Snakemake leaves its lock behind
    again = run_snakemake(work, cfg, target)
    assert again.returncode == 0, again.stderr[-4000:]
    log = (work / "results" / "logs" / "train" / "tiny-t5" / "original" / "n4" / "seed3.log").read_text()
    assert f"resuming from step {saved}/60" in log
    _assert_same_run(work / target, ref / target)
    assert not resume.exists()
