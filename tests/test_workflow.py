"""End-to-end: run the real Snakemake workflow on a tiny config and check every artifact.

The model is a randomly initialised tiny T5 with ``ByT5Tokenizer()`` (no files),
trained for a few steps on a few tasks of the embedded NIv2 sample. The test
then runs Snakemake again and checks that nothing is redone.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

TINY_MODEL = {
    "kind": "t5_random",
    "config": {"d_model": 32, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 2, "d_kv": 16},
}


def tiny_config(results: str = "results") -> dict:
    """A config that exercises every rule in well under a minute on 2 CPU cores."""
    return {
        "niv2_dir": str(REPO / "data" / "niv2-sample"),
        "split": "sample",
        "results_dir": results,
        "seed": 7,
        "data": {
            "test_instances_per_task": 3,
            "instances_per_task": [4],
            "tasks_per_shard": 2,
            "limit_train_tasks": 4,
            "limit_test_tasks": 3,
        },
        "variants": {
            "original": {"definition": "original", "demonstrations": {"count": 2, "kind": "positive"}},
            "simplified": {"definition": "simplified", "demonstrations": {"count": 2, "kind": "positive"}},
            "delusive": {"definition": "original", "demonstrations": {"count": 2, "kind": "delusive"}},
        },
        "training_variants": ["original", "simplified"],
        "evaluation": {"extra": {"original": ["delusive"]}, "untuned": ["original"]},
        "seeds": [3],
        "models": {"tiny-t5": TINY_MODEL},
        "training": {
            "learning_rate": 1e-3,
            "effective_batch_size": 4,
            "per_device_batch_size": 2,
            "max_steps": 3,
            "max_source_length": 256,
            "max_target_length": 16,
            "device": "cpu",
        },
        "decoding": {"max_new_tokens": 8, "batch_tokens": 1024},
        "resources": {"train": {"threads": 1}, "predict": {"threads": 1}},
        "report": {"title": "tiny end-to-end", "n_resamples": 999},
        "comparisons": TINY_COMPARISONS,
    }


# The paper's findings at smoke scale: one of them names a variant the tiny study does not train (not run).
TINY_COMPARISONS = {
    "simplified_vs_original": {
        "a": {"train_variant": "simplified"}, "b": {"train_variant": "original"},
        "metric": "rougeL", "claim": "equivalent", "margin": 2.0,
    },
    "delusive_vs_original": {
        "a": {"train_variant": "delusive"}, "b": {"train_variant": "original"},
        "metric": "rougeL", "claim": "equivalent", "margin": 2.0,
    },
    "delusive_at_test_time": {
        "a": {"train_variant": "original", "eval_variant": "delusive"}, "b": {"train_variant": "original"},
        "metric": "rougeL", "claim": "worse", "paper": {"note": "-0.28 to -6.10 points", "source": "notebook cell 11"},
    },
    "tuned_vs_untuned": {
        "a": {"model": "tiny-t5", "train_variant": "original"}, "b": {"train_variant": "untuned"},
        "metric": "cls_exact_match", "claim": "better", "paper": {"values": [{"a": 43.0, "b": 30.0}]},
    },
    "tuned_vs_random_baseline": {
        "a": {"train_variant": "original"}, "b": {"model": "baseline", "train_variant": "random"},
        "metric": "rougeL", "claim": "equivalent", "margin": 2.0,
    },
}


def snakemake_command(workdir: Path, config: dict, *extra: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run the workflow in ``workdir`` with ``config`` replacing config.yaml."""
    cfg_path = workdir / "config.tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONHASHSEED": "random", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    cmd = [
        *SNAKEMAKE,
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(cfg_path),
        "--cores", "2",
        *extra,
    ]
    return cmd, env


