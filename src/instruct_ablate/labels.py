"""Task type (classification or generation) and label space, from a task's data.

The paper's headline numbers split the unseen tasks into classification (EM)
and generation (ROUGE-L), but it did not publish the split. We derive it from
the data, auditably (Kung & Peng 2023, §3; NIv2 task files):

* the *label space* candidates are the distinct normalised reference outputs
  (:func:`instruct_ablate.metrics.normalize_answer`) over the task's instances;
* a task is ``classification`` when it has at least 2 and at most ``max_labels``
  distinct normalised outputs and *every* label is used by at least
  ``min_instances_per_label`` instances (a closed, reused set), otherwise
  ``generation``. The minimum holds per label, not on average: a label used by
  a single instance (often a typo in a hand-made file) would otherwise join the
  label space and lower the random baseline (3 reused labels and one stray:
  33.3 -> 25.0 expected EM). Such a task is typed ``generation`` and
  :attr:`TaskTyping.rare_labels` names the stray labels, so ingest can warn;
* a task whose instances all have the same normalised output (a *constant*
  task) is ``generation``: a label space of one label is no classification task
  (its random baseline would be 100), and even an override cannot make it one;
* the evidence is kept: the distinct-output count, the fewest uses of a label,
  and which labels the task definition mentions.

On the 103 unseen tasks of the staged NIv2 copy the rule leaves a clear gap:
every task it calls classification has at most 5 distinct outputs, each used by
at least 2 instances, every generation task has at least 11 distinct outputs
(52 classification, 51 generation; requiring the minimum per label instead of on
average changed none of them, nor any of the 208 staged training tasks or the
embedded sample). Mentions in the definition are kept as evidence but not
required: some definitions phrase their labels differently (e.g.
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
    """The decision for one task and its evidence.

    ``rare_labels``: normalised outputs used by fewer than
    ``min_instances_per_label`` instances when the task would otherwise be
    classification (at most ``max_labels`` distinct outputs): the reason it is
    generation. ``constant``: every instance has the same single normalised output.
    """

    task_type: str  # "classification" | "generation"
    label_space: list[str]  # surface forms; empty for generation tasks
    n_distinct_outputs: int
    labels_in_definition: list[str]
    rule: str  # human-readable reason
    rare_labels: list[str] = field(default_factory=list)  # normalised forms
    constant: bool = False


def _mentioned(label: str, definition_norm: str) -> bool:
    return bool(label) and re.search(rf"(?<!\w){re.escape(label)}(?!\w)", definition_norm) is not None


def type_task(
    task: str,
    definition: str,
    outputs: Iterable[Sequence[str]],
    rule: TypingRule = TypingRule(),
) -> TaskTyping:
    """Classify one task from its definition and its instances' reference outputs.

    ``outputs`` holds one list of reference strings per instance (consumed once).
    A label's *uses* are the instances with at least one reference of that
    normalised form (several references of one instance count once). The data
    rule: classification iff ``2 <= distinct <= rule.max_labels`` and every
    label has ``>= rule.min_instances_per_label`` uses. A per-task override in
    ``rule.overrides`` (``task -> "classification" | "generation"``) wins over
    the data rule.

    Raises ``ValueError`` naming the task for an unknown override value, or for
    an override to ``classification`` of a task with fewer than 2 distinct
    normalised outputs (a label space of one, or none).
    """
    surface: dict[str, Counter] = {}
    uses: Counter = Counter()
    n_instances = 0
    for refs in outputs:
        n_instances += 1
        norms = set()
        for ref in refs:
            norm = normalize_answer(ref)
            surface.setdefault(norm, Counter())[ref.strip()] += 1
            norms.add(norm)
        uses.update(norms)
    n_distinct = len(surface)
    labels = [c.most_common(1)[0][0] for c in surface.values()]
    definition_norm = normalize_answer(definition)
    mentioned = [lab for lab, norm in zip(labels, surface) if _mentioned(norm, definition_norm)]

    fewest = min(uses.values()) if uses else 0
    closed = 0 < n_distinct <= rule.max_labels
    rare = [norm for norm in surface if uses[norm] < rule.min_instances_per_label] if closed and n_distinct >= 2 else []
    constant = n_distinct == 1
    is_cls = closed and not constant and not rare
    reason = (
        f"{n_distinct} distinct normalised outputs over {n_instances} instances, the rarest used by {fewest} "
        f"(classification iff 2 to {rule.max_labels} labels, each used by >= {rule.min_instances_per_label:g} instances)"
    )
    if constant:
        reason += "; a single output: a constant task, not classification"
    elif rare:
        reason += f"; used by fewer: {', '.join(repr(r) for r in rare)}"
    if task in rule.overrides:
        forced = rule.overrides[task]
        if forced not in TASK_TYPES:
            raise ValueError(f"task_typing.overrides.{task}: {forced!r} is neither 'classification' nor 'generation'")
        if forced == "classification" and n_distinct < 2:
            raise ValueError(
                f"task_typing.overrides.{task}: cannot be classification: its instances have "
                f"{n_distinct} distinct normalised output{'s' if n_distinct != 1 else ''} "
                "(a label space needs at least 2 labels)"
            )
        is_cls = forced == "classification"
        reason = f"override: {forced} ({reason})"
    return TaskTyping(
        task_type="classification" if is_cls else "generation",
        label_space=labels if is_cls else [],
        n_distinct_outputs=n_distinct,
        labels_in_definition=mentioned,
        rule=reason,
        rare_labels=rare,
        constant=constant,
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
