"""The paper's figures and the claims' figures (matplotlib, Agg backend; PNG files).

* :func:`plot_curves`: the paper's main figure (Kung & Peng 2023):
  classification exact match and generation ROUGE-L against training instances
  per task (log x axis), one line per training variant with a band of ±1
  standard deviation over seeds, the untuned model and the random and majority
  baselines as horizontal lines.
* :func:`plot_eval_variant_effects`: the test-time effect of changing the
  instructions (delusive demonstrations shown to a model trained on correct
  ones), per training variant and size, with 95 % intervals over tasks.
* :func:`plot_forest`: every comparison's difference and interval beside its
  margin, coloured by verdict, with the paper's figure where known.
* :func:`plot_task_shifts`: the tasks whose score moves most between the two
  sides of the comparisons (per-task differences), so one sees where
  instructions matter.

Every function draws something for any input, a single-size single-seed run
included, and says so on the figure ("1 seed: no band", points instead of
lines for a single size, "no runs" when there is nothing to draw).
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from .claims import METRIC_LABELS as LABELS
from .io import atomic_path

__all__ = ["plot_curves", "plot_eval_variant_effects", "plot_forest", "plot_task_shifts"]

BASELINE_MODEL = "baseline"
UNTUNED = "untuned"
CURVE_PANELS = {"cls_exact_match": "Classification EM", "gen_rougeL": "Generation ROUGE-L"}
BASELINE_STYLE = {"random": ("tab:red", "--"), "majority": ("tab:purple", ":")}
VERDICT_COLOURS = {
    "supported": "tab:green",
    "contradicted": "tab:red",
    "inconclusive": "0.45",
    "not run": "0.75",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


def _empty(path: str | Path, title: str, message: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, wrap=True, transform=ax.transAxes)
    _save(fig, path)


def plot_curves(per_config: pl.DataFrame, path: str | Path, title: str = "") -> None:
    """Metric against instances per task, one line per training variant (the paper's main figure).

    ``per_config`` is the per-configuration summary of
    :func:`instruct_ablate.report.summarise` (``<metric>`` mean and
    ``<metric>_std`` over seeds, points 0..100; ``n_seeds``). One row of panels
    per model, panels classification EM and generation ROUGE-L; x is
    ``instances_per_task`` on a log scale. Only runs evaluated with their own
    training variant are lines; the untuned model (grey, one line per
    evaluation variant) and the baselines (classification only: generation
    ROUGE-L is 0 by construction) are horizontal lines. The band is ±1 sd over
    seeds; a single seed gets none, a single size gets points, both said on the
    panel. Writes a PNG to ``path``.
    """
    plt = _plt()
    models = [m for m in per_config["model"].unique(maintain_order=True).to_list() if m != BASELINE_MODEL]
    if not models:
        _empty(path, title or "Scores against instances per task", "no model runs in this study")
        return
    baselines = per_config.filter(pl.col("model") == BASELINE_MODEL).to_dicts()
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 3.8 * len(models) + 0.6), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for mi, model in enumerate(models):
        rows = per_config.filter(pl.col("model") == model)
        tuned = rows.filter((pl.col("train_variant") != UNTUNED) & (pl.col("eval_variant") == pl.col("train_variant")))
        untuned = rows.filter(pl.col("train_variant") == UNTUNED).to_dicts()
        variants = tuned["train_variant"].unique(maintain_order=True).to_list()
        sizes = sorted(tuned["instances_per_task"].unique().to_list())
        max_seeds = int(tuned["n_seeds"].max() or 0) if tuned.height else 0
        for pi, (metric, label) in enumerate(CURVE_PANELS.items()):
            ax = axes[mi][pi]
            for vi, v in enumerate(variants):
                r = tuned.filter(pl.col("train_variant") == v).sort("instances_per_task").drop_nulls(metric)
                if r.height == 0:
                    continue
                x, y = r["instances_per_task"].to_list(), r[metric].to_list()
                sd = [s or 0.0 for s in r[f"{metric}_std"].to_list()]
                colour = cmap(vi % 10)
                ax.plot(x, y, marker="o", linestyle="-" if len(x) > 1 else "none", color=colour, label=v)
                if max(r["n_seeds"].to_list()) > 1:
                    lo = [a - b for a, b in zip(y, sd)]
                    hi = [a + b for a, b in zip(y, sd)]
                    if len(x) > 1:
                        ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0)
                    else:
                        ax.errorbar(x, y, yerr=sd, color=colour, capsize=4, linestyle="none")
            for u in untuned:
                if u[metric] is not None:
                    ax.axhline(u[metric], color="0.5", linestyle="-.", linewidth=1.2, label=f"untuned (eval {u['eval_variant']})")
            if metric != "gen_rougeL":
                for b in baselines:
                    if b[metric] is not None:
                        colour, style = BASELINE_STYLE.get(b["train_variant"], ("black", "-."))
                        ax.axhline(b[metric], color=colour, linestyle=style, linewidth=1.2, label=f"{b['train_variant']} baseline")
            ax.set_xscale("log")
            if sizes:
                ax.set_xticks(sizes, [str(s) for s in sizes])
                ax.minorticks_off()
                if len(sizes) == 1:
                    ax.set_xlim(sizes[0] / 2, sizes[0] * 2)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("training instances per task (log scale)")
            ax.set_ylabel(label)
            notes = []
            if len(sizes) == 1:
                notes.append("1 size: points")
            if max_seeds == 1:
                notes.append("1 seed: no band")
            elif max_seeds > 1:
                notes.append(f"band: ±1 sd over {max_seeds} seeds")
            if not sizes:
                notes.append("no tuned runs")
            ax.set_title(f"{model}: {label}" + (f"  ({'; '.join(notes)})" if notes else ""), fontsize=9)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="best")
            else:
                ax.text(0.5, 0.5, f"no {label} values\n(no task of that type)", ha="center", va="center",
                        fontsize=8, color="0.4", transform=ax.transAxes)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_eval_variant_effects(effects: pl.DataFrame, path: str | Path, title: str = "") -> None:
    """Bar chart of the test-time effect of other evaluation variants (e.g. delusive demonstrations).

    ``effects`` is the stack of :func:`instruct_ablate.claims.eval_variant_effects`
    over metrics (columns ``model``, ``train_variant``, ``eval_variant``,
    ``instances_per_task``, ``metric``, ``difference``, ``ci_low``,
    ``ci_high``, ``n_tasks``, ``n_seeds``; points). One panel per model and
    metric; one bar per training variant → evaluation variant and size, with
    its 95 % interval over tasks (none with fewer than 2 tasks). Writes a PNG.
    """
    plt = _plt()
    name = title or "Test-time instruction change: score with the other variant minus the own one"
    if effects.height == 0:
        _empty(path, name, "no run was evaluated with a variant other than its training one\n(evaluation.extra is empty)")
        return
    models = effects["model"].unique(maintain_order=True).to_list()
    metrics = effects["metric"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(models), len(metrics), figsize=(5.2 * len(metrics), 3.6 * len(models) + 0.6), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for mi, model in enumerate(models):
        for ki, metric in enumerate(metrics):
            ax = axes[mi][ki]
            r = effects.filter((pl.col("model") == model) & (pl.col("metric") == metric)).sort(
                ["train_variant", "eval_variant", "instances_per_task"]
            )
            sizes = sorted(r["instances_per_task"].unique().to_list())
            groups = r.select("train_variant", "eval_variant").unique(maintain_order=True).to_dicts()
            width = min(0.5, 0.8 / max(1, len(sizes)))
            for si, n in enumerate(sizes):
                for gi, g in enumerate(groups):
                    row = r.filter(
                        (pl.col("train_variant") == g["train_variant"])
                        & (pl.col("eval_variant") == g["eval_variant"])
                        & (pl.col("instances_per_task") == n)
                    ).to_dicts()
                    if not row:
                        continue
                    row = row[0]
                    x = gi + (si - (len(sizes) - 1) / 2) * width
                    err = None
                    if row["ci_low"] is not None:
                        err = [[row["difference"] - row["ci_low"]], [row["ci_high"] - row["difference"]]]
                    ax.bar(
                        x, row["difference"], width=width * 0.9, yerr=err, capsize=3,
                        color=cmap(si / max(1, len(sizes) - 1) if len(sizes) > 1 else 0.35),
                        label=f"n={n}" if gi == 0 else None,
                    )
                    ax.text(x, 0, f"{row['difference']:+.1f}", ha="center", fontsize=7,
                            va="bottom" if row["difference"] >= 0 else "top",
                            bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1})
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xlim(-0.75, len(groups) - 0.25)
            ax.set_xticks(range(len(groups)), [f"trained {g['train_variant']}\neval {g['eval_variant']}" for g in groups], fontsize=8)
            ax.set_ylabel(f"Δ {LABELS.get(metric, metric)} (points)")
            seeds = int(r["n_seeds"].max() or 0)
            ax.set_title(
                f"{model}: {LABELS.get(metric, metric)} ({int(r['n_tasks'].max() or 0)} tasks, {seeds} seed{'s' if seeds != 1 else ''}; "
                "95% CI over tasks)",
                fontsize=8,
            )
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            if len(sizes) > 1 or mi == ki == 0:
                ax.legend(fontsize=7, title="instances/task", title_fontsize=7)
    fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _row_label(r: dict) -> str:
    n = f", n={r['instances_per_task']}" if r["instances_per_task"] else ""
    return f"{r['comparison']} ({r['model']}{n})\n{r['a']} vs {r['b']}"


def plot_forest(claims: pl.DataFrame, path: str | Path, title: str = "") -> None:
    """Forest plot: one row per comparison row, its difference a − b with the 95 % interval.

    ``claims`` is the table of :func:`instruct_ablate.claims.evaluate_claims`.
    Thin line: 95 % interval; thick line: the 90 % interval of equivalence
    claims; shaded: ±margin of equivalence claims; dotted: the threshold of
    better/worse claims with a margin; dot colour: the verdict; hollow diamond:
    the paper's difference where the config gives one; ``not run`` rows are
    listed without a point. Writes a PNG.
    """
    plt = _plt()
    name = title or "Claims: difference a − b (points) with 95% interval over tasks"
    if claims.height == 0:
        _empty(path, name, "no comparison configured (comparisons: in config.yaml)")
        return
    rows = claims.to_dicts()
    fig, ax = plt.subplots(figsize=(10, 0.62 * len(rows) + 1.6))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        colour = VERDICT_COLOURS.get(r["verdict"], "black")
        if r["claim"] == "equivalent" and r["margin"]:
            ax.fill_between([-r["margin"], r["margin"]], y - 0.4, y + 0.4, color="tab:green", alpha=0.12, linewidth=0)
        elif r["margin"]:
            t = r["margin"] if r["claim"] == "better" else -r["margin"]
            ax.plot([t, t], [y - 0.4, y + 0.4], color="tab:green", linestyle=":", linewidth=1.2)
        if r["verdict"] == "not run" or r["difference"] is None:
            ax.text(0, y, "not run", ha="center", va="center", fontsize=8, color="0.4", style="italic")
            continue
        if r["ci_low"] is not None:
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=colour, linewidth=1.4)
        if r["claim"] == "equivalent" and r["ci90_low"] is not None:
            ax.plot([r["ci90_low"], r["ci90_high"]], [y, y], color=colour, linewidth=4, alpha=0.6)
        ax.plot([r["difference"]], [y], "o", color=colour, markersize=6)
        if r["paper_difference"] is not None:
            ax.plot([r["paper_difference"]], [y], "D", markerfacecolor="none", markeredgecolor="black", markersize=7)
        ax.text(1.01, y, f"{r['verdict']} ({r['n_tasks']} tasks)", transform=ax.get_yaxis_transform(),
                va="center", fontsize=7, color=colour)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [_row_label(r) for r in reversed(rows)], fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("difference a − b (points; shaded: ±margin of equivalence claims; ◇: the paper's figure)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(name, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_task_shifts(task_differences: pl.DataFrame, path: str | Path, top: int = 10, title: str = "") -> None:
    """Per-task differences a − b of each comparison, for the tasks that move most (where instructions matter).

    ``task_differences`` is the second table of
    :func:`instruct_ablate.claims.evaluate_claims` (``comparison``, ``model``,
    ``instances_per_task``, ``metric``, ``task``, ``difference``; points,
    seeds averaged). One panel per comparison: columns are its rows (model ×
    instances per task), rows its ``top`` tasks with the largest absolute
    difference in any column, ordered from the largest gain of ``a`` to the
    largest loss; colour and label: the difference (blue: ``a`` above ``b``;
    red: below; each panel on its own symmetric scale). Writes a PNG.
    """
    plt = _plt()
    name = title or f"Tasks that move most between the two sides of each comparison (a − b, points; top {top} per comparison)"
    if task_differences.height == 0:
        _empty(path, name, "no comparison ran (no per-task differences)")
        return
    td = task_differences.with_columns(
        (
            pl.col("model")
            + pl.when(pl.col("instances_per_task") > 0)
            .then(pl.lit("\nn=") + pl.col("instances_per_task").cast(pl.String))
            .otherwise(pl.lit(""))
        ).alias("column")
    )
    names = td["comparison"].unique(maintain_order=True).to_list()
    panels = []
    for c in names:
        part = td.filter(pl.col("comparison") == c)
        columns = part["column"].unique(maintain_order=True).to_list()
        order = part.group_by("task").agg(
            pl.col("difference").abs().max().alias("m"), pl.col("difference").mean().alias("d")
        ).sort(["m", "task"], descending=[True, False]).head(top).sort(["d", "task"], descending=[True, False])
        tasks = order["task"].to_list()
        grid = [[math.nan] * len(columns) for _ in tasks]
        for r in part.filter(pl.col("task").is_in(tasks)).iter_rows(named=True):
            grid[tasks.index(r["task"])][columns.index(r["column"])] = r["difference"]
        panels.append((c, part["metric"][0], columns, tasks, grid))
    width = 6.5 + 0.8 * max(len(p[2]) for p in panels)
    heights = [0.3 * len(p[3]) + 1.3 for p in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(width, sum(heights) + 0.8), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, (c, metric, columns, tasks, grid) in zip(axes[:, 0], panels):
        lim = max([abs(v) for row in grid for v in row if v == v] + [1.0])
        im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v == v:
                    ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_xticks(range(len(columns)), columns, fontsize=7)
        ax.set_yticks(range(len(tasks)), [t if len(t) <= 56 else t[:53] + "…" for t in tasks], fontsize=7)
        ax.set_title(f"{c}: {LABELS.get(metric, metric)}", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.suptitle(name, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (sum(heights) + 0.8)))
    _save(fig, path)
