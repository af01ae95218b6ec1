"""The paper's claims as verdicts: paired differences over tasks, intervals, p-values, verdicts.

Kung & Peng (ACL 2023) state their findings as comparisons between two sets of
runs: training on simplified definitions scores about as well as on the
original ones, delusive demonstrations at training time about as well as
correct ones, delusive demonstrations at *test* time hurt, instruction tuning
beats the untuned model, and a random guess over the label space comes close
to low-resource instruction tuning on classification (the abstract: 42.6 %
against 43 % exact match). A
*comparison* (``comparisons:`` in ``config.yaml``) names the two sides, a metric
and the claim (``better``, ``worse`` or ``equivalent`` within a margin); this
module turns each into a row of the claims table with a verdict.

**What is compared.** For each comparison, model and instances-per-task value,
side ``a`` and side ``b`` are scored per unseen task (the task's metric over its
evaluation instances, NIv2's definitions, points 0..100; seeds of a side
averaged within the task). The *difference* is the mean over the tasks both
sides have of ``a - b`` (a macro-average over tasks: every task weighs the same;
with NIv2's 100 evaluation instances per task it equals the difference of the
micro-averaged headline numbers).

**Why tasks are the unit.** The claims are about *unseen tasks*: would the
finding hold for another draw of tasks? Instances within a task share its
definition, label space and difficulty, so they are not independent draws;
resampling instances would treat 100 correlated answers as 100 pieces of
evidence and give intervals far too narrow. Resampling tasks keeps each task's
instances together (a cluster bootstrap). Seeds are averaged within a task
first; their spread is reported beside the interval (``seed_sd_a``/``_b``),
not resampled: with the 1 to 3 seeds of a typical study there is nothing to
resample.

**Uncertainty.** The 95 % interval is a paired bootstrap over tasks
(:func:`scipy.stats.bootstrap`, ``paired=True``, ``method="BCa"``, seeded): each
resample draws ``n_tasks`` tasks with replacement, keeping each task's ``(a, b)``
pair together, and recomputes the mean difference. The p-value is a paired
permutation test (:func:`scipy.stats.permutation_test`,
``permutation_type="samples"``): under "no difference", ``a`` and ``b`` are
exchangeable within each task, so each task's pair is swapped (its difference
sign-flipped) at random; exact (all ``2**n`` swaps) when ``2**n`` is at most
``n_resamples``. P-values are Holm-adjusted across all rows of the report
(:func:`holm`). Baselines (no seeds) enter as one value per task.

**Verdicts** (:func:`verdict`): ``better``/``worse`` are *supported* when the
95 % interval excludes the margin (default 0) in the claimed direction,
*contradicted* when it lies entirely on the other side, else *inconclusive*.
``equivalent`` is two one-sided tests at 5 %: the 90 % interval inside
``(-margin, margin)`` supports it, an interval entirely outside contradicts
it, anything else is inconclusive. For every row the table also gives the
minimum detectable effect (:func:`min_detectable_effect`) and the number of
tasks that would settle it (:func:`tasks_needed`), so an inconclusive verdict
says what more runs would buy, and flags comparisons at the floor (both sides
under :data:`FLOOR` points: two models that fail every task are "equivalent").

**Degenerate cases.** One shared task: no interval and no p-value (the
bootstrap and the permutation test need two observations). All task
differences equal (often: both sides score 0 on every task): BCa is undefined
(its acceleration divides by zero; scipy returns NaN), and the interval is the
degenerate ``[d, d]`` (every resample gives ``d``), labelled ``ci_method =
"degenerate"``. Any other NaN from BCa falls back to the percentile interval of
the same bootstrap distribution (``ci_method = "percentile"``). In the claims
table a row with fewer than :data:`MIN_TASKS` shared tasks (6: the fewest with
which the exact permutation test can reach p < 0.05) or with a degenerate
interval is *inconclusive* whatever its interval, and the note says why: a
bootstrap over 3 tasks, or over tasks that all moved by exactly the same
amount, cannot speak for unseen tasks in general (:func:`verdict` itself
applies the interval rules only).
"""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import polars as pl
from scipy import stats

__all__ = [
    "METRICS",
    "CLAIMS",
    "Side",
    "Comparison",
    "PairedStats",
    "parse_comparisons",
    "side_values",
    "paired_stats",
    "verdict",
    "min_detectable_effect",
    "tasks_needed",
    "holm",
    "CLAIM_COLUMNS",
    "DIFF_COLUMNS",
    "evaluate_claims",
    "eval_variant_effects",
    "claims_markdown",
]

log = logging.getLogger("instruct_ablate.claims")

#: metric name -> (column of the per-task metrics table, task type it is defined on or None for all tasks)
METRICS: dict[str, tuple[str, str | None]] = {
    "cls_exact_match": ("exact_match", "classification"),
    "gen_rougeL": ("rougeL", "generation"),
    "rougeL": ("rougeL", None),
    "exact_match": ("exact_match", None),
    "cls_in_label_space": ("in_label_space_normalised", "classification"),
}
METRIC_LABELS = {
    "cls_exact_match": "classification EM",
    "gen_rougeL": "generation ROUGE-L",
    "rougeL": "overall ROUGE-L",
    "exact_match": "overall EM",
    "cls_in_label_space": "outputs in label space",
}
CLAIMS = ("better", "worse", "equivalent")
BASELINE_MODEL = "baseline"
BASELINES = ("random", "majority")
UNTUNED = "untuned"
NOT_RUN = "not run"
FEW_TASKS = 10  # below this many tasks the note warns that the interval is rough
#: fewest shared tasks for a verdict other than inconclusive: with n tasks the exact paired permutation
#: test's smallest two-sided p is 2 / 2**n, below 0.05 only from n = 6 (0.031)
MIN_TASKS = 6
#: both sides averaging under this many points: the note flags a floor effect (neither side does the tasks)
FLOOR = 5.0

