"""End-to-end on SLURM: the tiny workflow through ``profiles/slurm`` on a one-node cluster on localhost.

The cluster (munged, slurmctld, slurmd from Debian's ``slurm-wlm`` and ``munge``) is started by
:mod:`tests.slurm_cluster` in a private folder under /tmp and stopped afterwards. Every rule runs
as its own SLURM job (``.ci/run`` installs the packages; the test is skipped only where they are
missing). The SLURM job ids are printed (run pytest with ``-s`` to see them, CI does).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import time
from pathlib import Path

import polars as pl
import pytest

from tests.slurm_cluster import SlurmCluster, missing_binaries
from tests.test_workflow import REPO, RUNS, run_snakemake, tiny_config

pytestmark = pytest.mark.slow

_MISSING = missing_binaries()
if _MISSING:
    pytest.skip(
        f"SLURM/munge not installed ({', '.join(_MISSING)} not found; `apt-get install slurm-wlm munge`)",
        allow_module_level=True,
    )
pytest.importorskip(
    "snakemake_executor_plugin_slurm",
    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')",
)

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.*?)\)")


def _show(request, lines: list[str]) -> None:
    """Print past pytest's output capture, so that CI logs (`pytest -q`) show the SLURM job ids."""
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with ctx:
        print("\n" + "\n".join(lines), flush=True)


@pytest.fixture(scope="module")
def cluster():
    with SlurmCluster() as c:
        old = {k: os.environ.get(k) for k in c.env()}
        os.environ.update(c.env())
        try:
            yield c
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    c.cleanup()  # only after a clean stop: a failed start-up leaves its logs in /tmp/slurm-test-*


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, request):
    workdir = tmp_path_factory.mktemp("tiny-slurm")
    config = copy.deepcopy(tiny_config())
    # small requests, so that every job fits a CI runner's node
    config["resources"] = {
        "train": {"threads": 1, "mem_mb": 1000, "runtime": 10},
        "predict": {"threads": 1, "mem_mb": 1000, "runtime": 10},
    }
    t0 = time.monotonic()
    proc = run_snakemake(
        workdir, config,
        "--profile", str(REPO / "profiles" / "slurm"),
        "--executor", "slurm",
        "--jobs", "4",
        "--latency-wait", "5",
        "--retries", "0",
        "--default-resources", "mem_mb=500", "runtime=10",
        "--set-resources", *[f"{r}:mem_mb=500" for r in ("ingest", "prompts", "audit", "baseline", "evaluate", "report")],
        "--slurm-status-command", "squeue",  # no slurmdbd here, so no sacct
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-no-account",
    )
    elapsed = time.monotonic() - t0
    output = proc.stdout + proc.stderr
    submitted = SUBMITTED.findall(output)
    lines = [
        f"Snakemake on SLURM finished in {elapsed:.0f} s with exit code {proc.returncode}; {len(submitted)} SLURM jobs:",
        *(f"  snakemake job {job:>3} -> SLURM job {slurm_id}  (log: {log})" for job, slurm_id, log in submitted),
        "squeue (all states):",
        *cluster.squeue().splitlines(),
    ]
    _show(request, lines)
    if proc.returncode != 0:
        job_logs = "".join(
            f"--- {log} ---\n{Path(log).read_text(errors='replace')[-3000:]}\n"
            for _, _, log in submitted if Path(log).exists()
        )
        pytest.fail(f"snakemake failed:\n{output[-8000:]}\n{job_logs}\n{cluster.logs(20)}")
    return workdir, submitted, cluster.squeue()


def test_every_job_ran_on_slurm(slurm_run):
    """Every rule of the tiny workflow was submitted with sbatch and completed in SLURM."""
    workdir, submitted, squeue = slurm_run
    assert len(submitted) >= 10, submitted  # ingest x2, prompts, train, predict, baselines, evaluate, report...
    ids = [slurm_id for _, slurm_id, _ in submitted]
    assert len(set(ids)) == len(ids)
    states = {f[0]: f[2] for f in (line.split() for line in squeue.splitlines()[1:]) if len(f) >= 3}
    for slurm_id in ids:
        assert states.get(slurm_id) == "COMPLETED", (slurm_id, squeue)
    logs = [Path(log) for _, _, log in submitted]
    assert all(log.is_relative_to(workdir / "logs" / "slurm") for log in logs), logs[:3]
    assert all(log.exists() for log in logs)  # slurm-keep-successful-logs in the profile


def test_artifacts(slurm_run):
    """The same artifacts as the local run: data tables, checkpoints, predictions, metrics, report."""
    workdir, _, _ = slurm_run
    res = workdir / "results"
    assert pl.read_parquet(res / "data" / "test" / "instances.parquet").height == 9
    for run, _, eval_variant in RUNS:
        if eval_variant == "-":
            continue
        parts = run.split("/")
        assert (res / "predictions" / "/".join(parts[:-1]) / f"{parts[-1]}.parquet").exists(), run
    assert (res / "models" / "tiny-t5" / "original" / "n4" / "seed3").is_dir()
    summary = res / "report" / "summary.md"
    assert summary.exists() and "tiny end-to-end" in summary.read_text()
