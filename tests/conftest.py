"""Shared fixtures: tiny NIv2 checkouts (allenai/natural-instructions layout) built in tmp_path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest


def _yes_no_task() -> dict[str, Any]:
    """A classification task: 12 instances, labels Yes/No, definition mentioning both."""
    instances = [
        {"id": f"yn-{i}", "input": f"Is {i} even?", "output": ["Yes" if i % 2 == 0 else "No"]}
        for i in range(12)
    ]
    return {
        "Definition": ["Answer 'Yes' if the number is even and 'No' otherwise"],
        "Categories": ["Answer Verification", "Mathematics"],
        "Source": ["toy"],
        "Input_language": ["English"],
        "Output_language": ["English"],
        "Instruction_language": ["English"],
        "Domains": ["Mathematics"],
        "Instance License": ["Apache 2.0"],
        "Positive Examples": [
            {"input": "Is 4 even?", "output": "Yes", "explanation": "4 is divisible by 2."},
            {"input": "Is 7 even?", "output": "No", "explanation": "7 is odd."},
        ],
        "Negative Examples": [
            {"input": "Is 8 even?", "output": "No", "explanation": "Wrong: 8 is even."},
        ],
        "Instances": instances,
    }


def _generation_task() -> dict[str, Any]:
    """A generation task: every instance has its own (sentence-long) output."""
    instances = [
        {
            "id": f"gen-{i}",
            "input": f"Describe the number {i}",
            "output": [f"The number {i} is a whole number between zero and forty."],
        }
        for i in range(40)
    ]
    return {
        "Definition": "Write one sentence describing the given number.",
        "Categories": ["Text Generation"],
        "Source": ["toy"],
        "Positive Examples": [
            {"input": "Describe the number 1", "output": "The number one is the first positive integer here."},
            {"input": "Describe the number 2", "output": "The number two is the only even prime number."},
            {"input": "Describe the number 3", "output": "The number three is an odd prime number indeed."},
        ],
        "Instances": instances,
    }


@pytest.fixture
def niv2_task() -> Callable[..., dict]:
    """``niv2_task(kind="yesno"|"generation", **field_overrides)`` -> a NIv2 task dict.

    A field override of ``None`` deletes the field (to build malformed files).
    """

    def make(kind: str = "yesno", **overrides: Any) -> dict:
        task = copy.deepcopy(_yes_no_task() if kind == "yesno" else _generation_task())
        for key, value in overrides.items():
            key = key.replace("__", " ")  # Positive__Examples -> "Positive Examples"
            if value is None:
                task.pop(key, None)
            else:
                task[key] = value
        return task

    return make


@pytest.fixture
def niv2_factory(tmp_path: Path) -> Callable[..., Path]:
    """Build a tiny NIv2 checkout and return its root.

    ``niv2_factory(train={name: task}, test={name: task}, split="toy")``: each part's
    split list names the tasks in the given order; a task value that is a ``dict``
    is written as JSON, a ``str`` verbatim (malformed files), ``None`` leaves the
    file absent (listed but missing). ``lists={part: "raw text"}`` overrides a
    split list's text; a part absent from both ``train``/``test`` and ``lists``
    gets no list file.
    """
    counter = {"n": 0}

    def build(
        train: dict[str, Any] | None = None,
        test: dict[str, Any] | None = None,
        split: str = "toy",
        lists: dict[str, str] | None = None,
    ) -> Path:
        counter["n"] += 1
        root = tmp_path / f"niv2-{counter['n']}"
        (root / "tasks").mkdir(parents=True)
        split_dir = root / "splits" / split
        split_dir.mkdir(parents=True)
        for part, tasks in (("train", train), ("test", test)):
            if tasks is None:
                continue
            (split_dir / f"{part}_tasks.txt").write_text("".join(f"{name}\n" for name in tasks), encoding="utf-8")
            for name, content in tasks.items():
                if content is None:
                    continue
                text = content if isinstance(content, str) else json.dumps(content, indent=1)
                (root / "tasks" / f"{name}.json").write_text(text, encoding="utf-8")
        for part, text in (lists or {}).items():
            (split_dir / f"{part}_tasks.txt").write_text(text, encoding="utf-8")
        return root

    return build


@pytest.fixture(scope="session")
def sample_shards(tmp_path_factory) -> dict[str, Path]:
    """Original-variant prompt shards of the embedded NIv2 sample: ``{"train": dir, "test": dir}``.

    Train: the first 4 seen tasks x 16 instances; test: the first 4 unseen tasks x 16 instances.
    """
    import polars as pl

    from instruct_ablate.ingest import ingest_split
    from instruct_ablate.prompts import render_variant, write_shards
    from instruct_ablate.variants import VariantSpec

    root = tmp_path_factory.mktemp("sample_shards")
    niv2 = Path(__file__).resolve().parents[1] / "data" / "niv2-sample"
    spec = VariantSpec.from_config("original", {"definition": "original", "demonstrations": {"count": 2}})
    out = {}
    for part in ("train", "test"):
        result = ingest_split(niv2, "sample", part, instances_per_task=16, seed=5, limit_tasks=4)
        prompts, audit = render_variant(result.tasks, result.instances, spec, seed=5)
        write_shards(prompts, audit, root / part, 2, meta={"part": part})
        out[part] = root / part
    assert isinstance(prompts, pl.DataFrame) and prompts.height > 0
    return out
