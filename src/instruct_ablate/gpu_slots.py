"""One GPU per job: pin each local job to its own device with per-device lock files.

Snakemake's ``gpu`` resource only caps how many GPU jobs run at once (and only when
``--resources gpu=N`` is given); it never says *which* device a job gets, and it never sets
``CUDA_VISIBLE_DEVICES`` for local jobs. Without help every job would run on ``cuda:0``.
:func:`acquire_gpu` fills that gap: a job takes an exclusive, non-blocking ``fcntl.flock`` on one of
the slot files ``<lock_dir>/gpu<k>.lock`` and sets ``CUDA_VISIBLE_DEVICES=k`` while it holds it; when
every slot is taken it logs one line and waits. The kernel drops a ``flock`` when its holder's last
file descriptor closes, so a crashed or ``SIGKILL``-ed job frees its slot; no stale-lock clean-up is
needed. The lock files themselves are never deleted (deleting a ``flock`` file races with waiters).

Under SLURM with GRES the scheduler chooses the device and sets ``CUDA_VISIBLE_DEVICES`` itself;
:func:`acquire_gpu` then keeps that choice (see its docstring).

``CUDA_VISIBLE_DEVICES`` is read once, when CUDA initialises in the process. Enter
:func:`acquire_gpu` before any ``torch.cuda`` call (importing ``torch`` is fine); it raises
``RuntimeError`` if CUDA is already initialised.

Environment variables: ``INSTRUCT_ABLATE_GPU_COUNT`` (number of device slots, overriding
``torch.cuda.device_count()``; the tests use it to simulate GPUs) and
``INSTRUCT_ABLATE_GPU_LOCK_DIR`` (folder of the slot files; default
``<tempdir>/instruct-ablate-gpu-slots-<uid>``, shared by every run of this user on this machine).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["ENV_COUNT", "ENV_LOCK_DIR", "GpuSlot", "acquire_gpu", "default_lock_dir", "job_device"]

ENV_COUNT = "INSTRUCT_ABLATE_GPU_COUNT"
ENV_LOCK_DIR = "INSTRUCT_ABLATE_GPU_LOCK_DIR"
_CVD = "CUDA_VISIBLE_DEVICES"

_log = logging.getLogger("instruct_ablate.gpu_slots")


@dataclass(frozen=True)
class GpuSlot:
    """The device(s) a job got from :func:`acquire_gpu`.

    Attributes:
        devices: the value of ``CUDA_VISIBLE_DEVICES`` inside the context (e.g. ``"1"``).
        assigned_by: ``"lock"`` when this allocator pinned the job to one device through a slot
            file, ``"scheduler"`` when a scheduler (SLURM) had already chosen it.
        lock_file: the slot file held (``None`` when ``assigned_by == "scheduler"``).
    """

    devices: str
    assigned_by: str
    lock_file: Path | None = None

    def torch_device(self, requested: str) -> str:
        """The torch device string to use for a configured ``requested`` device.

        A job pinned by a slot file sees exactly one device, which torch calls ``cuda`` (``cuda:0``),
        so ``cuda:N`` is mapped to ``cuda``. Scheduler-assigned jobs and non-CUDA devices get
        ``requested`` unchanged.

        Args:
            requested: the configured device (``cpu``, ``auto``, ``cuda``, ``cuda:N``).
        Returns:
            str: the device to pass to torch.
        """
        if self.assigned_by == "lock" and requested.startswith("cuda"):
            return "cuda"
        return requested


def default_lock_dir() -> Path:
    """Folder of the slot files: ``$INSTRUCT_ABLATE_GPU_LOCK_DIR``, else ``<tempdir>/instruct-ablate-gpu-slots-<uid>``.

    Returns:
        Path: the folder (not created here).
    """
    env = os.environ.get(ENV_LOCK_DIR)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"instruct-ablate-gpu-slots-{os.getuid()}"


def _env_count() -> int | None:
    raw = os.environ.get(ENV_COUNT)
    if raw is None or raw.strip() == "":
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_COUNT}={raw!r}: expected a non-negative integer") from None
    if n < 0:
        raise ValueError(f"{ENV_COUNT}={raw!r}: expected a non-negative integer")
    return n


def _torch_device_count() -> int:
    """``torch.cuda.device_count()`` without initialising the CUDA driver in this process.

    torch counts through NVML when it can, which leaves CUDA uninitialised; its fallback
    (``cudaGetDeviceCount``) initialises the driver, after which ``CUDA_VISIBLE_DEVICES`` is ignored,
    so in that case the count is taken in a child process.
    """
    import torch

    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return 0  # a CPU-only build of torch
    if torch.version.cuda is not None:
        nvml_count = getattr(torch.cuda, "_device_count_nvml", None)
        if nvml_count is not None:
            try:
                n = int(nvml_count())
            except Exception:  # noqa: BLE001 - any NVML failure: fall back to the child process
                n = -1
            if n >= 0:
                return n
    code = "import torch; print(torch.cuda.device_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        return int(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(
            f"could not count CUDA devices (exit {out.returncode}): {out.stderr.strip()[-500:]}; "
            f"set {ENV_COUNT} to the number of GPUs"
        ) from None


def _cuda_initialised() -> bool:
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001 - a partial or stub torch: treat as not initialised
        return False


def _slot_name(device: str) -> str:
    return "gpu" + re.sub(r"[^A-Za-z0-9_.-]", "_", device) + ".lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "?"
    return text.split()[0] if text else "?"


def _try_lock(path: Path) -> int | None:
    """Open ``path`` and take a non-blocking exclusive flock; the fd, or ``None`` when held elsewhere."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _write_holder(fd: int, device: str) -> None:
    info = f"{os.getpid()} host={socket.gethostname()} device={device} since={time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, info.encode(), 0)


