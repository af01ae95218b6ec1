"""Score one predictions file: per instance, per task, per category and overall.

Metrics are NIv2's (:mod:`instruct_ablate.metrics`). Every table carries the
run's identity columns (model, training variant, instances per task, seed,
evaluation variant) so that the report can stack runs without parsing paths.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl

from .io import write_json, write_table
from .metrics import aggregate, score_instances

__all__ = ["evaluate_predictions", "RUN_KEYS"]

log = logging.getLogger("instruct_ablate.evaluate")

RUN_KEYS = ("model", "train_variant", "instances_per_task", "seed", "eval_variant")


def evaluate_predictions(predictions_path: str | Path, out_dir: str | Path, run: dict[str, Any]) -> dict[str, Any]:
    """Score ``predictions_path`` and write the metric tables under ``out_dir``.

    Writes ``instances.parquet``, ``tasks.{parquet,csv}``, ``categories.{parquet,csv}``
    and ``overall.json``. ``run`` gives the identity columns (:data:`RUN_KEYS`).
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
    write_json(result, out_dir / "overall.json")
    log.info(
        "%s: EM %.2f, ROUGE-L %.2f over %d instances of %d tasks",
        predictions_path, result["exact_match"], result["rougeL"], result["n_instances"], result["n_tasks"],
    )
    return result
