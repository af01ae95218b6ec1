"""Which package code a workflow stage runs, as a digest: code-aware reruns and provenance.

Snakemake reruns a job when its rule's script changes, not when the package
code that script calls changes. :func:`code_digest` closes that gap: it reads
a per-rule script's imports of ``instruct_ablate`` modules, follows the
package's own imports from there (top-level and inside functions, absolute and
relative), and digests the syntax trees of every module reached. The rules put
the digest in their ``params``, so an edit to ``prompts.py`` reruns the prompt
shards and what depends on them, and an edit to ``report.py`` reruns the report
only. Syntax trees, not bytes: an edit to comments or formatting changes no
result and reruns nothing; a docstring is part of the tree and counts.

Nothing is imported: the files are found with :func:`importlib.util.find_spec`
and parsed with :mod:`ast`, so building the DAG stays fast (no torch import).

:func:`describe` is what every metadata file and the report record of where a
result came from: package version, the stage's code digest, the git commit (and
whether the tree was dirty), Python, torch and transformers versions, and a
digest of the config.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

__all__ = ["package_dir", "stage_modules", "code_digest", "describe"]

PACKAGE = "instruct_ablate"


def package_dir() -> Path:
    """The directory of the ``instruct_ablate`` package Python would import (editable or installed)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{PACKAGE} is not importable (pip install -e . in the repository)")
    return Path(list(spec.submodule_search_locations)[0])


def _imported_modules(tree: ast.AST, current: str | None) -> set[str]:
    """Names of ``instruct_ablate`` modules a syntax tree imports (``current``: the module's own name)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(PACKAGE + ".")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                rest = node.module[len(PACKAGE) + 1:]
                found |= {rest.split(".")[0]} if rest else {a.name for a in node.names}
            elif node.level == 1 and current is not None:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found


def stage_modules(script: str | Path, pkg: Path | None = None) -> list[str]:
    """Sorted names of the package modules ``script`` runs: its imports and theirs, transitively.

    ``__init__`` (the version string and docstring) is left out: a version bump reruns nothing.
    Names that are not files of the package are ignored.
    Raises ``FileNotFoundError`` when ``script`` does not exist.
    """
    pkg = pkg or package_dir()
    todo = _imported_modules(ast.parse(Path(script).read_text(encoding="utf-8")), None) - {"__init__"}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        path = pkg / f"{name}.py"
        if name in seen or name == "__init__" or not path.is_file():
            continue
        seen.add(name)
        todo |= _imported_modules(ast.parse(path.read_text(encoding="utf-8")), name) - seen
    return sorted(seen)


@functools.lru_cache(maxsize=None)
def code_digest(script: str | Path, pkg: str | Path | None = None) -> str:
    """A 16-hex-digit digest of the syntax trees of every package module ``script`` runs.

    Equal digests mean the stage runs the same code (up to comments and formatting).
    """
    pkg = Path(pkg) if pkg else package_dir()
    h = hashlib.sha256()
    for name in stage_modules(script, pkg):
        tree = ast.parse((pkg / f"{name}.py").read_text(encoding="utf-8"))
        h.update(name.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return h.hexdigest()[:16]


def _git(args: list[str], cwd: Path) -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def describe(code: str | None = None, config: dict | None = None) -> dict[str, object]:
    """Provenance of a result: a flat dict of strings and booleans (JSON-ready).

    Keys: ``package_version``, ``code_digest`` (the stage's, ``code``), ``git_commit`` and
    ``git_dirty`` (of the checkout holding the package; ``None`` outside git), ``python``,
    ``torch`` and ``transformers`` versions (``None`` when not installed), ``config_digest``
    (:func:`instruct_ablate.io.stable_digest` of ``config``).
    """
    import platform
    from importlib import metadata

    from .io import stable_digest

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    where = package_dir()
    commit = _git(["rev-parse", "HEAD"], where)
    status = _git(["status", "--porcelain", "--untracked-files=no"], where) if commit else None
    return {
        "package_version": version("instruct-ablate"),
        "code_digest": code,
        "git_commit": commit,
        "git_dirty": bool(status) if commit else None,
        "python": platform.python_version(),
        "torch": version("torch"),
        "transformers": version("transformers"),
        "config_digest": stable_digest(config) if config is not None else None,
    }
