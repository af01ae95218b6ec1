"""Instruction variants as data: which definition and which demonstrations a prompt shows.

A variant is a small declarative spec from ``config.yaml`` (Kung & Peng 2023, §2-§4)::

    simplified:
      definition: simplified          # original | simplified | none
      demonstrations: {count: 2, kind: positive}   # kind: positive | delusive

* ``original``: NIv2's task definition (``Definition[0]``).
* ``simplified``: all semantic components removed, only the output space kept
  (§3.1): for a classification task a neutral template listing its label
  space (``Output one of: Yes, No.``); for a generation task a format-only
  sentence from the length of its outputs (``Output a sentence.``), or nothing.
* ``none``: no definition.

Demonstrations are the task's ``Positive Examples`` in file order. ``delusive``
demonstrations keep the input and output *spaces* but break the input→output
mapping (§4), by one of two deterministic constructions:

* ``permuted_labels``: each demonstration's output is replaced by a different
  label of the task's label space (classification), or by the output of another
  demonstration of the same task (generation; with a single demonstration, the
  first instance output that differs);
* ``negative_as_positive``: NIv2's ``Negative Examples`` shown as positive
  examples (tasks without any keep their positive examples and are counted).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from .io import stable_digest, stable_seed
from .metrics import normalize_answer

__all__ = [
    "VariantSpec",
    "SimplifiedTemplates",
    "simplified_definition",
    "task_simplified_definition",
    "choose_demonstrations",
    "DEFINITION_KINDS",
    "DEMONSTRATION_KINDS",
    "DELUSIVE_METHODS",
]

DEFINITION_KINDS = ("original", "simplified", "none")
DEMONSTRATION_KINDS = ("positive", "delusive")
DELUSIVE_METHODS = ("permuted_labels", "negative_as_positive")


@dataclass(frozen=True)
class VariantSpec:
    """One instruction variant (see module docstring)."""

    name: str
    definition: str = "original"
    n_demonstrations: int = 2
    demonstration_kind: str = "positive"
    delusive_method: str = "permuted_labels"

    @classmethod
    def from_config(cls, name: str, cfg: dict[str, Any]) -> "VariantSpec":
        """Build from a ``variants.<name>`` entry; raise ``ValueError`` naming the key on bad values."""
        demos = dict(cfg.get("demonstrations") or {})
        spec = cls(
            name=name,
            definition=str(cfg.get("definition", "original")),
            n_demonstrations=int(demos.get("count", 0)),
            demonstration_kind=str(demos.get("kind", "positive")),
            delusive_method=str(demos.get("method", "permuted_labels")),
        )
        if spec.definition not in DEFINITION_KINDS:
            raise ValueError(f"variants.{name}.definition: {spec.definition!r} is not one of {DEFINITION_KINDS}")
        if spec.demonstration_kind not in DEMONSTRATION_KINDS:
            raise ValueError(
                f"variants.{name}.demonstrations.kind: {spec.demonstration_kind!r} is not one of {DEMONSTRATION_KINDS}"
            )
        if spec.delusive_method not in DELUSIVE_METHODS:
            raise ValueError(
                f"variants.{name}.demonstrations.method: {spec.delusive_method!r} is not one of {DELUSIVE_METHODS}"
            )
        if spec.n_demonstrations < 0:
            raise ValueError(f"variants.{name}.demonstrations.count: must be >= 0")
        if spec.demonstration_kind == "delusive" and spec.n_demonstrations == 0:
            raise ValueError(f"variants.{name}.demonstrations: delusive demonstrations need count >= 1")
        return spec

    def digest(self) -> str:
        return stable_digest(self.__dict__)


@dataclass(frozen=True)
class SimplifiedTemplates:
    """Templates of simplified definitions (``config.yaml``: ``simplified_definition``)."""

    classification: str = "Output one of: {labels}."
    generation: str = "by_length"  # "by_length" | "none" | a fixed sentence
    label_separator: str = ", "

    @classmethod
    def from_config(cls, cfg: dict | None) -> "SimplifiedTemplates":
        cfg = dict(cfg or {})
        return cls(**{k: str(v) for k, v in cfg.items() if k in cls.__dataclass_fields__})


def _length_phrase(outputs: Sequence[str]) -> str:
    words = statistics.median(len(o.split()) for o in outputs) if outputs else 0
    if words <= 3:
        return "Output a word or a short phrase."
    if words <= 40:
        return "Output a sentence."
    return "Output a paragraph."


def simplified_definition(
    task_type: str,
    label_space: Sequence[str],
    example_outputs: Sequence[str],
    templates: SimplifiedTemplates = SimplifiedTemplates(),
) -> str:
    """The simplified definition of a task (§3.1): output-space information only.

    Returns ``""`` when the template says ``none`` for generation tasks.
    """
    if task_type == "classification":
        return templates.classification.format(labels=templates.label_separator.join(label_space))
    if templates.generation == "none":
        return ""
    if templates.generation == "by_length":
        return _length_phrase(example_outputs)
    return templates.generation


def task_simplified_definition(
    task: dict, fallback_outputs: Sequence[str] = (), templates: SimplifiedTemplates = SimplifiedTemplates()
) -> str:
    """:func:`simplified_definition` of a tasks-table row (``task_type``, ``label_space``, ``positive_examples``).

    Output lengths for generation tasks come from the positive examples, or from
    ``fallback_outputs`` (instance outputs) when the task has none.
    """
    outputs = [e["output"] for e in task["positive_examples"]] or list(fallback_outputs)
    return simplified_definition(task["task_type"], task["label_space"], outputs, templates)


def _other_label(gold: str, label_space: Sequence[str], rng: random.Random) -> str | None:
    others = [lab for lab in label_space if lab.strip() and normalize_answer(lab) != normalize_answer(gold)]
    return rng.choice(others) if others else None


def choose_demonstrations(
    spec: VariantSpec,
    task: str,
    task_type: str,
    label_space: Sequence[str],
    positive_examples: Sequence[dict],
    negative_examples: Sequence[dict],
    instance_outputs: Sequence[str],
    seed: int,
) -> tuple[list[dict], str]:
    """The demonstrations a variant shows for one task, and a note on how they were built.

    Returns ``(demos, note)``; ``demos`` is a list of ``{input, output}``, at most
    ``spec.n_demonstrations`` long, deterministic in ``(seed, task, spec)``.
    ``note`` is ``""`` or a short audit string (the ``note`` column of a variant's
    ``definitions.parquet``): ``"no positive examples: 0 of N demonstrations shown"``
    when the variant asks for demonstrations and the task has no positive example
    (every kind builds on them, except ``negative_as_positive`` when the task has
    negative examples), ``"no negative examples: kept positive"``, ``"could not
    permute k of n: kept output"``. Blank labels and outputs are never chosen as
    delusive outputs (ingest drops blank references and demonstrations).
    """
    n = spec.n_demonstrations
    if n == 0:
        return [], ""
    positives = [{"input": e["input"], "output": e["output"]} for e in positive_examples[:n]]
    none_shown = f"no positive examples: 0 of {n} demonstrations shown"
    if spec.demonstration_kind == "positive":
        return positives, "" if positives else none_shown
    rng = random.Random(stable_seed("delusive", seed, task, spec.delusive_method))
    if spec.delusive_method == "negative_as_positive":
        negatives = [{"input": e["input"], "output": e["output"]} for e in negative_examples[:n]]
        if not negatives:
            return positives, "no negative examples: kept positive" if positives else none_shown + " (nor negative ones)"
        return negatives, ""
    # permuted_labels
    if not positives:
        return [], none_shown
    if task_type == "classification" and len(label_space) >= 2:
        out = []
        for ex in positives:
            wrong = _other_label(ex["output"], label_space, rng)
            out.append({"input": ex["input"], "output": wrong if wrong is not None else ex["output"]})
        return out, ""
    pool = [o for o in instance_outputs if o.strip()]
    out = []
    if len(positives) >= 2:
        outputs = [ex["output"] for ex in positives]
        # A derangement: rotate by a seeded non-zero offset so no demonstration keeps its own output.
        shift = rng.randrange(1, len(outputs))
        out = [{"input": ex["input"], "output": outputs[(i + shift) % len(outputs)]} for i, ex in enumerate(positives)]
    else:
        out = [dict(ex) for ex in positives]
    # Where the rotation left a demonstration's output unchanged (one demonstration, or equal outputs),
    # take an instance output of the same task that differs.
    for ex, orig in zip(out, positives):
        if normalize_answer(ex["output"]) == normalize_answer(orig["output"]):
            others = [o for o in pool if normalize_answer(o) != normalize_answer(orig["output"])]
            if others:
                ex["output"] = rng.choice(others)
    unchanged = sum(normalize_answer(o["output"]) == normalize_answer(p["output"]) for o, p in zip(out, positives))
    note = f"could not permute {unchanged} of {len(out)}: kept output" if unchanged else ""
    return out, note
