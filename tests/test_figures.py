"""The paper's figures and the claims' figures: drawn for any study, labelled for one seed and one size."""

from __future__ import annotations

import polars as pl
import pytest

from instruct_ablate import figures
from instruct_ablate.claims import eval_variant_effects, evaluate_claims
from instruct_ablate.report import build_claims, summarise

from .test_claims import COMPARISONS, SPEC, _task_metrics

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def captured(monkeypatch):
    """The figures' matplotlib objects, captured as they are saved (and still written)."""
    figs = []
    real = figures._save

    def save(fig, path):
        figs.append([(ax.get_title(), [t.get_text() for t in ax.texts], ax.get_xscale()) for ax in fig.axes])
        real(fig, path)

    monkeypatch.setattr(figures, "_save", save)
    return figs


def _titles(fig):
    return " ".join(t for t, _, _ in fig)


def test_every_figure_for_a_sweep_with_seeds(tmp_path, captured):
    tm = _task_metrics(SPEC, sizes=(10, 20, 50), seeds=(1, 2, 3))
    claims = build_claims(tm, tmp_path, COMPARISONS, title="synthetic", n_resamples=499)
    assert claims.height > 0
    for name in ("curves.png", "eval_variant_effects.png", "forest.png", "task_shifts.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
    for name in ("claims.csv", "claims.md", "task_differences.csv", "eval_variant_effects.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    curves, effects, forest, shifts = captured
    assert "band: ±1 sd over 3 seeds" in _titles(curves)
    assert all(scale == "log" for _, _, scale in curves)
    assert "Classification EM" in _titles(curves) and "Generation ROUGE-L" in _titles(curves)
    assert "95% CI over tasks" in _titles(effects)
    assert any("not run" in texts for _, texts, _ in forest)  # no_definition was not trained
    assert "simplified_vs_original" in _titles(shifts)


def test_a_single_size_single_seed_run_is_labelled(tmp_path, captured):
    tm = _task_metrics(SPEC, sizes=(48,), seeds=(1,))
    per_config = summarise(tm)[1]
    figures.plot_curves(per_config, tmp_path / "curves.png")
    titles = _titles(captured[0])
    assert "1 size: points" in titles and "1 seed: no band" in titles
    effects = eval_variant_effects(tm, "rougeL", n_resamples=499)
    figures.plot_eval_variant_effects(effects, tmp_path / "effects.png")
    assert "1 seed" in _titles(captured[1])
    table, diffs = evaluate_claims(tm, COMPARISONS, n_resamples=499)
    figures.plot_forest(table, tmp_path / "forest.png")
    figures.plot_task_shifts(diffs, tmp_path / "shifts.png")
    for name in ("curves.png", "effects.png", "forest.png", "shifts.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


def test_figures_for_nothing_say_so(tmp_path, captured):
    tm = _task_metrics(SPEC).filter(pl.col("model") == "baseline")
    table, diffs = evaluate_claims(tm, {}, study={"models": [], "instances_per_task": [], "untuned_eval": "original"})
    figures.plot_curves(summarise(tm)[1], tmp_path / "a.png")
    figures.plot_eval_variant_effects(eval_variant_effects(tm), tmp_path / "b.png")
    figures.plot_forest(table, tmp_path / "c.png")
    figures.plot_task_shifts(diffs, tmp_path / "d.png")
    messages = [texts for fig in captured for _, texts, _ in fig]
    assert any("no model runs" in " ".join(t) for t in messages)
    assert any("evaluation.extra is empty" in " ".join(t) for t in messages)
    assert any("no comparison configured" in " ".join(t) for t in messages)
    assert any("no comparison ran" in " ".join(t) for t in messages)
    for name in "abcd":
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG
