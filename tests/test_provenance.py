"""Stage code digests: which package modules a per-rule script runs, and when the digest changes."""

from __future__ import annotations

import shutil
from pathlib import Path

from instruct_ablate.provenance import code_digest, stage_modules

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow_scripts"


def test_each_stage_runs_the_modules_it_imports_and_theirs():
    pkg = REPO / "src" / "instruct_ablate"
    assert stage_modules(SCRIPTS / "evaluate.py", pkg) == ["evaluate", "io", "labels", "metrics", "provenance"]
    train = stage_modules(SCRIPTS / "train.py", pkg)
    # train.py imports train and gpu_slots; train imports families, lora, models, ...; families imports
    # lora inside a function (load_checkpoint): found too.
    assert {"train", "families", "lora", "models", "batching", "prompts", "gpu_slots", "io"} <= set(train)
    assert "report" not in train and "evaluate" not in train
    predict = stage_modules(SCRIPTS / "predict.py", pkg)
    assert "lora" in predict and "train" not in predict
    assert "__init__" not in train  # a version bump reruns nothing


def test_the_digest_follows_code_not_comments(tmp_path):
    pkg = tmp_path / "instruct_ablate"
    shutil.copytree(REPO / "src" / "instruct_ablate", pkg)
    script = SCRIPTS / "prompts.py"
    before = code_digest(script, pkg)
    variants = pkg / "variants.py"  # imported by prompts.py through prompts
    text = variants.read_text()
    variants.write_text("# a comment\n" + text.replace("\n\n\n", "\n\n\n\n", 1))
    code_digest.cache_clear()
    assert code_digest(script, pkg) == before
    variants.write_text(text + "\nX = 1\n")
    code_digest.cache_clear()
    assert code_digest(script, pkg) != before
    assert code_digest(SCRIPTS / "report.py", pkg) == code_digest(SCRIPTS / "report.py", REPO / "src" / "instruct_ablate")
