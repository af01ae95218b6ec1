"""Exact match and ROUGE-L as NIv2 defines them, and their aggregation.

Source followed: ``eval/automatic/evaluation.py`` of allenai/natural-instructions
(default, English track). Answers are normalised by lower-casing, removing
ASCII punctuation (``string.punctuation``) and collapsing whitespace; articles
are *not* removed. Exact match compares normalised strings; ROUGE-L is the
F-measure of Google's ``rouge-score`` package with Porter stemming on the raw
strings. Each instance takes the best score over its references; scores are
reported ×100. Aggregates are micro-averages over instances (NIv2's
``compute_grouped_metrics``), per task, per category (``Categories[0]``,
lower-cased with spaces as underscores in NIv2's output; we keep the original
name) and overall.
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Sequence

import polars as pl

__all__ = [
    "normalize_answer",
    "exact_match",
    "rouge_l",
    "score_instances",
    "aggregate",
]

_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """NIv2/SQuAD normalisation without article removal: lower, strip punctuation, collapse spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference, else 0.0.

    Raises ``ValueError`` for an empty reference list (NIv2's ``max`` would fail too).
    """
    if len(references) == 0:
        raise ValueError("exact_match: an instance has no reference output")
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in references))


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """Best ROUGE-L F-measure (0..1) of ``prediction`` over ``references``, stemmed, as NIv2."""
    if len(references) == 0:
        raise ValueError("rouge_l: an instance has no reference output")
    scorer = _scorer()
    return max(scorer.score(target=ref, prediction=prediction)["rougeL"].fmeasure for ref in references)


def score_instances(predictions: pl.DataFrame) -> pl.DataFrame:
    """Add per-instance ``exact_match`` and ``rougeL`` columns (Float64, 0..100).

    ``predictions`` needs columns ``prediction`` (String) and ``references``
    (List[String]); other columns are kept. Raises ``ValueError`` naming the
    missing column.
    """
    for col in ("prediction", "references"):
        if col not in predictions.columns:
            raise ValueError(f"predictions table lacks the column {col!r}")
    preds = predictions["prediction"].fill_null("").to_list()
    refs = predictions["references"].to_list()
    em = [100.0 * exact_match(p, r) for p, r in zip(preds, refs)]
    rl = [100.0 * rouge_l(p, r) for p, r in zip(preds, refs)]
    return predictions.with_columns(
        pl.Series("exact_match", em, dtype=pl.Float64),
        pl.Series("rougeL", rl, dtype=pl.Float64),
    )


def aggregate(scored: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Micro-average ``exact_match`` and ``rougeL`` over instances grouped by ``by``.

    Returns one row per group with ``n_instances`` (UInt32), ``exact_match`` and
    ``rougeL`` (Float64, 0..100), sorted by the group keys. An empty ``by``
    gives the overall row.
    """
    aggs = [
        pl.len().alias("n_instances"),
        pl.col("exact_match").mean().alias("exact_match"),
        pl.col("rougeL").mean().alias("rougeL"),
    ]
    if not by:
        return scored.select(aggs)
    return scored.group_by(list(by)).agg(aggs).sort(list(by))