def run_snakemake(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` with ``config`` replacing config.yaml; return the finished process."""
    cmd, env = snakemake_command(workdir, config, *extra)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny workflow run once to completion (shared by the tests of this module)."""
    workdir = tmp_path_factory.mktemp("tiny")
    proc = run_snakemake(workdir, tiny_config())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return workdir, proc


RUNS = [
    ("baselines/random", "random", "-"),
    ("baselines/majority", "majority", "-"),
    ("tiny-t5/untuned/original", "untuned", "original"),
    ("tiny-t5/original/n4/seed3/original", "original", "original"),
    ("tiny-t5/original/n4/seed3/delusive", "original", "delusive"),
    ("tiny-t5/simplified/n4/seed3/simplified", "simplified", "simplified"),
]


@pytest.mark.slow
def test_every_artifact_is_written(tiny_run):
    """Tables, shards, checkpoints, predictions, metrics and the report all exist with the right content."""
    workdir, _ = tiny_run
    res = workdir / "results"
    tasks = pl.read_parquet(res / "data" / "test" / "tasks.parquet")
    assert tasks.height == 3 and set(tasks["task_type"]) <= {"classification", "generation"}
    inst = pl.read_parquet(res / "data" / "test" / "instances.parquet")
    assert inst.group_by("task").len()["len"].to_list() == [3, 3, 3]
    train_inst = pl.read_parquet(res / "data" / "train" / "instances.parquet")
    assert train_inst.height == 4 * 4

    for variant in ("original", "simplified", "delusive"):
        meta = json.loads((res / "prompts" / variant / "test" / "meta.json").read_text())
        assert meta["n_tasks"] == 3 and len(meta["shards"]) == 2  # 2 tasks per shard
        assert (res / "prompts" / variant / "test" / "definitions.parquet").is_file()
    simplified = pl.read_parquet(res / "prompts" / "simplified" / "test" / "definitions.parquet")
    assert all(
        d.startswith("Output one of:") for d, t in zip(simplified["definition_shown"], simplified["task_type"])
        if t == "classification"
    )

    for tv in ("original", "simplified"):
        ckpt = res / "models" / "tiny-t5" / tv / "n4" / "seed3"
        assert (ckpt / "model.safetensors").is_file() and (ckpt / "config.json").is_file()
        log = pl.read_parquet(ckpt / "train_log.parquet")
        assert log["step"].to_list() == [1, 2, 3] and log["loss"].is_finite().all()
        meta = json.loads((ckpt / "metadata.json").read_text())
        assert meta["steps"] == 3 and meta["n_instances"] == 16 and meta["seed"] == 3
        prov = meta["provenance"]
        assert prov["package_version"] and len(prov["code_digest"]) == 16 and prov["torch"] and prov["transformers"]
        assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
        assert len(prov["config_digest"]) == 16

    for run, tv, ev in RUNS:
        preds = pl.read_parquet(res / "predictions" / f"{run}.parquet")
        assert preds.height == 9
        assert {"task", "id", "prediction", "references"} <= set(preds.columns)
        metrics_dir = res / "metrics" / run
        overall = json.loads((metrics_dir / "overall.json").read_text())
        assert overall["train_variant"] == tv and overall["eval_variant"] == ev
        assert overall["n_instances"] == 9 and 0 <= overall["rougeL"] <= 100
        for name in ("instances.parquet", "tasks.parquet", "tasks.csv", "categories.parquet", "categories.csv"):
            assert (metrics_dir / name).is_file(), name
        task_metrics = pl.read_parquet(metrics_dir / "tasks.parquet")
        shares = task_metrics.filter(pl.col("task_type") == "classification")["in_label_space_normalised"]
        assert shares.is_not_null().all() and ((shares >= 0) & (shares <= 100)).all()
        assert task_metrics.filter(pl.col("task_type") == "generation")["in_label_space"].is_null().all()
    # The baselines answer from the label space only: every classification answer lies inside it.
    for b in ("random", "majority"):
        tm = pl.read_parquet(res / "metrics" / "baselines" / b / "tasks.parquet")
        assert (tm.filter(pl.col("task_type") == "classification")["in_label_space"] == 100).all()

    audit = pl.read_csv(res / "audit" / "tasks.csv")
    assert audit.height == 4 + 3 and set(audit["part"]) == {"train", "test"}
    assert {"task_type", "label_space", "simplified_definition", "typing_rule"} <= set(audit.columns)
    expected = pl.read_csv(res / "audit" / "random_expected.csv")
    n_cls = tasks.filter(pl.col("task_type") == "classification").height
    assert expected.height == n_cls

    summary = pl.read_csv(res / "report" / "summary.csv")
    assert summary.height == len(RUNS)
    assert set(summary["train_variant"]) == {"random", "majority", "untuned", "original", "simplified"}
    for meta_file in (res / "prompts" / "original" / "test" / "meta.json",
                      res / "metrics" / "tiny-t5" / "untuned" / "original" / "overall.json"):
        assert json.loads(meta_file.read_text())["provenance"]["code_digest"], meta_file
    prov = pl.read_csv(res / "report" / "provenance.csv")
    assert {"package_version", "code_digest", "git_commit", "git_dirty", "python", "torch", "transformers",
            "config_digest"} == set(prov["key"])
    md = (res / "report" / "summary.md").read_text()
    assert "Classification EM" in md and "untuned" in md
    assert "analytic expected classification EM" in md
    for png in ("scores.png", "categories.png", *CLAIM_FIGURES):
        assert (res / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    # The claims table: one row per comparison (one model, one size), the untrained variant "not run",
    # and at 3 unseen tasks no verdict (said in the table's note, not only in the README).
    claims = pl.read_csv(res / "report" / "claims.csv")
    assert claims["comparison"].sort().to_list() == sorted(TINY_COMPARISONS)
    verdicts = dict(zip(claims["comparison"], claims["verdict"]))
    assert verdicts.pop("delusive_vs_original") == "not run"
    assert set(verdicts.values()) == {"inconclusive"}
    ran = claims.filter(pl.col("verdict") != "not run")
    assert (ran["n_tasks"] <= 3).all() and (ran["n_seeds_a"] == 1).all()
    assert ran["note"].str.contains("fewer than 6: no verdict").all()
    assert ran["p_value"].is_not_null().all() and (ran["p_holm"] >= ran["p_value"]).all()
    assert claims.filter(pl.col("comparison") == "tuned_vs_untuned")["paper_difference"].to_list() == [13.0]
    claims_md = (res / "report" / "claims.md").read_text()
    assert "| comparison |" in claims_md and "**not run**" in claims_md and "notebook cell 11" in claims_md
    diffs = pl.read_csv(res / "report" / "task_differences.csv")
    assert set(diffs["comparison"]) == set(ran["comparison"])
    # Every artifact lies under the results folder (plus Snakemake's own bookkeeping).
    stray = {p.name for p in workdir.iterdir()} - {"results", ".snakemake", "config.tiny.yaml"}
    assert not stray, stray


@pytest.mark.slow
def test_second_run_does_nothing(tiny_run):
    """A second invocation after a finished run plans no job and rewrites no file."""
    workdir, _ = tiny_run
    res = workdir / "results"
    before = {p: p.stat().st_mtime_ns for p in res.rglob("*") if p.is_file()}
    proc = run_snakemake(workdir, tiny_config())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr
    after = {p: p.stat().st_mtime_ns for p in res.rglob("*") if p.is_file()}
    assert before == after


@pytest.mark.slow
def test_predictions_are_deterministic(tiny_run, tmp_path):
    """The same config and seed give the same shards, checkpoints and predictions (CPU)."""
    workdir, _ = tiny_run
    cfg = tiny_config()
    cfg["training_variants"] = ["original"]
    cfg["evaluation"] = {"extra": {}, "untuned": ["original"]}
    proc = run_snakemake(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = workdir / "results", tmp_path / "results"
    for rel in ("prompts/original/train/shard-00000.parquet", "prompts/original/test/shard-00001.parquet"):
        assert pl.read_parquet(a / rel).equals(pl.read_parquet(b / rel)), rel
    ckpt = "models/tiny-t5/original/n4/seed3/model.safetensors"
    assert (a / ckpt).read_bytes() == (b / ckpt).read_bytes()
    for run in ("tiny-t5/original/n4/seed3/original", "tiny-t5/untuned/original"):
        pa = pl.read_parquet(a / "predictions" / f"{run}.parquet")
        pb = pl.read_parquet(b / "predictions" / f"{run}.parquet")
        assert pa.equals(pb), run


CLAIM_FIGURES = ("forest.png", "curves.png", "eval_variant_effects.png", "task_shifts.png")


def _embedded(html: str, filename: str) -> bytes:
    """The bytes of a file embedded in a Snakemake HTML report (a base64 data URI naming the file)."""
    m = re.search(r"data:[^;\"]+;(?:charset=[^;\"]+;)?filename=" + re.escape(filename) + r";base64,([A-Za-z0-9+/=]+)", html)
    assert m, f"{filename} is not embedded in the report"
    return base64.b64decode(m.group(1))


@pytest.mark.slow
def test_html_report_holds_plots_and_captions(tiny_run):
    """`snakemake --report` builds one HTML file with the plots, tables and their captions."""
    workdir, _ = tiny_run
    res = workdir / "results"
    out = res / "report.html"
    proc = run_snakemake(workdir, tiny_config(), "--report", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(errors="replace")
    for needle in ("scores.png", "categories.png", "summary.csv", "tasks.csv", "Headline numbers", "instruct-ablate asks",
                   "provenance.csv", "git commit of the checkout"):
        assert needle in html, needle
    # the claims table, its per-task differences and every figure, with their captions
    assert _embedded(html, "claims.csv") == (res / "report" / "claims.csv").read_bytes()
    assert _embedded(html, "task_differences.csv") == (res / "report" / "task_differences.csv").read_bytes()
    for png in CLAIM_FIGURES:
        assert _embedded(html, png) == (res / "report" / png).read_bytes(), png
    for caption in (
        "The claims table",
        "Every per-task difference behind the claims table",
        "Every comparison's difference a",
        "The paper's main figure",
        "Test-time instruction changes",
        "Where instructions matter",
    ):
        assert caption in html, caption


# --------------------------------------------------------------------------- precise reruns

JOB_HEADER = re.compile(r"^(?:local)?rule (\w+):$")


def planned_jobs(proc: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans, read from its job blocks."""
    jobs, rule = set(), None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = JOB_HEADER.match(line.strip())
        if m:
            if rule is not None:
                jobs.add((rule, ""))
            rule = m.group(1)
        elif rule is not None and line.strip().startswith("wildcards:"):
            jobs.add((rule, line.strip()[len("wildcards:"):].strip()))
            rule = None
        elif rule is not None and line.strip().startswith("jobid:") and rule == "all":
            jobs.add((rule, ""))
            rule = None
    if rule is not None:
        jobs.add((rule, ""))
    return jobs


def _train(v):
    return ("train", f"model=tiny-t5, variant={v}, n=4, seed=3")


def _predict(v, ev):
    return ("predict", f"model=tiny-t5, variant={v}, n=4, seed=3, eval_variant={ev}")


def _evaluate(run):
    return ("evaluate", f"run={run}")


REPORT = {("report", ""), ("all", "")}


def _edit_simplified(cfg):
    cfg["variants"]["simplified"]["demonstrations"]["count"] = 1


def _add_variant(cfg):
    cfg["variants"]["no_definition"] = {"definition": "none", "demonstrations": {"count": 2, "kind": "positive"}}
    cfg["training_variants"].append("no_definition")


def _learning_rate(cfg):
    cfg["models"]["tiny-t5"]["training"] = {"learning_rate": 5e-4}


def _decoding(cfg):
    cfg["decoding"]["max_new_tokens"] = 6


def _plot(cfg):
    cfg["report"]["title"] = "another title"


def _tasks_per_shard(cfg):
    cfg["data"]["tasks_per_shard"] = 1


def _skip_missing(cfg):
    cfg["skip_missing_tasks"] = True  # nothing is missing in the sample


def _batching(cfg):
    cfg["decoding"]["batch_tokens"] = 512
    cfg["decoding"]["handover_every"] = 2


def _data_seed(cfg):
    cfg["seed"] = 8


ALL_TUNED = {_train("original"), _train("simplified"), _predict("original", "original"),
             _predict("original", "delusive"), _predict("simplified", "simplified"),
             _evaluate("tiny-t5/original/n4/seed3/original"), _evaluate("tiny-t5/original/n4/seed3/delusive"),
             _evaluate("tiny-t5/simplified/n4/seed3/simplified")}

RERUNS = {
    "edit one variant": (
        _edit_simplified,
        {
            ("prompts", "variant=simplified, part=train"),
            ("prompts", "variant=simplified, part=test"),
            _train("simplified"),
            _predict("simplified", "simplified"),
            _evaluate("tiny-t5/simplified/n4/seed3/simplified"),
        }
        | REPORT,
    ),
    "add a variant": (
        _add_variant,
        {
            ("prompts", "variant=no_definition, part=train"),
            ("prompts", "variant=no_definition, part=test"),
            _train("no_definition"),
            _predict("no_definition", "no_definition"),
            _evaluate("tiny-t5/no_definition/n4/seed3/no_definition"),
        }
        | REPORT,
    ),
    "change a model's learning rate": (
        _learning_rate,
        {
            _train("original"),
            _train("simplified"),
            _predict("original", "original"),
            _predict("original", "delusive"),
            _predict("simplified", "simplified"),
            _evaluate("tiny-t5/original/n4/seed3/original"),
            _evaluate("tiny-t5/original/n4/seed3/delusive"),
            _evaluate("tiny-t5/simplified/n4/seed3/simplified"),
        }
        | REPORT,
    ),
    "change the decoding length": (
        _decoding,
        {
            _predict("original", "original"),
            _predict("original", "delusive"),
            _predict("simplified", "simplified"),
            ("predict_untuned", "model=tiny-t5, eval_variant=original"),
            _evaluate("tiny-t5/original/n4/seed3/original"),
            _evaluate("tiny-t5/original/n4/seed3/delusive"),
            _evaluate("tiny-t5/simplified/n4/seed3/simplified"),
            _evaluate("tiny-t5/untuned/original"),
        }
        | REPORT,
    ),
    "change a plot setting": (_plot, REPORT),
    # Settings that change no result rerun nothing.
    "change tasks_per_shard (the shard layout only)": (_tasks_per_shard, set()),
    "skip_missing_tasks: true with nothing missing": (_skip_missing, set()),
    "change batch_tokens and handover_every (identical predictions)": (_batching, set()),
    # The data seed: training samples and targets, delusive demonstrations, the random baseline, and the
    # random init of the t5_random model's untuned weights -- not the majority baseline, not the unseen
    # tasks' shards of non-delusive variants, not the test tables.
    "change the data seed": (
        _data_seed,
        {
            ("ingest", "part=train"),
            ("audit", ""),
            ("prompts", "variant=original, part=train"),
            ("prompts", "variant=simplified, part=train"),
            ("prompts", "variant=delusive, part=test"),
            ("baseline", "baseline=random"),
            _evaluate("baselines/random"),
            ("predict_untuned", "model=tiny-t5, eval_variant=original"),
            _evaluate("tiny-t5/untuned/original"),
        }
        | ALL_TUNED
        | REPORT,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("change", list(RERUNS))
def test_a_config_change_reruns_exactly_its_stale_branch(tiny_run, change):
    """After a finished run, a config change plans exactly the jobs whose inputs it makes stale."""
    workdir, _ = tiny_run
    mutate, expected = RERUNS[change]
    cfg = copy.deepcopy(tiny_config())
    mutate(cfg)
    proc = run_snakemake(workdir, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert planned_jobs(proc) == expected
    if not expected:
        assert "Nothing to be done" in proc.stdout + proc.stderr
    # restore the config file the other tests of this module use
    (workdir / "config.tiny.yaml").write_text(yaml.safe_dump(tiny_config()))


# --------------------------------------------------------------------------- code-aware reruns

ALL_BUT_DATA = {"prompts", "train", "predict", "predict_untuned", "evaluate", "report", "all"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, expected",
    [
        ("prompts.py", ALL_BUT_DATA),  # the shards and everything downstream of them, not ingest or baselines
        ("report.py", {"report", "all"}),
        ("families.py", {"train", "predict", "predict_untuned", "evaluate", "report", "all"}),
    ],
)
def test_a_package_edit_reruns_exactly_the_stages_that_run_that_code(tiny_run, tmp_path, module, expected):
    """A stage's params hold a digest of the package modules its script imports (transitively)."""
    workdir, _ = tiny_run
    site = tmp_path / "site"
    shutil.copytree(REPO / "src" / "instruct_ablate", site / "instruct_ablate")
    cmd, env = snakemake_command(workdir, tiny_config(), "-n")
    env["PYTHONPATH"] = str(site)  # the workflow and its jobs import this copy of the package

    def plan():
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    assert "Nothing to be done" in plan().stdout  # the same code: nothing to do
    path = site / "instruct_ablate" / module
    text = path.read_text()
    path.write_text(text + "\n# a comment, and formatting, change no syntax tree\n")
    assert "Nothing to be done" in plan().stdout
    path.write_text(text + "\n\ndef _an_edit():\n    return 1\n")
    proc = plan()
    assert {rule for rule, _ in planned_jobs(proc)} == expected
    assert "params" in proc.stdout  # Snakemake names the changed param as the reason


# --------------------------------------------------------------------------- the study grid


@pytest.mark.slow
def test_the_study_grid_expands_models_sizes_seeds_and_evaluation_pairs(tmp_path):
    """2 models x 2 sizes x 2 seeds x 2 training variants, extra evaluation variants, duplicates removed."""
    cfg = tiny_config()
    cfg["models"]["other-t5"] = copy.deepcopy(TINY_MODEL)
    cfg["data"]["instances_per_task"] = [2, 4]
    cfg["seeds"] = [3, 5]
    cfg["evaluation"] = {"extra": {"original": ["delusive", "original"]}, "untuned": ["original", "simplified"]}
    proc = run_snakemake(tmp_path, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc)
    models, sizes, seeds = ("tiny-t5", "other-t5"), (2, 4), (3, 5)
    pairs = [("original", "original"), ("simplified", "simplified"), ("original", "delusive")]  # (original, original) once
    want_train = {("train", f"model={m}, variant={v}, n={n}, seed={s}")
                  for m in models for v in ("original", "simplified") for n in sizes for s in seeds}
    want_predict = {("predict", f"model={m}, variant={v}, n={n}, seed={s}, eval_variant={e}")
                    for m in models for v, e in pairs for n in sizes for s in seeds}
    want_untuned = {("predict_untuned", f"model={m}, eval_variant={e}") for m in models for e in ("original", "simplified")}
    assert {j for j in jobs if j[0] == "train"} == want_train
    assert {j for j in jobs if j[0] == "predict"} == want_predict
    assert {j for j in jobs if j[0] == "predict_untuned"} == want_untuned
    n_evaluate = len(want_predict) + len(want_untuned) + 2  # + the random and majority baselines
    assert sum(r == "evaluate" for r, _ in jobs) == n_evaluate
    # One ingest of the largest size: the smaller sizes are prefixes of its seeded sample.
    assert sum(r == "ingest" for r, _ in jobs) == 2


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["evaluation"]["extra"].update({"delusive": ["original"]}), "evaluation.extra.delusive: not one of training_variants"),
        (lambda c: c["evaluation"]["extra"].update({"original": ["no_such"]}), "variant 'no_such' is used but not defined"),
    ],
)
def test_evaluation_pairs_are_checked_at_start_up(tmp_path, change, message):
    cfg = tiny_config()
    change(cfg)
    proc = run_snakemake(tmp_path, cfg, "-n")
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
