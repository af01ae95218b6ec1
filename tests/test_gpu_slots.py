"""One GPU per job: the slot allocator of ``instruct_ablate.gpu_slots``.

No GPU is needed: ``INSTRUCT_ABLATE_GPU_COUNT`` simulates devices, and every test uses its own lock
folder under ``tmp_path``. The concurrency and SIGKILL tests run real separate processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from instruct_ablate.gpu_slots import ENV_COUNT, ENV_LOCK_DIR, GpuSlot, acquire_gpu, default_lock_dir

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited device, no SLURM, a private lock folder; returns it."""
    for var in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", ENV_COUNT):
        monkeypatch.delenv(var, raising=False)
    locks = tmp_path / "locks"
    monkeypatch.setenv(ENV_LOCK_DIR, str(locks))
    return locks


@contextlib.contextmanager
def held(path: Path):
    """Hold ``path``'s flock like another job would (flock locks belong to the open file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


# --- unit tests ---------------------------------------------------------------------------------


def test_first_free_slot_env_set_and_restored(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_COUNT, "2")
    with acquire_gpu(poll_s=0.01, timeout_s=1) as a:
        assert a == GpuSlot(devices="0", assigned_by="lock", lock_file=clean_env / "gpu0.lock")
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert a.lock_file.read_text().split()[0] == str(os.getpid())
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert (clean_env / "gpu0.lock").read_text() == ""  # holder info cleared on release
    with held(clean_env / "gpu0.lock"), acquire_gpu(poll_s=0.01, timeout_s=1) as b:
        assert b.devices == "1" and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    with acquire_gpu(timeout_s=1) as again:  # released: gpu0 is free again
        assert again.devices == "0"


def test_nested_acquisition_stays_on_the_pinned_device(clean_env: Path) -> None:
    """Inside a pinned process CUDA_VISIBLE_DEVICES lists one device: a nested acquire can only wait for it."""
    with acquire_gpu(n_devices=2, timeout_s=1):
        with pytest.raises(TimeoutError):
            with acquire_gpu(n_devices=2, poll_s=0.01, timeout_s=0.05):
                pass
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"


def test_released_and_restored_when_the_body_raises(clean_env: Path) -> None:
    with pytest.raises(KeyError):
        with acquire_gpu(n_devices=1):
            raise KeyError("boom")
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    with acquire_gpu(n_devices=1, timeout_s=0) as slot:
        assert slot.devices == "0"


def test_explicit_lock_dir_and_torch_device(tmp_path: Path) -> None:
    with acquire_gpu(n_devices=1, lock_dir=tmp_path / "elsewhere", timeout_s=1) as slot:
        assert slot.lock_file == tmp_path / "elsewhere" / "gpu0.lock"
        assert slot.torch_device("cuda") == "cuda"
        assert slot.torch_device("cuda:1") == "cuda"  # the one visible device is cuda:0
        assert slot.torch_device("cpu") == "cpu"


def test_default_lock_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_LOCK_DIR)
    assert default_lock_dir().name == f"instruct-ablate-gpu-slots-{os.getuid()}"
    monkeypatch.setenv(ENV_LOCK_DIR, "/some/where")
    assert default_lock_dir() == Path("/some/where")


def test_slurm_assignment_is_respected(clean_env: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setenv(ENV_COUNT, "8")
    with caplog.at_level(logging.INFO, logger="instruct_ablate.gpu_slots"):
        with acquire_gpu(timeout_s=1) as slot:
            assert slot == GpuSlot(devices="3", assigned_by="scheduler")
            assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
            assert slot.torch_device("cuda:0") == "cuda:0"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert not clean_env.exists()  # nothing locked
    assert "assigned by SLURM (job 4242): CUDA_VISIBLE_DEVICES=3" in caplog.text


def test_slurm_allocation_with_several_devices_is_shared_out(clean_env: Path, monkeypatch) -> None:
    """Local jobs inside one `salloc --gres=gpu:2` all inherit 0,1: each takes one of them."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    folder = clean_env / "slurm-77"
    with acquire_gpu(timeout_s=1) as a:
        assert a.devices == "0" and a.assigned_by == "lock" and a.lock_file == folder / "gpu0.lock"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    with held(folder / "gpu0.lock"):
        with acquire_gpu(timeout_s=1) as b:
            assert b.devices == "1"
        with held(folder / "gpu1.lock"), pytest.raises(TimeoutError):
            with acquire_gpu(poll_s=0.01, timeout_s=0.05):
                pass
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_inherited_device_list_is_the_pool(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`CUDA_VISIBLE_DEVICES=2,3 snakemake ...`: jobs share out devices 2 and 3 (lock files by device id)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv(ENV_COUNT, "8")  # the inherited list wins; a count only truncates it
    with acquire_gpu(timeout_s=1) as a:
        assert a.devices == "2" and os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    with held(clean_env / "gpu2.lock"), acquire_gpu(timeout_s=1) as b:
        assert b.devices == "3"
    assert {p.name for p in clean_env.iterdir()} == {"gpu2.lock", "gpu3.lock"}
    with acquire_gpu(n_devices=1, timeout_s=1) as c:
        assert c.devices == "2"


@pytest.mark.parametrize(
    "env, kwargs, origin",
    [
        ({ENV_COUNT: "0"}, {}, f"{ENV_COUNT}=0"),
        ({}, {"n_devices": 0}, "n_devices=0"),
        ({"CUDA_VISIBLE_DEVICES": ""}, {}, "CUDA_VISIBLE_DEVICES=''"),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, {}, "CUDA_VISIBLE_DEVICES='-1'"),
    ],
)
def test_zero_devices_is_a_clear_error(monkeypatch, env, kwargs, origin) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(RuntimeError, match="a CUDA device was requested but there is none") as e:
        with acquire_gpu(**kwargs):
            pytest.fail("entered without a device")
    assert origin in str(e.value) and "device: cpu" in str(e.value)


