"""Atomic file output, stable digests and logging shared by every stage.

Every artifact the pipeline writes goes through :func:`atomic_path` or
:func:`atomic_dir`: the data is written to a temporary sibling and renamed into
place only once complete, so a crash or a bad input never leaves a half-written
artifact behind (``os.replace`` is atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import polars as pl

__all__ = [
    "atomic_dir",
    "atomic_path",
    "write_json",
    "write_table",
    "stable_digest",
    "stable_seed",
    "setup_logging",
    "USER_ERRORS",
    "describe_error",
    "log_failure",
]

# Errors a user's input or config causes (a bad file, a wrong path, a wrong value): reported as their
# message, not a traceback, on stderr; the log file holds the traceback too.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError, json.JSONDecodeError)


def describe_error(exc: BaseException) -> str:
    """One line for an error: ``"<Type>: <message>"`` (a ``KeyError``'s key quoted as a missing field)."""
    if isinstance(exc, KeyError) and exc.args:
        return f"missing field {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _clear_leftovers(path: Path) -> None:
    """Remove what a killed writer of ``path`` left beside it: ``.<name>.*.tmp`` files or folders, ``.<name>.old``."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    shutil.rmtree(path.with_name(f".{path.name}.old"), ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched. The file gets
    the permissions the umask gives a new file (``0o666 & ~umask``: group-readable by default),
    not ``mkstemp``'s owner-only 0600. Leftovers of a killed earlier writer are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; move it onto ``path`` on success.

    An existing ``path`` is replaced only after the new content is complete. On
    any exception the temporary directory is removed and ``path`` is untouched.
    The folder gets ``0o777 & ~umask`` (not ``mkdtemp``'s 0700); leftovers of a killed
    earlier writer are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_table(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` atomically; the format follows the suffix (``.parquet`` or ``.csv``).

    CSV cannot hold nested columns: list columns are joined with `` || `` and
    struct columns are JSON-encoded.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.write_parquet(tmp, compression="zstd", statistics=True)
        elif path.suffix == ".csv":
            flat = df.with_columns(
                [
                    pl.col(name).list.join(" || ")
                    for name, dtype in df.schema.items()
                    if isinstance(dtype, pl.List) and dtype.inner == pl.String
                ]
            )
            flat = flat.with_columns(
                [
                    pl.col(name).map_elements(
                        lambda v: json.dumps(v.to_list() if hasattr(v, "to_list") else v),
                        return_dtype=pl.String,
                    )
                    for name, dtype in flat.schema.items()
                    if isinstance(dtype, (pl.List, pl.Struct))
                ]
            )
            flat.write_csv(tmp)
        else:
            raise ValueError(f"{path}: unsupported table format {path.suffix!r} (use .parquet or .csv)")


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def stable_digest(obj: Any, length: int = 16) -> str:
    """Hex SHA-256 of ``obj`` as canonical JSON (sorted keys), first ``length`` chars.

    Unlike Python's ``hash()``, the digest is the same in every process, so it
    is safe in Snakemake params and seeds.
    """
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def stable_seed(*parts: Any) -> int:
    """A 63-bit integer seed derived from ``parts`` (stable across processes and runs)."""
    return int(stable_digest(list(parts), length=15), 16)


def log_failure(exc: BaseException) -> None:
    """Write ``exc`` (message and traceback) to the log files of :func:`setup_logging` only, not stderr."""
    root = logging.getLogger()
    record = root.makeRecord("instruct_ablate", logging.ERROR, __file__, 0, "job failed: %s",
                             (describe_error(exc),), (type(exc), exc, exc.__traceback__))
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()


def setup_logging(log_file: str | os.PathLike | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to stderr and, when given, to ``log_file`` (the rule's ``log:``); return the package logger.

    Also installs an exception hook, so that an error that ends the job is written to the log file
    (message and traceback) as well as stderr, where Snakemake's "check log file(s)" sends the user.
    For :data:`USER_ERRORS` stderr gets the message alone (``error: FileNotFoundError: …``).
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        handlers=handlers,
        force=True,
    )
    logger = logging.getLogger("instruct_ablate")

    def hook(kind, exc, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log_failure(exc)  # the whole story in the job's log
        if issubclass(kind, USER_ERRORS):
            print(f"error: {describe_error(exc)}" + (f" (traceback in {log_file})" if log_file else ""),
                  file=sys.stderr)
        else:
            sys.__excepthook__(kind, exc, tb)

    sys.excepthook = hook
    return logger
