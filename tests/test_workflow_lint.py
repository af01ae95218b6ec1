"""The workflow passes Snakemake's linter and is formatted with snakefmt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_snakemake_lint_reports_nothing():
    """`snakemake --lint` finds no issue (every rule has a log, a conda env, no absolute paths ...)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--cores", "1"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_rules_are_formatted_with_snakefmt():
    """`snakefmt --check` would change no file (format changes would fire Snakemake's code trigger)."""
    exe = shutil.which("snakefmt", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("snakefmt is not installed (pip install -e '.[test]')")
    proc = subprocess.run([exe, "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
