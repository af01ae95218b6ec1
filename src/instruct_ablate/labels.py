"""Task type (classification or generation) and label space, from a task's data.

The paper's headline numbers split the unseen tasks into classification (EM)
and generation (ROUGE-L), but it did not publish the split. We derive it from
the data, auditably (Kung & Peng 2023, §3; NIv2 task files):

* the *label space* candidates are the distinct normalised reference outputs
  (:func:`instruct_ablate.metrics.normalize_answer`) over the task's instances;
* a task is ``classification`` when it has at most ``max_labels`` distinct
  normalised outputs and every label is used by at least ``min_instances_per_label``
  instances on average (a closed, reused set), otherwise ``generation``;
* the evidence is kept: the distinct-output count and which labels the task
  definition mentions.

On the 103 unseen tasks of the staged NIv2 copy the rule leaves a clear gap:
every task it calls classification has at most 5 distinct outputs, every
generation task at least 11. Mentions in the definition are kept as evidence
but not required: some definitions phrase their labels differently (e.g.
task738_perspectrum_classification). Per-task overrides live in a small
reviewed file (``task_typing.overrides_file``, :func:`read_overrides`) or in
``task_typing.overrides``.

The label space is stored in its most frequent surface form (e.g. ``Yes`` rather
than ``yes``), in order of first appearance.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .metrics import normalize_answer

__all__ = ["TypingRule", "TaskTyping", "type_task", "read_overrides", "label_spaces"]

TASK_TYPES = ("classification", "generation")


@dataclass(frozen=True)
class TypingRule:
    """Parameters of the classification rule (``config.yaml``: ``task_typing``)."""

    max_labels: int = 10
    min_instances_per_label: float = 2.0
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: dict | None) -> "TypingRule":
        cfg = dict(cfg or {})
        return cls(
            max_labels=int(cfg.get("max_labels", 10)),
            min_instances_per_label=float(cfg.get("min_instances_per_label", 2.0)),
            overrides=dict(cfg.get("overrides") or {}),
        )


def read_overrides(path: str | Path) -> dict[str, str]:
    """Per-task type overrides from a reviewed TSV file: columns ``task``, ``task_type``, ``reason``.

    Lines starting with ``#`` and blank lines are skipped; the first other line
    is the header. Raises ``ValueError`` naming the file and line for a missing
    column, an unknown type, an empty reason or a task given twice.
    """
    path = Path(path)
    rows = [
        (n, line.rstrip("\n").split("\t"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.strip() and not line.startswith("#")
    ]
    if not rows:
        return {}
    (hn, header), body = rows[0], rows[1:]
    if header[:3] != ["task", "task_type", "reason"]:
        raise ValueError(f"{path}:{hn}: header must be 'task<TAB>task_type<TAB>reason', found {header!r}")
    out: dict[str, str] = {}
    for n, cols in body:
        if len(cols) < 3 or not cols[2].strip():
            raise ValueError(f"{path}:{n}: expected task, task_type and a non-empty reason, tab-separated")
        task, kind = cols[0].strip(), cols[1].strip()
        if kind not in TASK_TYPES:
            raise ValueError(f"{path}:{n}: task_type {kind!r} is not one of {TASK_TYPES}")
        if task in out:
            raise ValueError(f"{path}:{n}: task {task!r} is overridden twice")
        out[task] = kind
    return out


@dataclass(frozen=True)
class TaskTyping:
    """The decision for one task and its evidence."""

    task_type: str  # "classification" | "generation"
    label_space: list[str]  # surface forms; empty for generation tasks
    n_distinct_outputs: int
    labels_in_definition: list[str]
    rule: str  # human-readable reason


def _mentioned(label: str, definition_norm: str) -> bool:
    return bool(label) and re.search(rf"(?<!\w){re.escape(label)}(?!\w)", definition_norm) is not None


def type_task(
    task: str,
    definition: str,
    outputs: Iterable[Sequence[str]],
    rule: TypingRule = TypingRule(),
) -> TaskTyping:
    """Classify one task from its definition and its instances' reference outputs.

    ``outputs`` holds one list of reference strings per instance. A per-task
    override in ``rule.overrides`` (``task -> "classification" | "generation"``)
    wins over the data rule. Raises ``ValueError`` for an unknown override value.
    """
    surface: dict[str, Counter] = {}
    n_instances = 0
    for refs in outputs:
        n_instances += 1
        for ref in refs:
            norm = normalize_answer(ref)
            surface.setdefault(norm, Counter())[ref.strip()] += 1
    n_distinct = len(surface)
    labels = [c.most_common(1)[0][0] for c in surface.values()]
    definition_norm = normalize_answer(definition)
    mentioned = [lab for lab, norm in zip(labels, surface) if _mentioned(norm, definition_norm)]

    is_cls = 0 < n_distinct <= rule.max_labels and n_instances >= rule.min_instances_per_label * n_distinct
    reason = (
        f"{n_distinct} distinct normalised outputs over {n_instances} instances "
        f"(classification iff <= {rule.max_labels} and >= {rule.min_instances_per_label:g} instances per label)"
    )
    if task in rule.overrides:
        forced = rule.overrides[task]
        if forced not in TASK_TYPES:
            raise ValueError(f"task_typing.overrides.{task}: {forced!r} is neither 'classification' nor 'generation'")
        is_cls = forced == "classification"
        reason = f"override: {forced} ({reason})"
    return TaskTyping(
        task_type="classification" if is_cls else "generation",
        label_space=labels if is_cls else [],
        n_distinct_outputs=n_distinct,
        labels_in_definition=mentioned,
        rule=reason,
    )


def label_spaces(tasks) -> dict[str, list[str]]:
    """``task -> label space`` (surface forms) for the classification tasks of an ingest tasks table.

    ``tasks`` is a polars DataFrame with ``task``, ``task_type`` and ``label_space``
    columns; generation tasks and empty label spaces are left out.
    """
    return {
        r["task"]: list(r["label_space"])
        for r in tasks.select("task", "task_type", "label_space").iter_rows(named=True)
        if r["task_type"] == "classification" and r["label_space"]
    }
