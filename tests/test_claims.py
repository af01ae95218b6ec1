"""Claims as verdicts: paired statistics over tasks on synthetic per-task metrics with a known truth."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from instruct_ablate import claims as C
from instruct_ablate.claims import (
    Comparison,
    claims_markdown,
    eval_variant_effects,
    evaluate_claims,
    holm,
    min_detectable_effect,
    paired_stats,
    tasks_needed,
    verdict,
)

N_RESAMPLES = 1999  # enough for stable verdicts on these clear-cut cases, fast


def _pairs(n: int, shift: float, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-task scores b (spread over 10..90) and a = b + shift + noise (points)."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(10, 90, n)
    return b + shift + rng.normal(0, noise, n), b


def _verdict(a, b, claim, margin=0.0, seed=0):
    st = paired_stats(a, b, n_resamples=N_RESAMPLES, seed=seed)
    return verdict(claim, margin, (st.ci_low, st.ci_high), (st.ci90_low, st.ci90_high)), st


# --------------------------------------------------------------------------- known truth


def test_a_real_difference_is_found_better():
    a, b = _pairs(30, shift=5.0, noise=1.0)
    v, st = _verdict(a, b, "better")
    assert v == "supported"
    assert st.ci_method == "BCa" and 4.0 < st.ci_low < st.difference < st.ci_high < 6.0
    assert st.p_value <= 2 / (N_RESAMPLES + 1)  # the smallest p the permutation test can give
    assert _verdict(a, b, "worse")[0] == "contradicted"


def test_reversed_data_contradicts_the_claim():
    a, b = _pairs(30, shift=-5.0, noise=1.0)
    assert _verdict(a, b, "better")[0] == "contradicted"
    assert _verdict(a, b, "worse")[0] == "supported"
    assert _verdict(a, b, "equivalent", margin=1.0)[0] == "contradicted"


def test_zero_difference_with_a_tight_spread_is_equivalent():
    a, b = _pairs(30, shift=0.0, noise=0.3)
    v, st = _verdict(a, b, "equivalent", margin=1.0)
    assert v == "supported"
    assert st.ci_low <= st.ci90_low <= st.ci90_high <= st.ci_high
    # better/worse cannot be shown on a null difference
    assert _verdict(a, b, "better")[0] == "inconclusive"


def test_a_noisy_small_sample_is_inconclusive_and_says_what_more_runs_would_buy():
    a, b = _pairs(5, shift=1.0, noise=10.0, seed=3)
    v, st = _verdict(a, b, "better")
    assert v == "inconclusive"
    mde = min_detectable_effect(st.sd, st.n)
    assert mde > abs(st.difference)  # the sample cannot detect what it saw
    assert mde == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * st.sd / math.sqrt(5))
    need = tasks_needed("better", st.difference, st.sd)
    assert need > 5
    assert _verdict(a, b, "equivalent", margin=1.0)[0] == "inconclusive"


def test_the_bootstrap_is_reproducible_under_its_seed():
    a, b = _pairs(12, shift=2.0, noise=3.0)
    s1 = paired_stats(a, b, n_resamples=N_RESAMPLES, seed=11)
    s2 = paired_stats(a, b, n_resamples=N_RESAMPLES, seed=11)
    s3 = paired_stats(a, b, n_resamples=N_RESAMPLES, seed=12)
    assert s1 == s2
    assert (s1.ci_low, s1.ci_high) != (s3.ci_low, s3.ci_high)  # the seed is what fixes the resamples
    assert s1.difference == s3.difference


def test_paired_resampling_keeps_the_pairs_together():
    """Tasks differ hugely (10..90) but the difference is tight: only a paired bootstrap sees that."""
    a, b = _pairs(20, shift=1.0, noise=0.2)
    st = paired_stats(a, b, n_resamples=N_RESAMPLES, seed=0)
    assert st.ci_high - st.ci_low < 0.5
    unpaired = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), n_resamples=999,
                               method="percentile", **C._rng(stats.bootstrap, 0))
    assert unpaired.confidence_interval.high - unpaired.confidence_interval.low > 10 * (st.ci_high - st.ci_low)


def test_the_permutation_test_is_exact_for_few_tasks():
    # 4 tasks, all differences positive: the exact two-sided p is 2/16 (the observed sign pattern and its mirror)
    st = paired_stats([5.0, 6, 7, 8], [1.0, 2, 3, 4.5], n_resamples=9999, seed=0)
    assert st.p_value == pytest.approx(2 / 16)


# --------------------------------------------------------------------------- degenerate cases


def test_one_task_has_no_interval_and_is_inconclusive():
    st = paired_stats([50.0], [40.0])
    assert st.n == 1 and st.difference == 10.0 and st.ci_method == "none"
    assert math.isnan(st.ci_low) and math.isnan(st.p_value) and math.isnan(st.sd)
    assert verdict("better", 0, (st.ci_low, st.ci_high), (st.ci90_low, st.ci90_high)) == "inconclusive"
    assert math.isnan(min_detectable_effect(st.sd, st.n))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_equal_differences_give_the_degenerate_interval():
    a, b = np.array([3.0, 5.0, 9.0]), np.array([1.0, 3.0, 7.0])  # every difference is 2
    # scipy's BCa is undefined here (NaN): the reason for the fallback
    with pytest.warns(stats.DegenerateDataWarning):
        bca = stats.bootstrap((a, b), C._mean_diff, paired=True, vectorized=True, **C._rng(stats.bootstrap, 0))
    assert math.isnan(bca.confidence_interval.low)
    st = paired_stats(a, b, n_resamples=999)
    assert st.ci_method == "degenerate" and (st.ci_low, st.ci_high) == (2.0, 2.0) and st.sd == 0.0
    assert verdict("better", 0, (st.ci_low, st.ci_high), (st.ci90_low, st.ci90_high)) == "supported"
    assert math.isnan(min_detectable_effect(st.sd, st.n))  # no spread: nothing to say about power
    zero = paired_stats([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], n_resamples=999)
    assert zero.ci_method == "degenerate" and zero.p_value == 1.0 and zero.ci_low == 0.0


def test_bca_nan_falls_back_to_the_percentile_interval(monkeypatch):
    real = stats.bootstrap

    def nan_bca(*args, **kw):
        res = real(*args, **kw)
        if kw.get("method") == "BCa":
            res.confidence_interval = type(res.confidence_interval)(float("nan"), float("nan"))
        return res

    monkeypatch.setattr(C.stats, "bootstrap", nan_bca)
    a, b = _pairs(15, shift=3.0, noise=1.0)
    st = paired_stats(a, b, n_resamples=999, seed=1)
    assert st.ci_method == "percentile" and st.ci_low < st.difference < st.ci_high


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="equal length"):
        paired_stats([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no shared task"):
        paired_stats([], [])
    with pytest.raises(ValueError, match="finite"):
        paired_stats([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown claim"):
        verdict("similar", 1.0, (0, 1), (0, 1))


# --------------------------------------------------------------------------- verdict rules, Holm, power


@pytest.mark.parametrize(
    "claim, margin, ci95, ci90, expected",
    [
        ("better", 0, (0.1, 2.0), (0.2, 1.9), "supported"),
        ("better", 0, (-0.1, 2.0), (0.2, 1.9), "inconclusive"),
        ("better", 0, (-3.0, -0.1), (-2.9, -0.2), "contradicted"),
        ("better", 1.0, (0.5, 2.0), (0.6, 1.9), "inconclusive"),  # above 0 but not by the margin
        ("better", 1.0, (0.2, 0.8), (0.3, 0.7), "contradicted"),  # surely less than the margin
        ("worse", 0, (-2.0, -0.1), (-1.9, -0.2), "supported"),
        ("worse", 0, (0.1, 2.0), (0.2, 1.9), "contradicted"),
        ("equivalent", 1.0, (-1.2, 0.9), (-0.9, 0.8), "supported"),  # the 90 % interval decides
        ("equivalent", 1.0, (-1.2, 0.9), (-1.1, 0.8), "inconclusive"),
        ("equivalent", 1.0, (1.0, 3.0), (1.2, 2.8), "contradicted"),
        ("equivalent", 1.0, (-3.0, -1.5), (-2.8, -1.6), "contradicted"),
        ("equivalent", 1.0, (float("nan"),) * 2, (float("nan"),) * 2, "inconclusive"),
    ],
)
def test_verdict_rules(claim, margin, ci95, ci90, expected):
    assert verdict(claim, margin, ci95, ci90) == expected


def test_holm_adjustment():
    adj = holm([0.01, 0.04, 0.03, float("nan")])
    assert adj[:3] == pytest.approx([0.03, 0.06, 0.06])  # 3*0.01; max(2*0.03, 3*0.01); max(1*0.04, 0.06)
    assert math.isnan(adj[3])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_tasks_needed_for_equivalence():
    # sd 3, observed 0, margin 1: ((1.645 + 0.842) * 3 / 1)^2 = 55.6 -> 56 tasks
    assert tasks_needed("equivalent", 0.0, 3.0, margin=1.0) == 56
    assert math.isnan(tasks_needed("equivalent", 1.5, 3.0, margin=1.0))  # observed beyond the margin


# --------------------------------------------------------------------------- the claims table


def _task_metrics(spec: dict, tasks: int = 12, seeds=(1, 2), sizes=(10, 20), models=("m1",), seed=0) -> pl.DataFrame:
    """Stacked tasks.parquet-like rows: spec maps (train_variant, eval_variant) to a (shift, noise) in points."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(20, 80, tasks)
    rows = []

    def add(model, tv, n, s, ev, values):
        for i, v in enumerate(values):
            rows.append(
                {
                    "model": model, "train_variant": tv, "instances_per_task": n, "seed": s, "eval_variant": ev,
                    "task": f"task{i:02d}", "category": "c", "task_type": "classification" if i % 2 else "generation",
                    "n_instances": 100, "exact_match": float(v), "rougeL": float(v),
                    "in_label_space": 100.0 if i % 2 else None, "in_label_space_normalised": 100.0 if i % 2 else None,
                }
            )

    for model in models:
        for (tv, ev), (shift, noise) in spec.items():
            if tv == "untuned":
                add(model, tv, 0, 0, ev, base + shift + rng.normal(0, noise, tasks))
                continue
            for n in sizes:
                for s in seeds:
                    add(model, tv, n, s, ev, base + shift + rng.normal(0, noise, tasks))
    add("baseline", "random", 0, 42, "-", base - 10)
    return pl.DataFrame(rows)


