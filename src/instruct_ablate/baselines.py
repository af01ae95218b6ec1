"""Model-free baselines on the unseen tasks (Kung & Peng 2023, §5).

* **random**: for each classification task, guess uniformly over its label space
  (:mod:`instruct_ablate.labels`). We report both the analytic expected exact
  match, ``|{labels matching a reference}| / |label space|`` per instance, and a
  seeded sampled run scored like any model.
* **majority**: for each classification task, always answer the most frequent
  gold label among its evaluation instances (an oracle: it looks at the test
  references).

Generation tasks have no label space: both baselines predict ``""`` there, so
their overall scores stay comparable with the models' (all tasks), and their
generation ROUGE-L is 0 by construction.
"""

from __future__ import annotations

import random
from collections import Counter

import polars as pl

from .io import stable_seed
from .labels import label_spaces
from .metrics import normalize_answer

__all__ = ["BASELINES", "baseline_predictions", "random_expected_exact_match"]

BASELINES = ("random", "majority")


def baseline_predictions(tasks: pl.DataFrame, instances: pl.DataFrame, baseline: str, seed: int) -> pl.DataFrame:
    """Predictions of ``baseline`` for every evaluation instance, in the predictions-file format.

    ``tasks`` and ``instances`` are the ingest tables of the test part. Returns
    columns ``task``, ``id``, ``category``, ``task_type``, ``prediction``,
    ``references``, ``source_tokens`` (0). ``random`` draws with a generator
    seeded by ``(seed, task)``. Raises ``ValueError`` for an unknown baseline.
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline {baseline!r} is not one of {BASELINES}")
    spaces = label_spaces(tasks)
    meta = tasks.select("task", "category", "task_type")
    rows = []
    for (task,), inst in instances.sort(["task", "rank"]).partition_by("task", as_dict=True, maintain_order=True).items():
        labels = spaces.get(task)
        refs = inst["references"].to_list()
        if not labels:
            preds = [""] * len(refs)
        elif baseline == "random":
            rng = random.Random(stable_seed("random-baseline", seed, task))
            preds = [rng.choice(labels) for _ in refs]
        else:
            counts = Counter(normalize_answer(r[0]) for r in refs)
            top = counts.most_common(1)[0][0]
            surface = {normalize_answer(lab): lab for lab in labels}
            preds = [surface.get(top, top)] * len(refs)
        rows.extend({"task": task, "id": i, "prediction": p, "references": r} for i, p, r in zip(inst["id"], preds, refs))
    out = pl.DataFrame(
        rows, schema={"task": pl.String, "id": pl.String, "prediction": pl.String, "references": pl.List(pl.String)}
    )
    return (
        out.join(meta, on="task", how="left")
        .with_columns(pl.lit(0, dtype=pl.Int32).alias("source_tokens"))
        .select("task", "id", "category", "task_type", "prediction", "references", "source_tokens")
    )


def random_expected_exact_match(tasks: pl.DataFrame, instances: pl.DataFrame) -> pl.DataFrame:
    """Analytic expected exact match (0..100) of uniform guessing, per classification task.

    Per instance, the chance that a uniform draw from the label space matches a
    reference after NIv2 normalisation; averaged over the task's instances.
    Returns ``task``, ``category``, ``n_labels``, ``n_instances``,
    ``expected_exact_match`` (Float64).
    """
    spaces = label_spaces(tasks)
    rows = []
    for r in tasks.filter(pl.col("task").is_in(list(spaces))).iter_rows(named=True):
        labels = [normalize_answer(lab) for lab in spaces[r["task"]]]
        refs = instances.filter(pl.col("task") == r["task"])["references"].to_list()
        hits = [sum(lab in {normalize_answer(x) for x in ref} for lab in labels) / len(labels) for ref in refs]
        rows.append(
            {
                "task": r["task"],
                "category": r["category"],
                "n_labels": len(labels),
                "n_instances": len(refs),
                "expected_exact_match": 100.0 * sum(hits) / len(hits) if hits else None,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "task": pl.String,
            "category": pl.String,
            "n_labels": pl.Int64,
            "n_instances": pl.Int64,
            "expected_exact_match": pl.Float64,
        },
    )