def test_default_count_comes_from_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """No override: torch's count (0 on this CPU build of torch, without CUDA being initialised)."""
    import torch

    with pytest.raises(RuntimeError, match=r"0 devices from torch\.cuda\.device_count\(\)"):
        with acquire_gpu():
            pass
    assert not torch.cuda.is_initialized()


@pytest.mark.parametrize("value", ["two", "-1"])
def test_bad_count_override(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_COUNT, value)
    with pytest.raises(ValueError, match=ENV_COUNT):
        with acquire_gpu():
            pass


def test_refuses_when_cuda_is_already_initialised(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake)
    with pytest.raises(RuntimeError, match="before any torch.cuda call"):
        with acquire_gpu(n_devices=1):
            pass
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_waits_logs_once_then_times_out(clean_env: Path, caplog) -> None:
    with acquire_gpu(n_devices=1, timeout_s=1):
        t0 = time.monotonic()
        with caplog.at_level(logging.INFO, logger="instruct_ablate.gpu_slots"):
            with pytest.raises(TimeoutError, match=rf"no free GPU slot .*all 1 busy: 0 held by pid {os.getpid()}"):
                with acquire_gpu(n_devices=1, poll_s=0.02, timeout_s=0.3):
                    pytest.fail("entered a busy slot")
        assert 0.3 <= time.monotonic() - t0 < 2
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    waits = [r.getMessage() for r in caplog.records if "waiting for a free GPU slot" in r.getMessage()]
    assert len(waits) == 1 and f"(all 1 busy: 0 held by pid {os.getpid()}" in waits[0]


# --- separate processes -------------------------------------------------------------------------

JOB = textwrap.dedent(
    """
    import json, logging, os, sys, time
    from pathlib import Path
    from instruct_ablate.gpu_slots import acquire_gpu

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    out, go, hold = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    out.with_suffix(".ready").touch()
    while not go.exists():
        time.sleep(0.005)
    with acquire_gpu(poll_s=0.02) as slot:
        start = time.time()
        if hold > 5:
            out.with_suffix(".held").write_text(slot.devices)
        time.sleep(hold)
        end = time.time()
        out.write_text(json.dumps({"device": os.environ["CUDA_VISIBLE_DEVICES"], "slot": slot.devices,
                                   "start": start, "end": end, "pid": os.getpid()}))
    """
)


