"""A throwaway single-node SLURM cluster on localhost, for tests.

Everything lives in one private folder under /tmp: a generated munge key and socket, ``slurm.conf``,
the controller's state, slurmd's spool, pid and log files. ``munged``, ``slurmctld`` and ``slurmd``
run in the foreground as children of the test process (so they are stopped by their own pids), on
free TCP ports, so they never touch a system-wide munge/SLURM set-up. Clients (``sbatch``,
``squeue``, ``scancel``, ``sinfo``) find the cluster through ``SLURM_CONF`` (see :meth:`env`).

Needs Debian's ``slurm-wlm`` and ``munge`` (``apt-get install slurm-wlm munge``) and, for slurmd,
root. There is no slurmdbd, so ``sacct`` does not work: run the Snakemake SLURM executor with
``--slurm-status-command squeue``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
PARTITION = "debug"


def missing_binaries() -> list[str]:
    """The binaries this cluster needs that are not on PATH (or in /usr/sbin)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [b for b in BINARIES if shutil.which(b, path=path) is None]


def _which(name: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(name)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    """Usable memory for the node: MemTotal minus a margin, as slurmd would see it."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) // 1024
                return max(512, total - max(512, total // 10))
    return 2048


class SlurmCluster:
    """``with SlurmCluster() as cluster: ...`` starts munged, slurmctld and slurmd and waits until
    the node is idle; leaving the block cancels remaining jobs and stops the daemons."""

    def __init__(self, cpus: int | None = None, memory_mb: int | None = None, root: str | None = None):
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb or _memory_mb()
        self.dir = Path(tempfile.mkdtemp(prefix="slurm-test-", dir=root or "/tmp"))
        self.dir.chmod(0o755)  # job steps (same machine, same user) read and write here
        self.conf = self.dir / "slurm.conf"
        self.munge_socket = self.dir / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}

    # -- set-up -----------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Variables that point SLURM's clients at this cluster: ``SLURM_CONF``, and ``PATH`` with
        :meth:`_write_shims`'s folder first."""
        return {"SLURM_CONF": str(self.conf), "PATH": f"{self.dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}

    def _write_shims(self) -> None:
        """Wrappers of SLURM's clients that set SLURM_CONF before running the real one.

        The SLURM_CONF variable alone does not reach every client: snakemake-executor-plugin-
        slurm-jobstep drops every SLURM_* variable but a few (SLURM_CONF included) before it runs
        ``srun`` inside the job, which then looks for /etc/slurm/slurm.conf. PATH survives.
        """
        bindir = self.dir / "bin"
        bindir.mkdir()
        for name in ("srun", "sbatch", "squeue", "scancel", "sinfo", "scontrol", "sacct", "salloc"):
            try:
                real = _which(name)
            except FileNotFoundError:
                continue
            shim = bindir / name
            shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real}" "$@"\n')
            shim.chmod(0o755)

    def _write_munge(self) -> None:
        mdir = self.munge_socket.parent
        mdir.mkdir()
        mdir.chmod(0o755)  # clients (any user) must reach the socket
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)

    def _write_conf(self) -> None:
        user = getpass.getuser()
        state = self.dir / "state"
        spool = self.dir / "spool"
        for d in (state, spool):
            d.mkdir()
        mem_per_cpu = max(256, self.memory_mb // (4 * self.cpus))
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=pytest",
                    "SlurmctldHost=localhost",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    f"SlurmUser={user}",
                    f"SlurmdUser={user}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "MpiDefault=none",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    f"DefMemPerCPU={mem_per_cpu}",  # else a job that asks no memory takes the whole node
                    "ReturnToService=2",
                    "MinJobAge=300",  # squeue keeps finished jobs this long (the executor polls squeue)
                    "MailProg=/bin/true",
                    f"StateSaveLocation={state}",
                    f"SlurmdSpoolDir={spool}",
                    f"SlurmctldPidFile={self.dir / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.dir / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.dir / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.dir / 'slurmd.log'}",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
                    f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.dir / f"{name}.stdout", "wb")
        self.procs[name] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env()}, start_new_session=True,
        )
        log.close()

    def _run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            [_which(args[0]), *args[1:]], capture_output=True, text=True,
            env={**os.environ, **self.env()}, timeout=30, check=check,
        )

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for {what}\n{self.logs()}")

    def start(self) -> "SlurmCluster":
        self._write_munge()
        self._write_conf()
        self._write_shims()
        m = self.munge_socket.parent
        self._spawn("munged", [
            _which("munged"), "--foreground", "--force",
            f"--socket={self.munge_socket}", f"--key-file={m / 'munge.key'}",
            f"--pid-file={m / 'munged.pid'}", f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}",
        ])
        self._wait("munged", self.munge_socket.exists, timeout=20)
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self._run("sinfo", "-h").returncode == 0)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait("an idle node", lambda: self._run("sinfo", "-h", "-N", "-o", "%T").stdout.strip() == "idle")
        return self

    # -- use ----------------------------------------------------------------------------------------
    def squeue(self) -> str:
        return self._run("squeue", "-a", "-t", "all", "-o", "%i %j %T %P %C %m").stdout

    def logs(self, tail: int = 40) -> str:
        out = []
        for f in ("munged.stdout", "slurmctld.log", "slurmd.log"):
            p = self.dir / f
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-tail:]
                out.append(f"--- {p} ---\n" + "\n".join(lines))
        return "\n".join(out)

    # -- tear-down ------------------------------------------------------------------------------------
    def stop(self) -> None:
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self._run("scancel", "--full", "-u", getpass.getuser())
            except (OSError, subprocess.SubprocessError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