_Z_975 = float(stats.norm.ppf(0.975))
_Z_95 = float(stats.norm.ppf(0.95))
_Z_80 = float(stats.norm.ppf(0.80))


# --------------------------------------------------------------------------- comparisons as data


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a set of runs.

    ``model`` None means "the row's model": the other side's model if it
    names one, else every model of the study (one row each); ``train_variant`` is a training variant, ``untuned`` (the base
    model) or, with ``model="baseline"``, ``random``/``majority``;
    ``eval_variant`` None means the training variant (tuned runs) or the first
    of ``evaluation.untuned`` (the untuned model); ``instances_per_task`` None
    means every size of the study.
    """

    train_variant: str
    model: str | None = None
    eval_variant: str | None = None
    instances_per_task: tuple[int, ...] | None = None

    @property
    def kind(self) -> str:
        """``baseline``, ``untuned`` or ``tuned``."""
        if self.model == BASELINE_MODEL:
            return "baseline"
        return UNTUNED if self.train_variant == UNTUNED else "tuned"

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], where: str) -> "Side":
        """Build from a ``comparisons.<name>.a``/``b`` mapping; ``ValueError`` naming ``where`` if malformed."""
        if not isinstance(spec, Mapping) or "train_variant" not in spec:
            raise ValueError(f"{where}: needs 'train_variant'")
        unknown = set(spec) - {"model", "train_variant", "eval_variant", "instances_per_task"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        n = spec.get("instances_per_task")
        if n is not None:
            n = tuple(int(x) for x in (n if isinstance(n, (list, tuple)) else [n]))
        side = cls(str(spec["train_variant"]), spec.get("model"), spec.get("eval_variant"), n)
        if side.kind == "baseline" and side.train_variant not in BASELINES:
            raise ValueError(f"{where}.train_variant: a baseline is one of {list(BASELINES)}, not {side.train_variant!r}")
        return side

    def label(self) -> str:
        """Short human label, e.g. ``original``, ``original (eval delusive)``, ``untuned``, ``random baseline``."""
        if self.kind == "baseline":
            return f"{self.train_variant} baseline"
        s = self.train_variant
        if self.eval_variant and self.eval_variant != self.train_variant:
            s += f" (eval {self.eval_variant})"
        return s


@dataclass(frozen=True)
class Comparison:
    """A claim about two sides: ``a`` is ``claim`` (better/worse/equivalent within ``margin``) than ``b``.

    The difference is ``a - b`` in points of ``metric`` (0..100). ``paper``
    holds the paper's own figure: ``source`` (where it is stated), ``note``
    (free text) and ``values`` (a list of ``{instances_per_task?, a, b}`` or
    ``{instances_per_task?, difference}``).
    """

    name: str
    a: Side
    b: Side
    metric: str
    claim: str
    margin: float = 0.0
    description: str = ""
    paper: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> "Comparison":
        """Build from ``comparisons.<name>``; ``ValueError`` naming the key for an unknown metric or claim,
        or a missing margin on an ``equivalent`` claim (the schema checks the same at start-up)."""
        where = f"comparisons.{name}"
        for key in ("a", "b", "metric", "claim"):
            if key not in spec:
                raise ValueError(f"{where}: missing '{key}'")
        if spec["metric"] not in METRICS:
            raise ValueError(f"{where}.metric: {spec['metric']!r} is not one of {list(METRICS)}")
        if spec["claim"] not in CLAIMS:
            raise ValueError(f"{where}.claim: {spec['claim']!r} is not one of {list(CLAIMS)}")
        margin = spec.get("margin")
        if spec["claim"] == "equivalent" and (margin is None or float(margin) <= 0):
            raise ValueError(f"{where}.margin: an 'equivalent' claim needs a margin > 0 (points)")
        if margin is not None and float(margin) < 0:
            raise ValueError(f"{where}.margin: must be >= 0")
        return cls(
            name=name,
            a=Side.from_config(spec["a"], f"{where}.a"),
            b=Side.from_config(spec["b"], f"{where}.b"),
            metric=spec["metric"],
            claim=spec["claim"],
            margin=float(margin or 0.0),
            description=str(spec.get("description", "")),
            paper=dict(spec.get("paper") or {}),
        )


def parse_comparisons(spec: Mapping[str, Mapping[str, Any]] | None) -> list[Comparison]:
    """``comparisons:`` of the config -> :class:`Comparison` objects, in config order. ``None`` -> ``[]``."""
    return [Comparison.from_config(name, s) for name, s in (spec or {}).items()]


@dataclass(frozen=True)
class _Run:
    """A concrete selection of runs (all seeds): the identity columns of ``tasks.parquet``."""

    model: str
    train_variant: str
    eval_variant: str
    instances_per_task: int

    def short(self, row_model: str, row_n: int) -> str:
        """Label within a row: the variant, plus the model and size only where they differ from the row's."""
        if self.model == BASELINE_MODEL:
            return f"{self.train_variant} baseline"
        s = self.train_variant
        if self.train_variant != UNTUNED and self.eval_variant != self.train_variant:
            s += f" (eval {self.eval_variant})"
        if self.train_variant == UNTUNED and self.eval_variant != "original":
            s += f" (eval {self.eval_variant})"
        if self.train_variant != UNTUNED and self.instances_per_task != row_n:
            s += f" n={self.instances_per_task}"
        if self.model != row_model:
            s = f"{self.model}: {s}"
        return s

    def describe(self) -> str:
        if self.model == BASELINE_MODEL:
            return f"{self.train_variant} baseline"
        s = f"{self.model}/{self.train_variant}"
        if self.train_variant != UNTUNED:
            s += f"/n{self.instances_per_task}"
        return s + f" (eval {self.eval_variant})"


