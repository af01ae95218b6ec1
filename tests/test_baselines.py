"""Model-free baselines, the output-format (label space) analysis and the task audit table."""

from __future__ import annotations

import json

import polars as pl
import pytest

from instruct_ablate.audit import task_audit
from instruct_ablate.baselines import baseline_predictions, random_expected_exact_match
from instruct_ablate.evaluate import evaluate_predictions, label_space_membership
from instruct_ablate.ingest import ingest_split
from instruct_ablate.metrics import score_instances

YN, GEN = "task001_toy_yes_no", "task002_toy_generation"


@pytest.fixture
def test_tables(niv2_factory, niv2_task):
    """Ingest tables of an unseen Yes/No task (12 instances, 6 Yes) and a generation task."""
    root = niv2_factory(test={YN: niv2_task("yesno"), GEN: niv2_task("generation")})
    res = ingest_split(root, "toy", "test", instances_per_task=100)
    return res.tasks, res.instances


def test_random_baseline_guesses_inside_the_label_space_deterministically(test_tables):
    """Random answers come from the label space for classification, are '' for generation, same per seed."""
    tasks, instances = test_tables
    a = baseline_predictions(tasks, instances, "random", seed=1)
    assert a.height == instances.height
    cls = a.filter(pl.col("task") == YN)
    assert set(cls["prediction"]) <= {"Yes", "No"} and cls.height == 12
    assert (a.filter(pl.col("task") == GEN)["prediction"] == "").all()
    assert a.equals(baseline_predictions(tasks, instances, "random", seed=1))
    draws = {tuple(baseline_predictions(tasks, instances, "random", seed=s)["prediction"]) for s in range(5)}
    assert len(draws) > 1  # the seed matters


def test_majority_baseline_answers_the_most_frequent_gold_label(niv2_factory, niv2_task):
    """With 3 of 4 references 'No', the majority baseline answers 'No' everywhere and scores 75 EM."""
    task = niv2_task("yesno")
    task["Instances"] = [
        {"id": f"i{i}", "input": f"x{i}", "output": [lab]} for i, lab in enumerate(["No", "No", "Yes", "No"] * 3)
    ]
    root = niv2_factory(test={YN: task})
    res = ingest_split(root, "toy", "test", instances_per_task=100)
    preds = baseline_predictions(res.tasks, res.instances, "majority", seed=0)
    assert set(preds["prediction"]) == {"No"}
    assert score_instances(preds)["exact_match"].mean() == pytest.approx(75.0)


def test_random_expected_exact_match_is_one_over_the_label_space(test_tables):
    """Uniform guessing over {Yes, No} matches a single reference with probability 1/2: 50 EM."""
    tasks, instances = test_tables
    expected = random_expected_exact_match(tasks, instances)
    assert expected["task"].to_list() == [YN]  # generation tasks have no label space
    row = expected.row(0, named=True)
    assert row["n_labels"] == 2 and row["n_instances"] == 12
    assert row["expected_exact_match"] == pytest.approx(50.0)


def test_sampled_random_baseline_tends_to_the_analytic_expectation(niv2_factory, niv2_task):
    """Over many instances the sampled run's EM is close to the analytic 1/|label space|."""
    task = niv2_task("yesno")
    task["Instances"] = [{"id": f"i{i}", "input": f"x{i}", "output": ["Yes" if i % 3 else "No"]} for i in range(3000)]
    res = ingest_split(niv2_factory(test={YN: task}), "toy", "test", instances_per_task=3000)
    sampled = score_instances(baseline_predictions(res.tasks, res.instances, "random", seed=3))["exact_match"].mean()
    analytic = random_expected_exact_match(res.tasks, res.instances)["expected_exact_match"][0]
    assert analytic == pytest.approx(50.0)
    assert abs(sampled - analytic) < 3.0  # 3000 Bernoulli(1/2) draws: sd ~0.9 EM points


def test_label_space_membership_strict_and_normalised(test_tables):
    """'yes.' is inside the label space only after NIv2 normalisation; generation rows stay null."""
    tasks, instances = test_tables
    preds = pl.DataFrame(
        {
            "task": [YN, YN, YN, GEN],
            "prediction": ["Yes", "yes.", "maybe", "anything"],
        }
    )
    out = label_space_membership(preds, tasks)
    assert out["in_label_space"].to_list() == [100.0, 0.0, 0.0, None]
    assert out["in_label_space_normalised"].to_list() == [100.0, 100.0, 0.0, None]


def test_evaluate_reports_label_space_shares_next_to_exact_match(test_tables, tmp_path):
    """Per-task table carries exact match, ROUGE-L and the two label-space shares."""
    tasks, instances = test_tables
    preds = baseline_predictions(tasks, instances, "majority", seed=0)
    preds = preds.with_columns(
        pl.when((pl.col("task") == YN) & (pl.col("id") == "yn-0")).then(pl.lit("Perhaps")).otherwise(pl.col("prediction"))
        .alias("prediction")
    )
    path = tmp_path / "preds.parquet"
    preds.write_parquet(path)
    run = {"model": "baseline", "train_variant": "majority", "instances_per_task": 0, "seed": 0, "eval_variant": "-"}
    overall = evaluate_predictions(path, tmp_path / "m", run, task_info=tasks)
    t = pl.read_parquet(tmp_path / "m" / "tasks.parquet").filter(pl.col("task") == YN).row(0, named=True)
    assert t["in_label_space"] == pytest.approx(100.0 * 11 / 12)
    assert t["in_label_space_normalised"] == pytest.approx(100.0 * 11 / 12)
    assert json.loads((tmp_path / "m" / "overall.json").read_text())["n_instances"] == overall["n_instances"]


def test_task_audit_lists_every_decision(test_tables):
    """One row per task with its type, evidence, label space and simplified definition."""
    tasks, _ = test_tables
    audit = task_audit(tasks)
    rows = {r["task"]: r for r in audit.iter_rows(named=True)}
    assert rows[YN]["task_type"] == "classification" and rows[YN]["label_space"] == ["Yes", "No"]
    assert rows[YN]["simplified_definition"] == "Output one of: Yes, No."
    assert rows[GEN]["task_type"] == "generation" and rows[GEN]["label_space"] == []
    assert rows[GEN]["simplified_definition"] == "Output a sentence."
    assert "distinct normalised outputs" in rows[YN]["typing_rule"]