COMPARISONS = {
    "simplified_vs_original": {
        "a": {"train_variant": "simplified"}, "b": {"train_variant": "original"},
        "metric": "rougeL", "claim": "equivalent", "margin": 2.0,
    },
    "delusive_at_test_time": {
        "a": {"train_variant": "original", "eval_variant": "delusive"}, "b": {"train_variant": "original"},
        "metric": "rougeL", "claim": "worse",
        "paper": {"source": "notebook cell 11", "note": "-0.3 to -6"},
    },
    "no_definition_vs_original": {
        "a": {"train_variant": "no_definition"}, "b": {"train_variant": "original"},
        "metric": "rougeL", "claim": "worse",
    },
    "tuned_vs_untuned": {
        "a": {"train_variant": "original"}, "b": {"train_variant": "untuned"},
        "metric": "cls_exact_match", "claim": "better",
        "paper": {"source": "abstract", "values": [{"a": 43.0, "b": 30.0}]},
    },
    "tuned_vs_random": {
        "a": {"train_variant": "original", "instances_per_task": 10},
        "b": {"model": "baseline", "train_variant": "random"},
        "metric": "cls_exact_match", "claim": "better",
        "paper": {"values": [{"instances_per_task": 10, "a": 43.0, "b": 42.6}]},
    },
}
SPEC = {
    ("original", "original"): (0.0, 0.5),
    ("simplified", "simplified"): (0.0, 0.5),
    ("original", "delusive"): (-5.0, 0.5),
    ("untuned", "original"): (-15.0, 0.5),
}