def _resolve(side: Side, model: str, n: int, untuned_eval: str) -> _Run:
    if side.kind == "baseline":
        return _Run(BASELINE_MODEL, side.train_variant, "-", 0)
    m = side.model or model
    if side.kind == UNTUNED:
        return _Run(m, UNTUNED, side.eval_variant or untuned_eval, 0)
    if side.instances_per_task is not None and len(side.instances_per_task) == 1:
        n = side.instances_per_task[0]
    return _Run(m, side.train_variant, side.eval_variant or side.train_variant, n)


def _rows(c: Comparison, study: Mapping[str, Any]) -> list[tuple[str, int, _Run, _Run]]:
    """(row model, row size, run a, run b) for every row of comparison ``c``.

    Models: the model a side names (a side without one follows it: one row),
    else every model of the study (one row each). Sizes: those listed by side
    ``a``, else by ``b``, else every size of the study; 0 when neither side is
    tuned. A side with a single size is held at it; the untuned model and the
    baselines have no size.
    """
    sides = (c.a, c.b)
    named = [s.model for s in sides if s.kind != "baseline" and s.model]
    if named:
        models = named[:1]
    elif any(s.kind != "baseline" for s in sides):
        models = list(study["models"])
    else:
        models = [BASELINE_MODEL]
    tuned = [s for s in sides if s.kind == "tuned"]
    if not tuned:
        sizes = [0]
    else:
        listed = next((s.instances_per_task for s in tuned if s.instances_per_task), None)
        sizes = list(listed or study["instances_per_task"])
    out, seen = [], set()
    for m in models:
        for n in sizes:
            ra = _resolve(c.a, m, n, study["untuned_eval"])
            rb = _resolve(c.b, m, n, study["untuned_eval"])
            key = (ra, rb)
            if key in seen:
                continue
            seen.add(key)
            row_model = ra.model if ra.model != BASELINE_MODEL else rb.model
            row_n = ra.instances_per_task or rb.instances_per_task
            out.append((row_model, row_n, ra, rb))
    return out


def _study_from(task_metrics: pl.DataFrame) -> dict[str, Any]:
    runs = task_metrics.filter(pl.col("model") != BASELINE_MODEL)
    tuned = runs.filter(pl.col("train_variant") != UNTUNED)
    untuned = runs.filter(pl.col("train_variant") == UNTUNED)
    return {
        "models": runs["model"].unique(maintain_order=True).to_list(),
        "instances_per_task": sorted(tuned["instances_per_task"].unique().to_list()),
        "untuned_eval": (untuned["eval_variant"].unique(maintain_order=True).to_list() or ["original"])[0],
    }


# --------------------------------------------------------------------------- per-task values


def side_values(task_metrics: pl.DataFrame, run: _Run | Mapping[str, Any], metric: str) -> pl.DataFrame:
    """The per-task, per-seed values of ``metric`` for one set of runs.

    ``task_metrics`` is the stack of ``metrics/<run>/tasks.parquet`` tables
    (identity columns ``model``, ``train_variant``, ``instances_per_task``,
    ``seed``, ``eval_variant``; ``task``, ``task_type`` and the metric
    columns). Returns columns ``task`` (String), ``seed`` (Int64), ``value``
    (Float64, points 0..100), restricted to the metric's task type and to
    non-null values; empty when the runs are not in the table. Raises
    ``KeyError`` for an unknown metric.
    """
    col, task_type = METRICS[metric]
    r = run if isinstance(run, Mapping) else asdict(run)
    if col not in task_metrics.columns:
        return pl.DataFrame(schema={"task": pl.String, "seed": pl.Int64, "value": pl.Float64})
    sel = task_metrics.filter(
        (pl.col("model") == r["model"])
        & (pl.col("train_variant") == r["train_variant"])
        & (pl.col("eval_variant") == r["eval_variant"])
        & (pl.col("instances_per_task") == r["instances_per_task"])
    )
    if task_type is not None:
        sel = sel.filter(pl.col("task_type") == task_type)
    return (
        sel.select(
            pl.col("task").cast(pl.String),
            pl.col("seed").cast(pl.Int64),
            pl.col(col).cast(pl.Float64).fill_nan(None).alias("value"),
        )
        .drop_nulls("value")
        .sort(["task", "seed"])
    )


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class PairedStats:
    """The statistics of one paired comparison over tasks (points 0..100 throughout).

    ``difference``: mean over tasks of ``a - b``; ``ci_low``/``ci_high``: 95 %
    interval (``ci_method``: ``BCa``, ``percentile``, ``degenerate`` or
    ``none``); ``ci90_low``/``ci90_high``: 90 % interval from the same
    bootstrap distribution (two one-sided tests at 5 %); ``p_value``: two-sided
    paired permutation test of "no difference"; ``sd``: standard deviation of
    the task differences (ddof 1); NaN where undefined (fewer than 2 tasks).
    """

    n: int
    difference: float
    ci_low: float
    ci_high: float
    ci90_low: float
    ci90_high: float
    ci_method: str
    p_value: float
    sd: float


