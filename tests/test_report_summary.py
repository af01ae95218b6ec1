"""The headline numbers: report.summarise, micro-averaged over instances per run, then over seeds."""

from __future__ import annotations

import polars as pl
import pytest

from instruct_ablate.report import summarise


def _rows(seed, cls_em, gen_rouge, n_cls=(100, 50), n_gen=(100,), variant="original"):
    """Per-task metrics of one run: classification tasks with EM cls_em[i], generation tasks with ROUGE-L."""
    rows = []
    for i, (em, n) in enumerate(zip(cls_em, n_cls)):
        rows.append({"task": f"c{i}", "task_type": "classification", "exact_match": em, "rougeL": em,
                     "n_instances": n, "in_label_space_normalised": 90.0})
    for i, (rl, n) in enumerate(zip(gen_rouge, n_gen)):
        rows.append({"task": f"g{i}", "task_type": "generation", "exact_match": 0.0, "rougeL": rl,
                     "n_instances": n, "in_label_space_normalised": None})
    df = pl.DataFrame(rows)
    return df.with_columns(pl.lit("m").alias("model"), pl.lit(variant).alias("train_variant"),
                           pl.lit(10).alias("instances_per_task"), pl.lit(seed).alias("seed"),
                           pl.lit(variant).alias("eval_variant"), pl.lit("cat").alias("category"))


def test_runs_are_micro_averaged_over_instances_and_configs_over_seeds():
    tm = pl.concat([_rows(1, [60.0, 30.0], [40.0]), _rows(2, [40.0, 60.0], [20.0])], how="diagonal_relaxed")
    per_run, per_config = summarise(tm)
    assert per_run.height == 2 and per_config.height == 1
    r1 = per_run.filter(pl.col("seed") == 1).row(0, named=True)
    # classification EM, weighted by instances: (60*100 + 30*50) / 150 = 50; generation ROUGE-L 40
    assert r1["cls_exact_match"] == pytest.approx(50.0) and r1["gen_rougeL"] == pytest.approx(40.0)
    # overall ROUGE-L over all 250 instances: (60*100 + 30*50 + 40*100) / 250
    assert r1["rougeL"] == pytest.approx((6000 + 1500 + 4000) / 250)
    assert r1["exact_match"] == pytest.approx((6000 + 1500 + 0) / 250)
    assert r1["n_tasks"] == 3 and r1["n_instances"] == 250
    r2 = per_run.filter(pl.col("seed") == 2).row(0, named=True)
    assert r2["cls_exact_match"] == pytest.approx((4000 + 3000) / 150)
    c = per_config.row(0, named=True)
    assert c["n_seeds"] == 2
    assert c["cls_exact_match"] == pytest.approx((50.0 + 7000 / 150) / 2)
    assert c["cls_exact_match_std"] == pytest.approx(pl.Series([50.0, 7000 / 150]).std())
    assert c["gen_rougeL"] == pytest.approx(30.0) and c["gen_rougeL_std"] == pytest.approx(pl.Series([40.0, 20.0]).std())
    assert c["cls_in_label_space"] == pytest.approx(90.0)


def test_a_run_without_tasks_of_a_type_has_no_number_for_it():
    per_run, per_config = summarise(_rows(1, [50.0], [], n_cls=(10,), n_gen=()))
    assert per_run["gen_rougeL"].to_list() == [None] and per_config["gen_rougeL"].to_list() == [None]
    assert per_config["n_seeds"].to_list() == [1] and per_config["cls_exact_match_std"].to_list() == [None]


def test_configurations_are_kept_apart():
    tm = pl.concat([_rows(1, [80.0], [10.0], n_cls=(10,)), _rows(1, [20.0], [10.0], n_cls=(10,), variant="delusive")],
                   how="diagonal_relaxed")
    _, per_config = summarise(tm)
    got = dict(zip(per_config["train_variant"], per_config["cls_exact_match"]))
    assert got == {"original": pytest.approx(80.0), "delusive": pytest.approx(20.0)}