def test_claims_table_from_synthetic_runs():
    tm = _task_metrics(SPEC, models=("m1", "m2"))
    study = {"models": ["m1", "m2"], "instances_per_task": [10, 20], "untuned_eval": "original"}
    table, diffs = evaluate_claims(tm, COMPARISONS, study, seed=5, n_resamples=N_RESAMPLES)
    assert set(C.CLAIM_COLUMNS) == set(table.columns)
    # one row per comparison x model x size (model omitted -> every model; size omitted -> every size)
    counts = dict(table.group_by("comparison").len().iter_rows())
    assert counts == {
        "simplified_vs_original": 4, "delusive_at_test_time": 4, "no_definition_vs_original": 4,
        "tuned_vs_untuned": 4, "tuned_vs_random": 2,
    }
    by = {(r["comparison"], r["model"], r["instances_per_task"]): r for r in table.iter_rows(named=True)}
    assert by[("simplified_vs_original", "m1", 10)]["verdict"] == "supported"
    assert by[("delusive_at_test_time", "m2", 20)]["verdict"] == "supported"
    assert by[("delusive_at_test_time", "m2", 20)]["difference"] == pytest.approx(-5.0, abs=0.6)
    assert by[("tuned_vs_untuned", "m1", 20)]["verdict"] == "supported"
    # a variant that was not trained: reported, not a crash
    nr = by[("no_definition_vs_original", "m1", 10)]
    assert nr["verdict"] == "not run" and "no_definition" in nr["note"] and nr["p_value"] is None
    # classification metric: only the classification tasks (every other task)
    tv = by[("tuned_vs_untuned", "m1", 10)]
    assert tv["n_tasks"] == 6 and tv["n_seeds_a"] == 2 and tv["n_seeds_b"] == 1
    assert tv["seed_sd_a"] is not None and tv["seed_sd_b"] is None  # the untuned model has no seeds
    assert tv["paper_difference"] == pytest.approx(13.0) and "43.00 vs 30.00" in tv["paper"]
    # the baseline has no seeds: one constant per task
    rb = by[("tuned_vs_random", "m1", 10)]
    assert rb["b"] == "random baseline" and rb["n_seeds_b"] == 1
    assert rb["paper_difference"] == pytest.approx(0.4)
    # Holm over every row that has a p-value
    ran = table.filter(pl.col("p_value").is_not_null())
    assert (ran["p_holm"] >= ran["p_value"]).all()
    assert ran["p_holm"].to_list() == pytest.approx(holm(ran["p_value"].to_numpy()).tolist())
    # the per-task differences behind each row
    d = diffs.filter((pl.col("comparison") == "delusive_at_test_time") & (pl.col("model") == "m1")
                     & (pl.col("instances_per_task") == 10))
    assert d.height == 12 and d["difference"].mean() == pytest.approx(by[("delusive_at_test_time", "m1", 10)]["difference"])
    md = claims_markdown(table)
    assert "| simplified_vs_original | m1 | 10 |" in md and "**not run**" in md and "notebook cell 11" in md