def _rng(func, seed: int) -> dict[str, np.random.Generator]:
    """The seeded generator keyword of a scipy resampling function: ``rng`` (scipy >= 1.15) or ``random_state``."""
    name = "rng" if "rng" in inspect.signature(func).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def paired_stats(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 9999,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedStats:
    """Paired bootstrap interval and permutation p-value of ``mean(a - b)`` over tasks.

    ``a`` and ``b`` are 1-D float arrays of equal length ``n`` (one value per
    task, points 0..100, position ``i`` the same task on both sides). The
    bootstrap (:func:`scipy.stats.bootstrap`, ``paired=True``, BCa,
    ``n_resamples`` resamples, ``numpy.random.default_rng(seed)``)
    resamples tasks with replacement, keeping pairs together; the 90 % interval
    reuses its distribution (``bootstrap_result``). The permutation test
    (:func:`scipy.stats.permutation_test`, ``permutation_type="samples"``,
    two-sided, same seed) swaps ``a_i`` and ``b_i`` within tasks. Degenerate
    inputs: ``n < 2`` gives NaN interval and p-value (``ci_method="none"``);
    all differences equal gives the interval ``[d, d]``
    (``ci_method="degenerate"``); another NaN from BCa falls back to the
    percentile interval. Deterministic for a given ``seed``. Raises
    ``ValueError`` when the lengths differ, a value is not finite, or
    ``n == 0``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired_stats: a and b must be 1-D of equal length, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("paired_stats: no shared task")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired_stats: values must be finite")
    d = a - b
    n = int(d.size)
    diff = float(d.mean())
    nan = float("nan")
    if n < 2:
        return PairedStats(n, diff, nan, nan, nan, nan, "none", nan, nan)
    sd = float(d.std(ddof=1))
    perm = stats.permutation_test(
        (a, b),
        _mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        **_rng(stats.permutation_test, seed),
    )
    p = float(min(1.0, perm.pvalue))
    if np.ptp(d) == 0:
        return PairedStats(n, diff, diff, diff, diff, diff, "degenerate", p, 0.0)
    kw = dict(paired=True, vectorized=True, **_rng(stats.bootstrap, seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        res = stats.bootstrap((a, b), _mean_diff, n_resamples=n_resamples, method="BCa", confidence_level=confidence, **kw)
        res90 = stats.bootstrap(
            (a, b), _mean_diff, n_resamples=0, bootstrap_result=res, method="BCa", confidence_level=0.90, **kw
        )
        method = "BCa"
        lo, hi = res.confidence_interval
        lo90, hi90 = res90.confidence_interval
        if not all(np.isfinite([lo, hi, lo90, hi90])):
            method = "percentile"
            lo, hi = stats.bootstrap(
                (a, b), _mean_diff, n_resamples=0, bootstrap_result=res, method="percentile",
                confidence_level=confidence, **kw,
            ).confidence_interval
            lo90, hi90 = stats.bootstrap(
                (a, b), _mean_diff, n_resamples=0, bootstrap_result=res, method="percentile",
                confidence_level=0.90, **kw,
            ).confidence_interval
    return PairedStats(n, diff, float(lo), float(hi), float(lo90), float(hi90), method, p, sd)


def verdict(claim: str, margin: float, ci95: tuple[float, float], ci90: tuple[float, float]) -> str:
    """``supported``, ``contradicted`` or ``inconclusive`` for a claim about ``a - b`` (points).

    ``better`` (``margin`` m >= 0, default 0): supported when the 95 % interval
    lies above m, contradicted when it lies below m (for m = 0: below 0),
    else inconclusive. ``worse``: the mirror image (below -m supported, above
    -m contradicted). ``equivalent`` (m > 0; two one-sided tests at 5 %, i.e.
    the 90 % interval): inside ``(-m, m)`` supported, entirely at or beyond
    ``±m`` contradicted, else inconclusive. A NaN interval is inconclusive.
    Raises ``ValueError`` for an unknown claim.
    """
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}; expected one of {list(CLAIMS)}")
    lo, hi = ci90 if claim == "equivalent" else ci95
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    m = float(margin)
    if claim == "better":
        return "supported" if lo > m else "contradicted" if hi < m else "inconclusive"
    if claim == "worse":
        return "supported" if hi < -m else "contradicted" if lo > -m else "inconclusive"
    if -m < lo and hi < m:
        return "supported"
    if lo >= m or hi <= -m:
        return "contradicted"
    return "inconclusive"


def min_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference (points) a two-sided test at ``alpha`` finds with probability ``power``.

    The normal approximation ``(z_{1-alpha/2} + z_{power}) * sd / sqrt(n)``
    (for 5 % and 80 %: ``2.80 * sd / sqrt(n)``), with ``sd`` the standard
    deviation of the per-task differences (seeds averaged) and ``n`` the
    number of tasks. More seeds shrink ``sd`` only by the seed-noise share of
    it; more tasks shrink the MDE as ``1/sqrt(n)``. NaN for ``n < 2``, a
    non-finite or zero ``sd`` (a degenerate sample says nothing about spread).
    """
    if n < 2 or not math.isfinite(sd) or sd <= 0:
        return float("nan")
    return (float(stats.norm.ppf(1 - alpha / 2)) + float(stats.norm.ppf(power))) * sd / math.sqrt(n)


def tasks_needed(claim: str, difference: float, sd: float, margin: float = 0.0, power: float = 0.8) -> float:
    """Tasks that would settle the claim at 80 % power, if the true difference were the observed one.

    ``better``/``worse``: ``((z_.975 + z_power) * sd / |d - (±margin)|)**2``
    (tasks to detect the observed distance from the claim's threshold);
    ``equivalent``: ``((z_.95 + z_power) * sd / (margin - |d|))**2`` (tasks for
    the 90 % interval to fit inside ``±margin``). Normal approximations with
    ``sd`` treated as known; a rough guide, not a power analysis. NaN when
    undefined (``sd`` not positive, the observed difference at the threshold,
    or beyond the margin for ``equivalent``). Returns a float count (ceil).
    """
    if not math.isfinite(sd) or sd <= 0 or not math.isfinite(difference):
        return float("nan")
    if claim == "equivalent":
        gap = margin - abs(difference)
        z = _Z_95 + float(stats.norm.ppf(power))
    else:
        threshold = margin if claim == "better" else -margin
        gap = abs(difference - threshold)
        z = _Z_975 + float(stats.norm.ppf(power))
    if gap <= 0:
        return float("nan")
    return float(math.ceil((z * sd / gap) ** 2))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error) of ``p_values``; NaN entries stay NaN, are not counted.

    With the ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted
    value is ``max_{j<=i} min(1, (m - j + 1) * p_(j))`` (Holm 1979), returned
    in the input order as a float array. (:func:`scipy.stats.false_discovery_control`
    is Benjamini-Hochberg, a different error rate.)
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# --------------------------------------------------------------------------- the claims table