@contextlib.contextmanager
def acquire_gpu(
    n_devices: int | None = None,
    lock_dir: str | os.PathLike | None = None,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
    log: logging.Logger | None = None,
) -> Iterator[GpuSlot]:
    """Hold one GPU for the duration of the ``with`` block, pinning the process to it.

    Enter it before any ``torch.cuda`` call: ``CUDA_VISIBLE_DEVICES`` only takes effect if it is set
    before CUDA initialises in the process.

    Behaviour:

    * **Scheduler-assigned** (``SLURM_JOB_ID`` and ``CUDA_VISIBLE_DEVICES`` both set, as SLURM does
      for a job with GRES): if one device is listed, nothing is changed or locked; the device is only
      logged. If several are listed (e.g. local Snakemake jobs inside one ``salloc --gres=gpu:2``,
      which all inherit ``0,1``), the job takes one of them through slot files in
      ``<lock_dir>/slurm-<SLURM_JOB_ID>/``, so jobs of the same allocation never share a device and
      no device outside the allocation is used.
    * **Local**: the slots are devices ``0 .. n-1`` (or, when ``CUDA_VISIBLE_DEVICES`` is already set
      outside SLURM, e.g. ``CUDA_VISIBLE_DEVICES=2,3 snakemake ...``, the devices it lists). The job
      takes an exclusive non-blocking ``fcntl.flock`` on the first free ``<lock_dir>/gpu<k>.lock``,
      writes its pid into it, sets ``CUDA_VISIBLE_DEVICES=k`` and logs the slot. When all slots are
      busy it logs ``waiting for a free GPU slot (all N busy: ...)`` once and polls every ``poll_s``
      seconds. On exit the previous ``CUDA_VISIBLE_DEVICES`` (or its absence) is restored and the
      lock released; a killed process (even ``SIGKILL``) releases it too, since the kernel drops a
      ``flock`` with its holder's file descriptors.

    Args:
        n_devices: number of device slots. Default: ``$INSTRUCT_ABLATE_GPU_COUNT`` if set, else
            ``torch.cuda.device_count()`` (torch imported lazily, counted without initialising CUDA
            here). With an inherited device list, at most that many of its entries are used.
        lock_dir: folder of the slot files, created if missing. Default: :func:`default_lock_dir`
            (``$INSTRUCT_ABLATE_GPU_LOCK_DIR`` or ``<tempdir>/instruct-ablate-gpu-slots-<uid>``).
            Every job that must not share a device with another must use the same folder.
        poll_s: seconds between attempts while all slots are busy.
        timeout_s: give up after this many seconds of waiting; ``None`` waits forever.
        log: logger for the messages; default ``logging.getLogger("instruct_ablate.gpu_slots")``.

    Yields:
        GpuSlot: the device(s) held; ``slot.devices`` equals ``CUDA_VISIBLE_DEVICES`` in the block.

    Raises:
        RuntimeError: no device slot (0 devices: a ``cuda`` config on a machine without CUDA, or an
            empty ``CUDA_VISIBLE_DEVICES``), the device count could not be read, or CUDA is already
            initialised in this process.
        TimeoutError: no slot became free within ``timeout_s`` seconds.
        ValueError: ``$INSTRUCT_ABLATE_GPU_COUNT`` or ``n_devices`` is not a non-negative integer, or
            ``poll_s`` is not positive.
    """
    log = log or _log
    if not poll_s > 0:
        raise ValueError(f"poll_s={poll_s!r}: expected a positive number of seconds")
    previous = os.environ.get(_CVD)
    slurm_job = os.environ.get("SLURM_JOB_ID")
    inherited = None if previous is None else [d.strip() for d in previous.split(",") if d.strip()]

    if slurm_job and inherited is not None and len(inherited) == 1:
        log.info("GPU assigned by SLURM (job %s): CUDA_VISIBLE_DEVICES=%s", slurm_job, previous)
        yield GpuSlot(devices=previous, assigned_by="scheduler")
        return

    if n_devices is not None:
        if isinstance(n_devices, bool) or not isinstance(n_devices, int) or n_devices < 0:
            raise ValueError(f"n_devices={n_devices!r}: expected a non-negative integer")
        origin = f"n_devices={n_devices}"
    elif (n_devices := _env_count()) is not None:
        origin = f"{ENV_COUNT}={n_devices}"
    if inherited is not None:
        # CUDA stops reading the list at the first invalid entry; "-1" is the usual way to hide all.
        listed = []
        for d in inherited:
            if d.startswith("-"):
                break
            listed.append(d)
        pool = listed if n_devices is None else listed[:n_devices]
        origin = f"CUDA_VISIBLE_DEVICES={previous!r}" + ("" if n_devices is None else f" and {origin}")
    else:
        if n_devices is None:
            n_devices = _torch_device_count()
            origin = "torch.cuda.device_count()"
        pool = [str(k) for k in range(n_devices)]
    if not pool:
        raise RuntimeError(
            f"a CUDA device was requested but there is none to run on (0 devices from {origin}); "
            "set training.device: cpu in the config, or run on a machine with a GPU"
        )
    if _cuda_initialised():
        raise RuntimeError(
            "CUDA is already initialised in this process, so CUDA_VISIBLE_DEVICES can no longer take "
            "effect: enter acquire_gpu() before any torch.cuda call"
        )

    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    if slurm_job and inherited is not None:
        folder = folder / f"slurm-{slurm_job}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / _slot_name(d) for d in pool]

    start = time.monotonic()
    waited = False
    while True:
        for device, path in zip(pool, paths):
            fd = _try_lock(path)
            if fd is not None:
                break
        else:
            busy = ", ".join(f"{d} held by pid {_holder(p)}" for d, p in zip(pool, paths))
            elapsed = time.monotonic() - start
            if timeout_s is not None and elapsed >= timeout_s:
                raise TimeoutError(
                    f"no free GPU slot after {elapsed:.1f} s (all {len(pool)} busy: {busy}; lock dir {folder})"
                )
            if not waited:
                log.info("waiting for a free GPU slot (all %d busy: %s; lock dir %s)", len(pool), busy, folder)
                waited = True
            delay = poll_s if timeout_s is None else max(0.0, min(poll_s, timeout_s - elapsed))
            time.sleep(delay)
            continue
        break

    try:
        _write_holder(fd, device)
        os.environ[_CVD] = device
        log.info(
            "GPU slot %s acquired%s: CUDA_VISIBLE_DEVICES=%s (lock %s, pid %d)",
            device, f" after {time.monotonic() - start:.1f} s" if waited else "", device, path, os.getpid(),
        )
        yield GpuSlot(devices=device, assigned_by="lock", lock_file=path)
    finally:
        if previous is None:
            os.environ.pop(_CVD, None)
        else:
            os.environ[_CVD] = previous
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        log.info("GPU slot %s released", device)


@contextlib.contextmanager
def job_device(requested: str, **kwargs) -> Iterator[str]:
    """The torch device a job should use for its configured ``requested`` device.

    A ``cuda`` / ``cuda:N`` device holds a GPU slot (:func:`acquire_gpu`, ``kwargs`` passed on) for
    the ``with`` block and yields :meth:`GpuSlot.torch_device`; any other device (``cpu``, ``auto``)
    is yielded unchanged, with no slot taken. Enter it before any ``torch.cuda`` call.
    """
    if not str(requested).startswith("cuda"):
        yield requested
        return
    with acquire_gpu(**kwargs) as slot:
        yield slot.torch_device(requested)
