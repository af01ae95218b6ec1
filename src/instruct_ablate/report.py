"""Summary tables and plots across runs (Kung & Peng 2023, Tables 1-2, Figures 2-4), and the claims table.

Per run (model, training variant, instances per task, seed, evaluation
variant) we report the paper's three headline numbers: exact match on the
classification tasks, ROUGE-L on the generation tasks and ROUGE-L on all
tasks (plus overall exact match), micro-averaged over evaluation instances as
NIv2 does. Seeds are then averaged (mean and standard deviation). The
configured comparisons become verdicts (:mod:`instruct_ablate.claims`) and
the paper's figures are drawn (:mod:`instruct_ablate.figures`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from . import figures
from .claims import claims_markdown, eval_variant_effects, evaluate_claims
from .io import atomic_path, write_table

__all__ = ["summarise", "markdown_table", "plot_summary", "plot_categories", "build_claims", "build_report"]

log = logging.getLogger("instruct_ablate.report")

GROUP = ["model", "train_variant", "instances_per_task", "eval_variant"]
METRICS = {
    "cls_exact_match": "Classification EM",
    "gen_rougeL": "Generation ROUGE-L",
    "rougeL": "Overall ROUGE-L",
    "exact_match": "Overall EM",
    "cls_in_label_space": "Classification outputs in label space (%)",
}
PANELS = ["cls_exact_match", "gen_rougeL", "rougeL", "cls_in_label_space"]
BASELINE_MODEL = "baseline"
BASELINE_STYLE = {"random": ("tab:red", "--"), "majority": ("tab:purple", ":")}


def _weighted(col: str, mask: pl.Expr) -> pl.Expr:
    w = pl.when(mask).then(pl.col("n_instances")).otherwise(0)
    return (pl.col(col) * w).sum() / w.sum()


def summarise(task_metrics: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-run and per-configuration summaries from stacked per-task metrics.

    ``task_metrics`` has the columns of ``metrics/<run>/tasks.parquet``. Returns
    ``(per_run, per_config)``: ``per_run`` has one row per run with
    ``cls_exact_match``, ``gen_rougeL``, ``rougeL``, ``exact_match`` (0..100,
    null where a run has no task of that type), ``n_tasks`` and
    ``n_instances``; ``per_config`` averages seeds (``<metric>`` mean,
    ``<metric>_std``, ``n_seeds``).
    """
    is_cls = pl.col("task_type") == "classification"
    if "in_label_space_normalised" not in task_metrics.columns:
        task_metrics = task_metrics.with_columns(pl.lit(None, dtype=pl.Float64).alias("in_label_space_normalised"))
    per_run = (
        task_metrics.group_by(GROUP + ["seed"])
        .agg(
            _weighted("exact_match", is_cls).alias("cls_exact_match"),
            _weighted("rougeL", ~is_cls).alias("gen_rougeL"),
            _weighted("rougeL", pl.lit(True)).alias("rougeL"),
            _weighted("exact_match", pl.lit(True)).alias("exact_match"),
            _weighted("in_label_space_normalised", is_cls).alias("cls_in_label_space"),
            pl.len().alias("n_tasks"),
            pl.col("n_instances").sum().alias("n_instances"),
        )
        .with_columns(pl.col(m).fill_nan(None) for m in METRICS)
        .sort(GROUP + ["seed"], nulls_last=False)
    )
    per_config = (
        per_run.group_by(GROUP)
        .agg(
            *[pl.col(m).mean().alias(m) for m in METRICS],
            *[pl.col(m).std().alias(f"{m}_std") for m in METRICS],
            pl.col("seed").n_unique().alias("n_seeds"),
            pl.col("n_tasks").first(),
        )
        .sort(["model", "instances_per_task", "train_variant", "eval_variant"], nulls_last=False)
    )
    return per_run, per_config


def _label(row: dict) -> str:
    if row["model"] == BASELINE_MODEL:
        return f"{row['train_variant']} baseline"
    if row["train_variant"] == "untuned":
        return f"untuned\n(eval: {row['eval_variant']})"
    base = f"{row['train_variant']}"
    if row["eval_variant"] != row["train_variant"]:
        base += f"\n(eval: {row['eval_variant']})"
    if row["instances_per_task"]:
        base += f"\nn={row['instances_per_task']}"
    return base


