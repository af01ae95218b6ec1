"""Score one predictions file: per instance, per task, per category and overall.

Metrics are NIv2's (:mod:`instruct_ablate.metrics`). Next to exact match we
report the output-format analysis of Kung & Peng (2023, §5): for classification
tasks, the share of predictions inside the task's label space, as strict
strings (``in_label_space``) and after NIv2 normalisation
(``in_label_space_normalised``); both are null for generation tasks. Every
table carries the run's identity columns (model, training variant, instances per task, seed,
evaluation variant) so that the report can stack runs without parsing paths.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl

from .io import write_json, write_table
from .labels import label_spaces
from .metrics import aggregate, normalize_answer, score_instances

__all__ = ["evaluate_predictions", "RUN_KEYS"]

log = logging.getLogger("instruct_ablate.evaluate")

RUN_KEYS = ("model", "train_variant", "instances_per_task", "seed", "eval_variant")


def label_space_membership(scored: pl.DataFrame, tasks: pl.DataFrame) -> pl.DataFrame:
    """Add ``in_label_space`` and ``in_label_space_normalised`` (Float64 0/100, null for generation tasks).

    ``tasks`` is the ingest tasks table (``task``, ``task_type``, ``label_space``).
    """
    spaces = {
        task: ({s.strip() for s in labels}, {normalize_answer(s) for s in labels})
        for task, labels in label_spaces(tasks).items()
    }
    strict, norm = [], []
    for task, pred in zip(scored["task"].to_list(), scored["prediction"].fill_null("").to_list()):
        if task in spaces:
            strict.append(100.0 * (pred.strip() in spaces[task][0]))
            norm.append(100.0 * (normalize_answer(pred) in spaces[task][1]))
        else:
            strict.append(None)
            norm.append(None)
    return scored.with_columns(
        pl.Series("in_label_space", strict, dtype=pl.Float64),
        pl.Series("in_label_space_normalised", norm, dtype=pl.Float64),
    )


def evaluate_predictions(
    predictions_path: str | Path,
    out_dir: str | Path,
    run: dict[str, Any],
    task_info: pl.DataFrame | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score ``predictions_path`` and write the metric tables under ``out_dir``.

    Writes ``instances.parquet``, ``tasks.{parquet,csv}``, ``categories.{parquet,csv}``
    and ``overall.json`` (with ``provenance``, :func:`instruct_ablate.provenance.describe`). ``run`` gives the identity columns (:data:`RUN_KEYS`);
    ``task_info`` (the test tasks table) adds the label-space columns.
    Returns the overall metrics. Raises ``ValueError`` if the file is empty or
    lacks a column.
    """
    preds = pl.read_parquet(predictions_path)
    if preds.height == 0:
        raise ValueError(f"{predictions_path}: no predictions")
    missing = {"task", "id", "category", "task_type", "prediction", "references"} - set(preds.columns)
    if missing:
        raise ValueError(f"{predictions_path}: missing columns {sorted(missing)}")
    ident = [pl.lit(run.get(k)).alias(k) for k in RUN_KEYS]
    scored = score_instances(preds).with_columns(ident)
    tasks = aggregate(scored, ["task", "category", "task_type"]).with_columns(ident)
    if task_info is not None:
        scored = label_space_membership(scored, task_info)
        shares = scored.group_by("task").agg(pl.col("in_label_space").mean(), pl.col("in_label_space_normalised").mean())
        tasks = tasks.join(shares, on="task", how="left")
    categories = aggregate(scored, ["category"]).with_columns(ident)
    by_type = aggregate(scored, ["task_type"])
    overall = aggregate(scored, [])
    out_dir = Path(out_dir)
    write_table(scored, out_dir / "instances.parquet")
    for name, df in (("tasks", tasks), ("categories", categories)):
        write_table(df, out_dir / f"{name}.parquet")
        write_table(df, out_dir / f"{name}.csv")
    result = {
        **{k: run.get(k) for k in RUN_KEYS},
        "n_instances": int(overall["n_instances"][0]),
        "n_tasks": int(tasks.height),
        "exact_match": float(overall["exact_match"][0]),
        "rougeL": float(overall["rougeL"][0]),
        "by_task_type": {
            r["task_type"]: {"n_instances": r["n_instances"], "exact_match": r["exact_match"], "rougeL": r["rougeL"]}
            for r in by_type.iter_rows(named=True)
        },
    }
    write_json({**result, "provenance": provenance or {}}, out_dir / "overall.json")
    log.info(
        "%s: EM %.2f, ROUGE-L %.2f over %d instances of %d tasks",
        predictions_path, result["exact_match"], result["rougeL"], result["n_instances"], result["n_tasks"],
    )
    return result