def _spawn(tmp_path: Path, name: str, hold: float, n_gpus: int) -> subprocess.Popen:
    script = tmp_path / "job.py"
    if not script.exists():
        script.write_text(JOB)
    env = {**os.environ, ENV_COUNT: str(n_gpus), "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / f"{name}.json"), str(tmp_path / "go"), str(hold)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_concurrent_jobs_never_share_a_device(tmp_path: Path) -> None:
    n_jobs, n_gpus, hold = 6, 2, 0.5
    procs = [_spawn(tmp_path, f"job{i}", hold, n_gpus) for i in range(n_jobs)]
    try:
        for i in range(n_jobs):  # all started, then released at once: real contention
            _wait_for(tmp_path / f"job{i}.ready")
        (tmp_path / "go").touch()
        logs = [p.communicate(timeout=30)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * n_jobs, logs
    runs = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(n_jobs)]
    assert len({r["pid"] for r in runs}) == n_jobs
    assert all(r["device"] == r["slot"] for r in runs)
    assert {r["device"] for r in runs} == {"0", "1"}
    for dev in ("0", "1"):
        spans = sorted((r["start"], r["end"]) for r in runs if r["device"] == dev)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, f"device {dev} used by two jobs at once: {spans}"
    # Six 0.5 s jobs on two devices: some job had to wait, and said so.
    assert any("waiting for a free GPU slot (all 2 busy" in log for log in logs), logs
    assert all("GPU slot" in log and "acquired" in log for log in logs)


def test_sigkilled_holder_frees_its_slot(tmp_path: Path, clean_env: Path) -> None:
    proc = _spawn(tmp_path, "victim", 60, 1)
    try:
        (tmp_path / "go").touch()
        _wait_for(tmp_path / "victim.held")
        lock = clean_env / "gpu0.lock"
        assert lock.read_text().split()[0] == str(proc.pid)
        with pytest.raises(TimeoutError, match=f"held by pid {proc.pid}"):
            with acquire_gpu(n_devices=1, poll_s=0.02, timeout_s=0.1):
                pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    t0 = time.monotonic()
    with acquire_gpu(n_devices=1, poll_s=0.02, timeout_s=2) as slot:
        assert slot.devices == "0" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert time.monotonic() - t0 < 0.5


# --- the Snakemake scripts of rules train and predict ------------------------------------------

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow_scripts"


class _Named(list):
    """Enough of Snakemake's Namedlist: positional items plus named attributes and keys()."""

    def __init__(self, *items, **named):
        super().__init__([*items, *named.values()])
        self.__dict__.update(named)
        self._names = list(named)

    def keys(self):
        return self._names


def _run_script(name: str, smk: types.SimpleNamespace, monkeypatch, module: str) -> list[dict]:
    """Run workflow_scripts/<name> with ``smk`` as ``snakemake``; the model call is replaced by a recorder."""
    import importlib
    import runpy

    calls: list[dict] = []

    def fake(*args, **kwargs):
        calls.append({"args": args, "kwargs": kwargs, "cvd": os.environ.get("CUDA_VISIBLE_DEVICES")})

    monkeypatch.setattr(importlib.import_module(f"instruct_ablate.{module}"), module, fake)
    root, handlers, level = logging.getLogger(), logging.getLogger().handlers[:], logging.getLogger().level
    try:
        runpy.run_path(str(SCRIPTS / name), init_globals={"snakemake": smk})
    finally:
        for h in root.handlers:
            if h not in handlers:
                h.close()
        root.handlers[:], root.level = handlers, level
    return calls


class _Params(types.SimpleNamespace):
    """Snakemake's params: attributes and ``get``."""

    def get(self, key, default=None):
        return getattr(self, key, default)


def _train_job(tmp_path: Path, device: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        log=[str(tmp_path / "train.log")],
        params=_Params(
            model={"kind": "t5_random"}, training={"device": device, "max_steps": 1}, resume_dir="resume/m"
        ),
        config={"checkpointing": {"every_steps": 5}},
        input=_Named("prompts/train"),
        output=_Named("models/m"),
        wildcards=types.SimpleNamespace(n="10", seed="1"),
        threads=1,
    )


def _predict_job(tmp_path: Path, device: str) -> types.SimpleNamespace:
    decoding = {"max_source_length": 64, "max_new_tokens": 8, "device": device, "bf16": False}
    return types.SimpleNamespace(
        log=[str(tmp_path / "predict.log")],
        params=_Params(decoding=decoding),
        config={"decoding": {"batch_tokens": 256}},
        input=_Named(model="models/m", prompts="prompts/test"),
        output=_Named("predictions.parquet"),
        threads=1,
    )


def test_train_script_pins_cuda_jobs(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_COUNT, "1")
    (call,) = _run_script("train.py", _train_job(tmp_path, "cuda"), monkeypatch, "train")
    assert call["cvd"] == "0" and call["args"][3].device == "cuda"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert "GPU slot 0 acquired: CUDA_VISIBLE_DEVICES=0" in (tmp_path / "train.log").read_text()


def test_train_script_leaves_cpu_jobs_alone(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_COUNT, "0")  # would raise if the allocator were entered
    (call,) = _run_script("train.py", _train_job(tmp_path, "cpu"), monkeypatch, "train")
    assert call["cvd"] is None and call["args"][3].device == "cpu"
    assert not clean_env.exists()


def test_predict_script_pins_cuda_jobs(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_COUNT, "2")
    with held(clean_env / "gpu0.lock"):
        (call,) = _run_script("predict.py", _predict_job(tmp_path, "cuda:1"), monkeypatch, "predict")
    assert call["cvd"] == "1" and call["kwargs"]["device"] == "cuda"  # cuda:1 is this job's only device
    assert call["args"][0] == {"checkpoint": "models/m", "attn_implementation": None}
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_predict_script_leaves_cpu_jobs_alone(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_COUNT, "0")
    (call,) = _run_script("predict.py", _predict_job(tmp_path, "cpu"), monkeypatch, "predict")
    assert call["cvd"] is None and call["kwargs"]["device"] == "cpu"
    assert not clean_env.exists()


def test_job_device_passes_cpu_through_and_pins_cuda(tmp_path: Path, monkeypatch) -> None:
    """CPU configs take no slot; a cuda:N config holds a slot and is told to use `cuda`."""
    from instruct_ablate.gpu_slots import job_device

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with job_device("cpu", lock_dir=tmp_path) as device:
        assert device == "cpu" and "CUDA_VISIBLE_DEVICES" not in os.environ
    assert not list(tmp_path.iterdir())
    with job_device("cuda:1", n_devices=2, lock_dir=tmp_path, timeout_s=1) as device:
        assert device == "cuda" and os.environ["CUDA_VISIBLE_DEVICES"] in {"0", "1"}
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