def markdown_table(per_config: pl.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``per_config`` (mean ± std over seeds, 2 decimals)."""
    head = ["model", "training variant", "instances/task", "evaluation variant", "seeds", "tasks"] + list(
        METRICS.values()
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in per_config.iter_rows(named=True):
        cells = [
            r["model"],
            r["train_variant"],
            str(r["instances_per_task"] or "-"),
            r["eval_variant"],
            str(r["n_seeds"]),
            str(r["n_tasks"]),
        ]
        for m in METRICS:
            v, s = r[m], r[f"{m}_std"]
            cells.append("-" if v is None else (f"{v:.2f}" if s is None else f"{v:.2f} ± {s:.2f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _random_expected_line(expected: pl.DataFrame | None) -> str:
    if expected is None or expected.height == 0:
        return ""
    n = expected["n_instances"].sum()
    micro = (expected["expected_exact_match"] * expected["n_instances"]).sum() / n
    return (
        f"\nRandom baseline, analytic expected classification EM (uniform over each task's label space): "
        f"{micro:.2f}, micro-averaged over {n} instances of {expected.height} classification tasks.\n"
    )


def plot_summary(per_config: pl.DataFrame, path: str | Path, title: str = "") -> None:
    """Bar chart, one panel per headline metric, one bar per configuration, error bars over seeds.

    The untuned baseline is drawn grey and hatched; configurations evaluated
    with a variant other than their training variant are outlined; the
    model-free baselines (random over the label space, majority label) are
    horizontal lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = per_config.filter(pl.col("model") == BASELINE_MODEL).to_dicts()
    per_config = per_config.filter(pl.col("model") != BASELINE_MODEL)
    models = per_config["model"].unique(maintain_order=True).to_list() or ["(no model)"]
    panels = PANELS
    fig, axes = plt.subplots(
        len(models), len(panels), figsize=(4.6 * len(panels), 3.6 * len(models) + 0.8), squeeze=False
    )
    cmap = plt.get_cmap("tab10")
    for mi, model in enumerate(models):
        rows = per_config.filter(pl.col("model") == model).to_dicts()
        labels = [_label(r) for r in rows]
        variants = sorted({r["train_variant"] for r in rows if r["train_variant"] != "untuned"})
        for pi, metric in enumerate(panels):
            ax = axes[mi][pi]
            for x, r in enumerate(rows):
                v = r[metric]
                if v is None:
                    continue
                untuned = r["train_variant"] == "untuned"
                color = "0.7" if untuned else cmap(variants.index(r["train_variant"]) % 10)
                ax.bar(
                    x,
                    v,
                    yerr=r[f"{metric}_std"] or 0.0,
                    color=color,
                    hatch="//" if untuned else None,
                    edgecolor="black" if r["eval_variant"] != r["train_variant"] and not untuned else color,
                    linewidth=1.5,
                    capsize=3,
                )
                ax.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
            for b in baselines:
                if b[metric] is not None and metric != "gen_rougeL":
                    color, style = BASELINE_STYLE.get(b["train_variant"], ("black", "-."))
                    ax.axhline(b[metric], color=color, linestyle=style, linewidth=1.2, label=f"{b['train_variant']} baseline")
            if baselines and mi == 0 and pi == 0:
                ax.legend(fontsize=7, loc="upper right")
            top = max(
                [r[metric] + (r[f"{metric}_std"] or 0.0) for r in rows + baselines if r[metric] is not None] + [0.0]
            )
            ax.set_ylim(0, max(1.0, top * 1.15))
            ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel(METRICS[metric])
            ax.set_title(f"{model}: {METRICS[metric]}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


def plot_categories(task_metrics: pl.DataFrame, path: str | Path, metric: str = "rougeL") -> None:
    """Heat map of ``metric`` per configuration (rows) and task category (columns), seeds averaged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = pl.col("n_instances")
    per_cat = (
        task_metrics.group_by(GROUP + ["category"])
        .agg(((pl.col(metric) * w).sum() / w.sum()).alias(metric))
        .sort(GROUP + ["category"], nulls_last=False)
    )
    configs = per_cat.select(GROUP).unique(maintain_order=True).to_dicts()
    cats = sorted(per_cat["category"].unique().to_list())
    grid = [[float("nan")] * len(cats) for _ in configs]
    for r in per_cat.iter_rows(named=True):
        i = configs.index({k: r[k] for k in GROUP})
        grid[i][cats.index(r["category"])] = r[metric]
    fig, ax = plt.subplots(figsize=(1.0 * len(cats) + 3.5, 0.45 * len(configs) + 2.2))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white" if v < 60 else "black")
    ax.set_xticks(range(len(cats)), cats, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(
        range(len(configs)), [f"{c['model']}: " + _label(c).replace("\n", " ") for c in configs], fontsize=7
    )
    fig.colorbar(im, ax=ax, label=METRICS.get(metric, metric))
    ax.set_title(f"{METRICS.get(metric, metric)} per task category", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


def build_claims(
    task_metrics: pl.DataFrame,
    out_dir: str | Path,
    comparisons: Mapping[str, Mapping[str, Any]] | None,
    study: Mapping[str, Any] | None = None,
    per_config: pl.DataFrame | None = None,
    title: str = "",
    seed: int = 0,
    n_resamples: int = 9999,
) -> pl.DataFrame:
    """Write the claims table and the paper's figures under ``out_dir``; return the claims table.

    ``task_metrics``: the stacked per-run ``tasks.parquet`` tables;
    ``comparisons``: the config's ``comparisons:`` mapping
    (:func:`instruct_ablate.claims.evaluate_claims`, ``study``, ``seed`` and
    ``n_resamples`` go there too); ``per_config``: :func:`summarise`'s second
    table (computed when None). Writes ``claims.csv``, ``claims.md``,
    ``task_differences.csv``, ``eval_variant_effects.csv``, ``curves.png``,
    ``eval_variant_effects.png``, ``forest.png`` and ``task_shifts.png``.
    Raises ``ValueError`` for a malformed comparison.
    """
    out_dir = Path(out_dir)
    if per_config is None:
        per_config = summarise(task_metrics)[1]
    claims, task_diffs = evaluate_claims(task_metrics, comparisons, study, seed=seed, n_resamples=n_resamples)
    effects = pl.concat(
        [eval_variant_effects(task_metrics, m, seed=seed, n_resamples=n_resamples) for m in ("rougeL", "cls_exact_match")]
    )
    write_table(claims, out_dir / "claims.csv")
    write_table(task_diffs, out_dir / "task_differences.csv")
    write_table(effects, out_dir / "eval_variant_effects.csv")
    md = claims_markdown(claims) if claims.height else "No comparison is configured (`comparisons:` in config.yaml).\n"
    with atomic_path(out_dir / "claims.md") as tmp:
        tmp.write_text((f"# {title}: claims\n\n" if title else "# Claims\n\n") + md)
    figures.plot_curves(per_config, out_dir / "curves.png", title=title)
    figures.plot_eval_variant_effects(effects, out_dir / "eval_variant_effects.png")
    figures.plot_forest(claims, out_dir / "forest.png")
    figures.plot_task_shifts(task_diffs, out_dir / "task_shifts.png")
    counts = claims.group_by("verdict").len().sort("verdict")
    log.info(
        "claims: %d rows (%s)\n%s",
        claims.height,
        ", ".join(f"{r['len']} {r['verdict']}" for r in counts.iter_rows(named=True)) or "none",
        md,
    )
    return claims


def _provenance_lines(provenance: Mapping[str, Any] | None) -> str:
    if not provenance:
        return ""
    return "\n\nProvenance: " + ", ".join(f"{k} {v}" for k, v in provenance.items()) + "\n"


def build_report(
    task_metric_files: Sequence[str | Path],
    out_dir: str | Path,
    title: str = "",
    random_expected: pl.DataFrame | None = None,
    comparisons: Mapping[str, Mapping[str, Any]] | None = None,
    study: Mapping[str, Any] | None = None,
    seed: int = 0,
    n_resamples: int = 9999,
    provenance: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Stack the runs' ``tasks.parquet`` files and write the report under ``out_dir``.

    ``provenance`` (:func:`instruct_ablate.provenance.describe`) is written to
    ``provenance.csv`` (key, value) and as the last lines of ``summary.md``.

    Writes ``runs.csv`` (one row per run), ``summary.csv`` and ``summary.md``
    (seeds averaged), ``tasks.csv`` (every run × task), ``scores.png`` and
    ``categories.png``, and the claims table and figures of
    :func:`build_claims` (``comparisons``, ``study``, ``seed``,
    ``n_resamples``). ``random_expected`` (from
    :func:`instruct_ablate.baselines.random_expected_exact_match`) adds the
    random baseline's analytic expected exact match to ``summary.md``. Returns the per-configuration summary. Raises
    ``ValueError`` if no file is given.
    """
    if not task_metric_files:
        raise ValueError("report: no metrics files given")
    tm = pl.concat([pl.read_parquet(f) for f in task_metric_files], how="vertical_relaxed")
    per_run, per_config = summarise(tm)
    out_dir = Path(out_dir)
    write_table(per_run, out_dir / "runs.csv")
    write_table(per_config, out_dir / "summary.csv")
    write_table(tm.sort(GROUP + ["seed", "task"], nulls_last=False), out_dir / "tasks.csv")
    md = markdown_table(per_config)
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text(
            (f"# {title}\n\n" if title else "")
            + "Exact match (EM) and ROUGE-L ×100, NIv2 definitions, micro-averaged over evaluation instances; "
            "mean ± standard deviation over seeds.\n\n"
            + md
            + _random_expected_line(random_expected)
            + _provenance_lines(provenance)
        )
    write_table(pl.DataFrame({"key": list((provenance or {}).keys()),
                              "value": [str(v) for v in (provenance or {}).values()]},
                             schema={"key": pl.String, "value": pl.String}), out_dir / "provenance.csv")
    plot_summary(per_config, out_dir / "scores.png", title=title)
    plot_categories(tm, out_dir / "categories.png")
    build_claims(tm, out_dir, comparisons, study, per_config, title=title, seed=seed, n_resamples=n_resamples)
    log.info("report written to %s\n%s", out_dir, md)
    return per_config
