"""Decoder-only models through the same workflow: a tiny Llama with LoRA beside the tiny T5.

Same rules, same params-triggered reruns, same report: the causal model's adapter checkpoint,
predictions and metrics land where the seq2seq model's do, and a LoRA setting reruns only that
model's branch. The shipped 7B config dry-runs.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import polars as pl
import pytest

from tests.test_workflow import REPO, planned_jobs, run_snakemake, snakemake_command, tiny_config

TINY_LLAMA = {
    "kind": "llama_random",
    "tokenizer": str(REPO / "tests" / "data" / "tiny-bpe"),
    "config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "num_key_value_heads": 1, "max_position_embeddings": 512},
    "training": {"lora": {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]},
                 "learning_rate": 1e-2},
}


def causal_config() -> dict:
    cfg = tiny_config()
    cfg["training_variants"] = ["original"]
    cfg["evaluation"] = {"extra": {}, "untuned": ["original"]}
    cfg["models"]["tiny-llama"] = copy.deepcopy(TINY_LLAMA)
    return cfg


@pytest.fixture(scope="module")
def causal_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("causal")
    proc = run_snakemake(workdir, causal_config())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return workdir


@pytest.mark.slow
def test_a_causal_lm_trains_predicts_and_is_reported_beside_the_seq2seq_model(causal_run):
    res = causal_run / "results"
    ckpt = res / "models" / "tiny-llama" / "original" / "n4" / "seed3"
    assert (ckpt / "adapter_model.safetensors").is_file() and not (ckpt / "model.safetensors").exists()
    meta = json.loads((ckpt / "metadata.json").read_text())
    assert meta["family"] == "causal_lm" and meta["training"]["lora"]["r"] == 4 and meta["steps"] == 3
    assert (res / "models" / "tiny-t5" / "original" / "n4" / "seed3" / "model.safetensors").is_file()
    for run in ("tiny-llama/original/n4/seed3/original", "tiny-llama/untuned/original"):
        preds = pl.read_parquet(res / "predictions" / f"{run}.parquet")
        assert preds.height == 9 and preds["prediction"].dtype == pl.String
        overall = json.loads((res / "metrics" / run / "overall.json").read_text())
        assert overall["model"] == "tiny-llama" and overall["n_instances"] == 9
    summary = pl.read_csv(res / "report" / "summary.csv")
    assert set(summary["model"]) == {"baseline", "tiny-t5", "tiny-llama"}
    assert summary.filter(pl.col("model") == "tiny-llama").height == 2  # untuned + original
    assert "tiny-llama" in (res / "report" / "summary.md").read_text()


@pytest.mark.slow
def test_a_lora_setting_reruns_only_that_models_branch(causal_run):
    cfg = causal_config()
    cfg["models"]["tiny-llama"]["training"]["lora"]["r"] = 8
    proc = run_snakemake(causal_run, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert planned_jobs(proc) == {
        ("train", "model=tiny-llama, variant=original, n=4, seed=3"),
        ("predict", "model=tiny-llama, variant=original, n=4, seed=3, eval_variant=original"),
        ("evaluate", "run=tiny-llama/original/n4/seed3/original"),
        ("report", ""),
        ("all", ""),
    }
    cfg = causal_config()
    cfg["models"]["tiny-llama"]["prompt_format"] = "chat"  # the prompt format changes training and untuned runs
    proc = run_snakemake(causal_run, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {r for r, _ in planned_jobs(proc)} == {"train", "predict", "predict_untuned", "evaluate", "report", "all"}
    assert all("tiny-llama" in w for r, w in planned_jobs(proc) if r not in ("report", "all"))
    proc = run_snakemake(causal_run, causal_config(), "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize("config", ["configs/paper-llama-7b.yaml", "configs/smollm2-sample-cpu.yaml"])
def test_shipped_decoder_only_configs_dry_run(config, tmp_path):
    """The configs validate and plan the paper's grid (the 7B config's NIv2 clone is faked by the sample)."""
    import yaml

    cfg = yaml.safe_load((REPO / config).read_text())
    if cfg["niv2_dir"].startswith("/data"):
        cfg["niv2_dir"], cfg["split"] = str(REPO / "data" / "niv2-sample"), "sample"
    cmd, env = snakemake_command(tmp_path, cfg, "-n")
    env.pop("HF_HUB_OFFLINE")  # the 7B model is a hub id: offline, start-up would (rightly) stop at it
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc)
    n_variants, n_sizes, n_seeds = len(cfg["training_variants"]), len(cfg["data"]["instances_per_task"]), len(cfg["seeds"])
    assert sum(r == "train" for r, _ in jobs) == n_variants * n_sizes * n_seeds
    assert sum(r == "predict" for r, _ in jobs) == (n_variants + 1) * n_sizes * n_seeds  # + delusive at test time
    assert ("predict_untuned", f"model={next(iter(cfg['models']))}, eval_variant=original") in jobs
