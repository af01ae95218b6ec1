"""Reviewable record of the model-free decisions: task types, label spaces, simplified definitions.

The paper did not publish how it typed tasks or simplified definitions; this
table lets a reviewer read every decision and its evidence (one row per task).
"""

from __future__ import annotations

import polars as pl

from .variants import SimplifiedTemplates, task_simplified_definition

__all__ = ["task_audit"]


def task_audit(tasks: pl.DataFrame, templates: SimplifiedTemplates = SimplifiedTemplates()) -> pl.DataFrame:
    """One row per task of the ingest tasks table(s), sorted by part then task.

    Columns: ``part``, ``task``, ``category``, ``task_type``, ``n_distinct_outputs``,
    ``n_instances_in_file``, ``label_space`` and ``labels_in_definition`` (List[String]),
    ``typing_rule`` (the rule's reason), ``original_definition``, ``simplified_definition``,
    ``ingest_notes`` (List[String]: what ingest fixed or dropped in the task's file, with a warning).
    """
    rows = [
        {
            "part": t["part"],
            "task": t["task"],
            "category": t["category"],
            "task_type": t["task_type"],
            "n_distinct_outputs": t["n_distinct_outputs"],
            "n_instances_in_file": t["n_instances_in_file"],
            "label_space": t["label_space"],
            "labels_in_definition": t["labels_in_definition"],
            "typing_rule": t["typing_rule"],
            "original_definition": t["definition"],
            "simplified_definition": task_simplified_definition(t, (), templates),
            "ingest_notes": list(t.get("ingest_notes") or []),
        }
        for t in tasks.iter_rows(named=True)
    ]
    return pl.DataFrame(rows, schema_overrides={"label_space": pl.List(pl.String), "labels_in_definition": pl.List(pl.String),
                          "ingest_notes": pl.List(pl.String)}).sort(
        ["part", "task"]
    )