def _paper(c: Comparison, n: int) -> tuple[str, float | None]:
    """The paper's figure for row size ``n``: (text for the table, difference or None)."""
    values = list(c.paper.get("values") or [])

    def diff(v: Mapping[str, Any]) -> float | None:
        if "difference" in v:
            return float(v["difference"])
        if "a" in v and "b" in v:
            return float(v["a"]) - float(v["b"])
        return None

    def text(v: Mapping[str, Any]) -> str:
        d = diff(v)
        s = "" if d is None else f"{d:+.2f}"
        if "a" in v and "b" in v:
            s += f" ({float(v['a']):.2f} vs {float(v['b']):.2f})"
        return s.strip()

    match = [v for v in values if v.get("instances_per_task") in (None, n)]
    exact = [v for v in match if v.get("instances_per_task") == n] or match
    note = str(c.paper.get("note", "")).strip()
    if exact:
        v = exact[0]
        where = f" at n={v['instances_per_task']}" if v.get("instances_per_task") else ""
        return text(v) + where, diff(v)
    if values:
        parts = [f"n={v['instances_per_task']}: {text(v)}" for v in values if v.get("instances_per_task")]
        return "; ".join(parts) + (f" ({note})" if note else ""), None
    return note, None


def _fmt(x: float | None, nd: int = 2, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}f}"


def _fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _gate(v: str, st: PairedStats) -> tuple[str, str]:
    """The verdict a row may carry: too few tasks or no spread across tasks make it inconclusive.

    Returns ``(verdict, reason)``; ``reason`` is ``""`` when the interval's verdict stands.
    """
    if st.n < MIN_TASKS:
        return "inconclusive", f"{st.n} shared task{'s' if st.n != 1 else ''}, fewer than {MIN_TASKS}: no verdict"
    if st.ci_method == "degenerate":
        return "inconclusive", (
            f"all {st.n} task differences equal ({st.difference:+.2f}): no spread to estimate an interval from"
        )
    return v, ""


def _note(
    c: Comparison,
    st: PairedStats,
    v: str,
    gated: str,
    n_seeds: tuple[int, int],
    mde: float,
    need: float,
    means: tuple[float, float],
) -> str:
    """The table's note: why a verdict is what it is, and what more runs would buy."""
    parts = []
    if gated:
        parts.append(gated)
    if st.ci_method == "none":
        parts.append("no interval")
    elif st.ci_method == "degenerate":
        parts.append("degenerate interval")
    elif st.ci_method == "percentile":
        parts.append("BCa undefined: percentile interval")
    if v == "inconclusive":
        scale = f"{st.n} tasks x {'/'.join(str(s) for s in n_seeds)} seeds"
        if c.claim == "equivalent" and math.isfinite(st.ci90_low) and st.ci_method != "degenerate":
            widest = max(abs(st.ci90_low), abs(st.ci90_high))
            parts.append(f"inconclusive at {scale}: 90% CI reaches ±{widest:.2f}, margin ±{c.margin:g}")
        elif math.isfinite(mde):
            parts.append(f"inconclusive at {scale}: detects only differences ≥ {mde:.2f} points (MDE, 80% power)")
        else:
            parts.append(f"inconclusive at {scale}")
        if math.isfinite(need) and need > st.n:
            parts.append(f"≈{int(need)} tasks would settle it if the true difference were the observed one")
        elif c.claim == "equivalent" and abs(st.difference) >= c.margin:
            parts.append(f"the observed difference lies beyond the ±{c.margin:g} margin")
    if max(means) < FLOOR:
        parts.append(f"both sides average under {FLOOR:g} points: a comparison at the floor (neither does the tasks)")
    if MIN_TASKS <= st.n < FEW_TASKS:
        parts.append(f"only {st.n} tasks: rough interval")
    if max(n_seeds) <= 1 and c.a.kind == "tuned":
        parts.append("1 seed: seed spread unknown")
    return "; ".join(parts)