def test_the_same_seed_gives_the_same_table():
    tm = _task_metrics(SPEC)
    t1, _ = evaluate_claims(tm, COMPARISONS, seed=3, n_resamples=499)
    t2, _ = evaluate_claims(tm, COMPARISONS, seed=3, n_resamples=499)
    assert t1.equals(t2)


def test_inconclusive_rows_say_so_in_the_table():
    same = {("original", "original"): (0.0, 0.0), ("simplified", "simplified"): (0.0, 0.0)}
    tm = _task_metrics(same, tasks=6, seeds=(1,), sizes=(48,))
    noise = pl.DataFrame({"task": [f"task{i:02d}" for i in range(6)], "d": [8.0, -6.0, 5.0, -7.0, 3.0, -1.0]})
    tm = tm.join(noise, on="task").with_columns(
        pl.when(pl.col("train_variant") == "simplified").then(pl.col("rougeL") + pl.col("d")).otherwise(pl.col("rougeL"))
        .alias("rougeL")
    ).drop("d")
    table, _ = evaluate_claims(tm, {"s": COMPARISONS["simplified_vs_original"]}, seed=0, n_resamples=N_RESAMPLES)
    r = table.row(0, named=True)
    assert r["verdict"] == "inconclusive"
    assert "inconclusive at 6 tasks x 1/1 seeds" in r["note"] and "only 6 tasks" in r["note"]
    assert "1 seed" in r["note"]
    assert r["mde"] > 0


def test_a_study_without_comparisons_or_runs():
    tm = _task_metrics(SPEC)
    table, diffs = evaluate_claims(tm, None)
    assert table.height == 0 and diffs.height == 0 and set(table.columns) == set(C.CLAIM_COLUMNS)
    table, _ = evaluate_claims(tm, {"x": {**COMPARISONS["tuned_vs_untuned"], "a": {"model": "absent", "train_variant": "original"}}})
    assert table["verdict"].to_list() == ["not run", "not run"]


