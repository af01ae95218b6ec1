"""Errors where users look: a failing job's own log file holds its error; bad paths give one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_workflow import run_snakemake, tiny_config


@pytest.mark.slow
def test_a_failing_job_writes_its_error_to_its_log_file(niv2_factory, niv2_task, tmp_path):
    root = niv2_factory(train={"task001_good": niv2_task(), "task002_bad": '{"Definition": ["cut off'},
                        test={"task003_test": niv2_task()})
    cfg = tiny_config()
    cfg.update(niv2_dir=str(root), split="toy")
    cfg["data"].update(limit_train_tasks=None, limit_test_tasks=None)
    proc = run_snakemake(tmp_path, cfg)
    assert proc.returncode != 0
    log = (tmp_path / "results" / "logs" / "ingest" / "train.log").read_text()
    assert "job failed: NIv2FormatError" in log and "task002_bad.json" in log and "invalid JSON" in log
    assert "Traceback" in log
    # stderr carries the message itself (Snakemake adds its own summary around it), not a Python traceback
    assert "error: NIv2FormatError" in proc.stderr and "task002_bad.json" in proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr
    assert not (tmp_path / "results" / "data" / "train" / "tasks.parquet").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["predict", "--shards", "/no/such/shards", "--checkpoint", "/no/such/model", "--out", "x.parquet"],
         "/no/such/model: not a checkpoint directory"),
        (["train", "--shards", "/no/such/shards", "--out", "m", "--model", '{"kind": "t5_random"}',
          "--instances-per-task", "2"], "/no/such/shards: no shard-*.parquet files"),
        (["train", "--shards", "s", "--out", "m", "--model", "{not json", "--instances-per-task", "2"],
         "--model: neither a file nor valid JSON"),
        (["train", "--shards", "s", "--out", "m", "--model", '{"kind": "t5_random"}', "--training",
          '{"learning_rat": 1}', "--instances-per-task", "2"], "training: unknown keys ['learning_rat']"),
    ],
)
def test_the_command_line_reports_bad_input_in_one_line(args, needle, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "instruct_ablate", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode in (1, 2) and needle in proc.stderr
    assert "Traceback" not in proc.stderr