CLAIM_COLUMNS = {
    "comparison": pl.String,
    "description": pl.String,
    "model": pl.String,
    "instances_per_task": pl.Int64,
    "a": pl.String,
    "b": pl.String,
    "metric": pl.String,
    "claim": pl.String,
    "margin": pl.Float64,
    "n_tasks": pl.Int64,
    "n_seeds_a": pl.Int64,
    "n_seeds_b": pl.Int64,
    "mean_a": pl.Float64,
    "mean_b": pl.Float64,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "ci90_low": pl.Float64,
    "ci90_high": pl.Float64,
    "ci_method": pl.String,
    "p_value": pl.Float64,
    "p_holm": pl.Float64,
    "seed_sd_a": pl.Float64,
    "seed_sd_b": pl.Float64,
    "sd_task_diff": pl.Float64,
    "mde": pl.Float64,
    "tasks_needed": pl.Float64,
    "verdict": pl.String,
    "note": pl.String,
    "paper": pl.String,
    "paper_difference": pl.Float64,
    "paper_source": pl.String,
}
DIFF_COLUMNS = {
    "comparison": pl.String,
    "model": pl.String,
    "instances_per_task": pl.Int64,
    "metric": pl.String,
    "task": pl.String,
    "a": pl.Float64,
    "b": pl.Float64,
    "difference": pl.Float64,
}


def _has_runs(task_metrics: pl.DataFrame, run: _Run) -> bool:
    """Whether any run of the selection is in the stacked table (whatever its tasks)."""
    return task_metrics.filter(
        (pl.col("model") == run.model)
        & (pl.col("train_variant") == run.train_variant)
        & (pl.col("eval_variant") == run.eval_variant)
        & (pl.col("instances_per_task") == run.instances_per_task)
    ).height > 0


def _seed_sd(values: pl.DataFrame, tasks: Iterable[str]) -> float | None:
    """Standard deviation over seeds of the side's mean over ``tasks`` (None with one seed)."""
    per_seed = values.filter(pl.col("task").is_in(list(tasks))).group_by("seed").agg(pl.col("value").mean())
    if per_seed.height < 2:
        return None
    return float(per_seed["value"].std())