def test_bad_comparison_entries_name_the_key():
    base = COMPARISONS["simplified_vs_original"]
    with pytest.raises(ValueError, match=r"comparisons\.x\.metric"):
        Comparison.from_config("x", {**base, "metric": "bleu"})
    with pytest.raises(ValueError, match=r"comparisons\.x\.margin"):
        Comparison.from_config("x", {k: v for k, v in base.items() if k != "margin"})
    with pytest.raises(ValueError, match=r"comparisons\.x\.claim"):
        Comparison.from_config("x", {**base, "claim": "similar"})
    with pytest.raises(ValueError, match=r"comparisons\.x\.b\.train_variant"):
        Comparison.from_config("x", {**base, "b": {"model": "baseline", "train_variant": "original"}})


def test_eval_variant_effects():
    tm = _task_metrics(SPEC)
    eff = eval_variant_effects(tm, "rougeL", n_resamples=N_RESAMPLES)
    assert eff.height == 2  # original -> delusive at n=10 and n=20
    assert set(eff["eval_variant"]) == {"delusive"} and (eff["ci_high"] < 0).all()
    assert eff["difference"].to_list() == pytest.approx([-5.0, -5.0], abs=0.6)
    assert eval_variant_effects(tm.filter(pl.col("eval_variant") != "delusive")).height == 0


def test_too_few_tasks_or_no_spread_carry_no_verdict():
    """Smoke scale: 3 tasks with a clear gap, or both sides 0 on every task, stay inconclusive, said in the note."""
    clear = {("original", "original"): (0.0, 0.1), ("simplified", "simplified"): (-20.0, 0.1)}
    tm = _task_metrics(clear, tasks=3, seeds=(1,), sizes=(4,))
    comparison = {"s": {**COMPARISONS["simplified_vs_original"], "claim": "worse"}}
    r = evaluate_claims(tm, comparison, n_resamples=N_RESAMPLES)[0].row(0, named=True)
    assert r["ci_high"] < 0  # the interval alone would support the claim ...
    assert r["verdict"] == "inconclusive" and "3 shared tasks, fewer than 6: no verdict" in r["note"]  # ... but 3 tasks cannot
    zeros = _task_metrics(clear, tasks=8, seeds=(1,), sizes=(4,)).with_columns(pl.lit(0.0).alias("rougeL"))
    r = evaluate_claims(zeros, {"s": COMPARISONS["simplified_vs_original"]}, n_resamples=N_RESAMPLES)[0].row(0, named=True)
    assert (r["ci_low"], r["ci_high"], r["ci_method"]) == (0.0, 0.0, "degenerate")
    assert r["verdict"] == "inconclusive" and "no spread" in r["note"]


def test_a_comparison_at_the_floor_is_flagged():
    """Two models that both score about 0 are 'equivalent', and the note says why that means little."""
    floor = {("original", "original"): (0.0, 0.0), ("simplified", "simplified"): (0.0, 0.0)}
    tm = _task_metrics(floor, tasks=10, seeds=(1,), sizes=(4,))
    rng = np.random.default_rng(1)
    tm = tm.with_columns(pl.Series("rougeL", rng.uniform(0, 2, tm.height)))
    r = evaluate_claims(tm, {"s": COMPARISONS["simplified_vs_original"]}, n_resamples=N_RESAMPLES)[0].row(0, named=True)
    assert r["verdict"] == "supported" and "at the floor" in r["note"]


def test_a_named_model_is_followed_by_the_other_side():
    tm = _task_metrics(SPEC, models=("m1", "m2"))
    study = {"models": ["m1", "m2"], "instances_per_task": [10, 20], "untuned_eval": "original"}
    spec = {**COMPARISONS["tuned_vs_untuned"], "a": {"model": "m2", "train_variant": "original", "instances_per_task": 20}}
    table, _ = evaluate_claims(tm, {"x": spec}, study, n_resamples=N_RESAMPLES)
    assert table.select("model", "instances_per_task", "a", "b").rows() == [("m2", 20, "original", "untuned")]
