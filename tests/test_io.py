"""Atomic writes: permissions follow the umask (shared results folders), leftovers of killed writers go."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from instruct_ablate.io import atomic_dir, atomic_path, write_json


@pytest.fixture
def umask():
    def set_to(mask):
        previous = os.umask(mask)
        restore.append(previous)

    restore: list[int] = []
    yield set_to
    for mask in reversed(restore):
        os.umask(mask)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)])
def test_artifacts_honour_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    write_json({"a": 1}, tmp_path / "x.json")
    with atomic_dir(tmp_path / "folder") as d:
        (d / "inner.txt").write_text("hi")
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "folder" / "inner.txt").stat().st_mode) == file_mode


def test_a_killed_writers_leftovers_are_removed_by_the_next_write(tmp_path):
    code = (
        "import os, signal, sys; from instruct_ablate.io import atomic_dir, atomic_path\n"
        "with atomic_path(sys.argv[1] + '/table.parquet') as t:\n"
        "    t.write_bytes(b'half')\n"
        "    with atomic_dir(sys.argv[1] + '/model') as d:\n"
        "        (d / 'weights').write_bytes(b'half')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)])
    assert proc.returncode == -9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(n.endswith(".tmp") for n in left)  # what a SIGKILL leaves
    assert not (tmp_path / "table.parquet").exists() and not (tmp_path / "model").exists()
    with atomic_path(tmp_path / "table.parquet") as t:
        t.write_bytes(b"whole")
    with atomic_dir(tmp_path / "model") as d:
        (d / "weights").write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "table.parquet"]