def evaluate_claims(
    task_metrics: pl.DataFrame,
    comparisons: Sequence[Comparison] | Mapping[str, Mapping[str, Any]] | None,
    study: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    n_resamples: int = 9999,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every comparison's rows with statistics and verdicts, and the per-task differences behind them.

    ``task_metrics``: the stacked ``tasks.parquet`` tables of every run.
    ``comparisons``: :class:`Comparison` objects or the config's
    ``comparisons:`` mapping. ``study``: ``models`` (list), ``instances_per_task``
    (list of int) and ``untuned_eval`` (the untuned model's default evaluation
    variant); inferred from ``task_metrics`` when None. ``seed`` and
    ``n_resamples`` go to :func:`paired_stats` (the same seed for every row, so
    a row does not depend on the others).

    Returns ``(claims, task_differences)``. ``claims`` has one row per
    comparison × model × instances-per-task value, with the columns and
    dtypes of :data:`CLAIM_COLUMNS`: the row's identity (``comparison``,
    ``description``, ``model``, ``instances_per_task``, the side labels ``a``
    and ``b``, ``metric``, ``claim``, ``margin``), ``n_tasks``,
    ``n_seeds_a``/``_b``, the side means ``mean_a``/``_b`` over the shared
    tasks, ``difference`` (a − b), ``ci_low``/``ci_high`` (95 %),
    ``ci90_low``/``ci90_high``, ``ci_method``, ``p_value``, ``p_holm``,
    ``seed_sd_a``/``_b`` (sd over seeds of the side's mean), ``sd_task_diff``,
    ``mde``, ``tasks_needed`` (inconclusive rows), ``verdict`` (supported,
    contradicted, inconclusive or ``not run``), ``note``, ``paper``,
    ``paper_difference``, ``paper_source``; scores and differences in points
    (0..100), null where undefined. Fewer than :data:`MIN_TASKS` shared tasks
    or a degenerate interval make a row inconclusive. A side whose runs are not in
    ``task_metrics`` (a variant not trained, a model not in the study) gives a
    ``not run`` row and a log line, never an error. ``p_holm`` adjusts the
    p-values of all rows together (:func:`holm`). ``task_differences`` has one
    row per row × shared task (:data:`DIFF_COLUMNS`: ``comparison``, ``model``,
    ``instances_per_task``, ``metric``, ``task``, ``a``, ``b``, ``difference``;
    seeds averaged).
    Raises ``ValueError`` for a malformed comparison (see
    :meth:`Comparison.from_config`).
    """
    if comparisons is None or isinstance(comparisons, Mapping):
        comparisons = parse_comparisons(comparisons)
    study = dict(study or _study_from(task_metrics))
    study.setdefault("untuned_eval", "original")
    rows, diffs = [], []
    for c in comparisons:
        for model, n, ra, rb in _rows(c, study):
            va, vb = side_values(task_metrics, ra, c.metric), side_values(task_metrics, rb, c.metric)
            paper_text, paper_diff = _paper(c, n)
            row = {
                "comparison": c.name,
                "description": c.description,
                "model": model,
                "instances_per_task": n,
                "a": ra.short(model, n),
                "b": rb.short(model, n),
                "metric": c.metric,
                "claim": c.claim,
                "margin": c.margin,
                "paper": paper_text,
                "paper_difference": paper_diff,
                "paper_source": str(c.paper.get("source", "")),
            }
            absent = [r.describe() for r in (ra, rb) if not _has_runs(task_metrics, r)]
            empty = [r.describe() for r, v in ((ra, va), (rb, vb)) if v.height == 0]
            why = ""
            if absent:
                why = f"no runs of {' and '.join(absent)} in this study"
            elif empty:
                scope = f"{METRICS[c.metric][1]} task" if METRICS[c.metric][1] else "task"
                why = f"no {scope} with {METRIC_LABELS[c.metric]} in {' and '.join(empty)}"
            if why:
                log.info("claims: %s (model %s, n=%s): not run: %s", c.name, model, n, why)
                rows.append({**row, "verdict": NOT_RUN, "note": why, "n_tasks": 0})
                continue
            ma = va.group_by("task").agg(pl.col("value").mean().alias("a"), pl.col("seed").n_unique().alias("sa"))
            mb = vb.group_by("task").agg(pl.col("value").mean().alias("b"), pl.col("seed").n_unique().alias("sb"))
            joined = ma.join(mb, on="task", how="inner").sort("task")
            if joined.height == 0:
                why = f"{ra.describe()} and {rb.describe()} share no task"
                log.info("claims: %s (model %s, n=%s): not run: %s", c.name, model, n, why)
                rows.append({**row, "verdict": NOT_RUN, "note": why, "n_tasks": 0})
                continue
            a, b = joined["a"].to_numpy(), joined["b"].to_numpy()
            st = paired_stats(a, b, n_resamples=n_resamples, seed=seed)
            v, gated = _gate(verdict(c.claim, c.margin, (st.ci_low, st.ci_high), (st.ci90_low, st.ci90_high)), st)
            n_seeds = (int(va["seed"].n_unique()), int(vb["seed"].n_unique()))
            mde = min_detectable_effect(st.sd, st.n)
            need = tasks_needed(c.claim, st.difference, st.sd, c.margin) if v == "inconclusive" else float("nan")
            tasks = joined["task"].to_list()
            rows.append(
                {
                    **row,
                    "n_tasks": st.n,
                    "n_seeds_a": n_seeds[0],
                    "n_seeds_b": n_seeds[1],
                    "mean_a": float(a.mean()),
                    "mean_b": float(b.mean()),
                    "difference": st.difference,
                    "ci_low": st.ci_low,
                    "ci_high": st.ci_high,
                    "ci90_low": st.ci90_low,
                    "ci90_high": st.ci90_high,
                    "ci_method": st.ci_method,
                    "p_value": st.p_value,
                    "seed_sd_a": _seed_sd(va, tasks),
                    "seed_sd_b": _seed_sd(vb, tasks),
                    "sd_task_diff": st.sd,
                    "mde": mde,
                    "tasks_needed": need,
                    "verdict": v,
                    "note": _note(c, st, v, gated, n_seeds, mde, need, (float(a.mean()), float(b.mean()))),
                }
            )
            diffs.append(
                joined.select(
                    pl.lit(c.name).alias("comparison"),
                    pl.lit(model).alias("model"),
                    pl.lit(n, dtype=pl.Int64).alias("instances_per_task"),
                    pl.lit(c.metric).alias("metric"),
                    "task",
                    "a",
                    "b",
                    (pl.col("a") - pl.col("b")).alias("difference"),
                )
            )
    claims = pl.DataFrame(
        [{k: r.get(k) for k in CLAIM_COLUMNS} for r in rows], schema=CLAIM_COLUMNS, orient="row"
    ) if rows else pl.DataFrame(schema=CLAIM_COLUMNS)
    claims = claims.with_columns(pl.col(pl.Float64).fill_nan(None))
    claims = claims.with_columns(pl.Series("p_holm", holm(claims["p_value"].fill_null(float("nan")).to_numpy())).fill_nan(None))
    task_diffs = pl.concat(diffs) if diffs else pl.DataFrame(schema=DIFF_COLUMNS)
    return claims, task_diffs


def eval_variant_effects(
    task_metrics: pl.DataFrame, metric: str = "rougeL", *, seed: int = 0, n_resamples: int = 9999
) -> pl.DataFrame:
    """The effect of changing the instructions at *test* time, per tuned model (e.g. delusive demonstrations).

    For every (model, training variant, instances per task) evaluated with a
    variant other than its training one (``evaluation.extra``), the paired
    difference over tasks of ``metric`` (other evaluation variant minus the
    training variant's own, seeds averaged within a task) with its 95 %
    bootstrap interval (:func:`paired_stats`). Returns columns ``model``,
    ``train_variant``, ``eval_variant``, ``instances_per_task``, ``metric``,
    ``n_tasks``, ``n_seeds``, ``difference``, ``ci_low``, ``ci_high`` (points;
    null where undefined); empty when no run was evaluated that way.
    """
    schema = {
        "model": pl.String, "train_variant": pl.String, "eval_variant": pl.String, "instances_per_task": pl.Int64,
        "metric": pl.String, "n_tasks": pl.Int64, "n_seeds": pl.Int64, "difference": pl.Float64,
        "ci_low": pl.Float64, "ci_high": pl.Float64,
    }
    tuned = task_metrics.filter(
        (pl.col("model") != BASELINE_MODEL)
        & (pl.col("train_variant") != UNTUNED)
        & (pl.col("eval_variant") != pl.col("train_variant"))
    )
    keys = tuned.select("model", "train_variant", "eval_variant", "instances_per_task").unique().sort(
        ["model", "train_variant", "eval_variant", "instances_per_task"]
    )
    rows = []
    for k in keys.iter_rows(named=True):
        other = side_values(task_metrics, k, metric)
        own = side_values(task_metrics, {**k, "eval_variant": k["train_variant"]}, metric)
        if other.height == 0 or own.height == 0:
            continue
        j = (
            other.group_by("task").agg(pl.col("value").mean().alias("a"))
            .join(own.group_by("task").agg(pl.col("value").mean().alias("b")), on="task")
            .sort("task")
        )
        if j.height == 0:
            continue
        st = paired_stats(j["a"].to_numpy(), j["b"].to_numpy(), n_resamples=n_resamples, seed=seed)
        rows.append({
            **k, "metric": metric, "n_tasks": st.n, "n_seeds": int(other["seed"].n_unique()),
            "difference": st.difference, "ci_low": st.ci_low, "ci_high": st.ci_high,
        })
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(pl.col(pl.Float64).fill_nan(None))


def _ci(r: Mapping[str, Any], lo: str, hi: str) -> str:
    if r[lo] is None or r[hi] is None:
        return ""
    return f" [{r[lo]:+.2f}, {r[hi]:+.2f}]"


def claims_markdown(claims: pl.DataFrame) -> str:
    """The claims table as GitHub-flavoured Markdown (points, 2 decimals), with a legend and the paper's sources.

    Columns: comparison, model, instances per task, a vs b, metric, claim,
    tasks, seeds (a/b), difference a − b with its 95 % interval (and the 90 %
    one for equivalence claims), p, Holm-adjusted p, seed spread (sd of a / b),
    verdict, note, the paper's figure.
    """
    head = [
        "comparison", "model", "n/task", "a vs b", "metric", "claim", "tasks", "seeds",
        "difference a − b [95% CI]", "p", "p (Holm)", "seed sd a / b", "verdict", "note", "paper",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in claims.iter_rows(named=True):
        claim = r["claim"] + (f" ±{r['margin']:g}" if r["claim"] == "equivalent" else (f" by {r['margin']:g}" if r["margin"] else ""))
        if r["verdict"] == NOT_RUN:
            diff = "-"
        else:
            diff = _fmt(r["difference"], sign=True) + _ci(r, "ci_low", "ci_high")
            if r["claim"] == "equivalent" and r["ci90_low"] is not None:
                diff += f" (90%:{_ci(r, 'ci90_low', 'ci90_high')})"
        seeds = "-" if r["n_seeds_a"] is None else f"{r['n_seeds_a']}/{r['n_seeds_b']}"
        sd = "-" if r["verdict"] == NOT_RUN else f"{_fmt(r['seed_sd_a'])} / {_fmt(r['seed_sd_b'])}"
        cells = [
            r["comparison"],
            r["model"] or "-",
            str(r["instances_per_task"] or "-"),
            f"{r['a']} vs {r['b']}",
            METRIC_LABELS.get(r["metric"], r["metric"]),
            claim,
            str(r["n_tasks"] or 0),
            seeds,
            diff,
            _fmt_p(r["p_value"]),
            _fmt_p(r["p_holm"]),
            sd,
            f"**{r['verdict']}**",
            (r["note"] or "").replace("|", "/"),
            (r["paper"] or "").replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    legend = (
        "\nDifference: mean over the shared unseen tasks of a − b (points, seeds averaged within a task). "
        "Interval: paired BCa bootstrap over tasks (95 %; equivalence claims use the 90 % interval, i.e. two "
        "one-sided tests at 5 %). p: paired permutation test of no difference over tasks; Holm: adjusted across "
        "every row of this table. Verdict: better/worse supported when the 95 % interval excludes the margin "
        "(default 0) in the claimed direction, contradicted when it lies wholly on the other side; equivalent "
        "supported when the 90 % interval lies inside ±margin, contradicted when wholly outside; otherwise "
        "inconclusive (the note gives the minimum detectable effect and the tasks that would settle it).\n"
    )
    listed = claims.select("comparison", "description", "paper_source").unique("comparison", maintain_order=True)
    if listed.height:
        legend += "\nComparisons:\n\n" + "".join(
            f"- **{r['comparison']}**" + (f": {r['description']}" if r["description"] else "")
            + (f" (the paper's figure: {r['paper_source']})" if r["paper_source"] else "") + "\n"
            for r in listed.iter_rows(named=True)
        )
    return "\n".join(lines) + "\n" + legend
