"""GPU benchmarks: the training and prediction comparisons of benchmarks/ on one CUDA GPU, in bf16, with MFU.

Runs the same scripts as on CPU (no second copy of their logic), one after the other, with --device cuda:

  train     benchmarks/train_throughput.py: full fine-tuning, ours against Trainer (group_by_length), bf16
            autocast and fused AdamW on both sides; tokens/s, peak GPU memory, MFU
  lora      the same with --lora (LoRA r 16 on q, k, v, o on both sides)
  predict   benchmarks/predict_throughput.py: ours against naive batched model.generate (left padding, input
            order) at several batch sizes, bf16 weights on both sides; identical outputs counted; MFU

Each script alternates its sides --repeats times and prints Markdown tables (median, min-max, ratio of
medians). MFU (model FLOPs utilisation) is 6 x N x tokens/s for training and 2 x N x (prompt + output)
tokens/s for prediction, N = all parameters, over the GPU's peak: --peak-tflops, by default 989 TFLOP/s,
NVIDIA's dense (no sparsity) bf16 tensor-core figure for the H100 SXM; pass your GPU's (H100 PCIe 756,
A100 312, L4 121). bf16 decoding makes rounding depend on the batch's shape, so a few outputs may differ
between ours and naive (reported); --min-identical is lower than on CPU.

Examples:
  python benchmarks/gpu/run_all.py                          # SmolLM2-135M-Instruct on an H100, all parts
  python benchmarks/gpu/run_all.py --parts predict --repeats 2
  python benchmarks/gpu/run_all.py --dry-run                # print the commands, run nothing
  python benchmarks/gpu/run_all.py --device cpu --model tiny-llama --scale tiny --repeats 1   # smoke test
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
PARTS = ("train", "lora", "predict")

# Settings per scale: GPU-sized (SmolLM2 on an H100: estimated at 2-4 minutes a part, not yet measured) and
# tiny (the CPU smoke test).
SCALES = {
    "gpu": {
        "train": ["--tasks", "200", "--instances-per-task", "8", "--steps", "10", "--batch", "64", "--micro-batch",
                  "16", "--max-source-length", "1024"],
        "predict": ["--instances-per-task", "3", "--max-source-length", "1024", "--max-new-tokens", "128",
                    "--batch-tokens", "131072", "--naive-batch-size", "32,64,128"],
    },
    "tiny": {
        "train": ["--tasks", "4", "--instances-per-task", "4", "--steps", "2", "--batch", "4", "--micro-batch", "2"],
        "predict": ["--tasks", "2", "--instances-per-task", "3", "--max-new-tokens", "8", "--naive-batch-size", "2"],
    },
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Examples" + __doc__.split("Examples")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2", help="a preset of benchmarks/_common.py (default smollm2)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    p.add_argument("--scale", choices=sorted(SCALES), default="gpu", help="data and batch sizes")
    p.add_argument("--device", default="cuda", help="cuda (default) | cpu (smoke test only)")
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="peak bf16 TFLOP/s for MFU (default 989: H100 SXM, dense)")
    p.add_argument("--repeats", type=int, default=3, help="runs per side, alternating")
    p.add_argument("--threads", type=int, default=4, help="torch CPU threads of each run")
    p.add_argument("--min-identical", type=float, default=0.8, help="prediction: share of outputs naive must match")
    p.add_argument("--niv2", type=Path, default=None, help="NIv2 checkout (default: the scripts' own default)")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    return p


def commands(a) -> list[tuple[str, list[str]]]:
    """(part, argv) of every script run, in order."""
    scale = SCALES[a.scale]
    common = ["--model", a.model, "--device", a.device, "--peak-tflops", str(a.peak_tflops), "--repeats",
              str(a.repeats), "--threads", str(a.threads), *(["--niv2", str(a.niv2)] if a.niv2 else [])]
    train = [sys.executable, str(BENCH / "train_throughput.py"), *common, "--sides", "ours,trainer-grouped",
             *scale["train"]]
    out = {
        "train": train,
        "lora": [*train, "--lora"],
        "predict": [sys.executable, str(BENCH / "predict_throughput.py"), *common, "--min-identical",
                    str(a.min_identical), *scale["predict"]],
    }
    parts = a.parts.split(",")
    if set(parts) - set(PARTS):
        raise SystemExit(f"--parts: unknown {sorted(set(parts) - set(PARTS))}")
    return [(part, out[part]) for part in parts]


def main() -> None:
    a = _parser().parse_args()
    runs = commands(a)
    print(f"# GPU benchmarks: {a.model}, parts {a.parts}, scale {a.scale}, device {a.device}; MFU over "
          f"{a.peak_tflops:g} TFLOP/s" + (" (the default: H100 SXM dense bf16)" if a.peak_tflops == 989.0 else ""))
    if a.dry_run:
        for part, argv in runs:
            print(f"{part}: {shlex.join(argv)}")
        return
    import importlib.util

    if "train" in a.parts or "lora" in a.parts:
        if importlib.util.find_spec("datasets") is None:
            raise SystemExit("the Trainer side needs `datasets`: pip install -e '.[bench]'")
    if a.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("CUDA is not available on this machine (--device cpu runs the smoke test)")
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    failed = []
    for part, argv in runs:
        print(f"\n## {part}\n\n`{shlex.join(argv[1:])}`\n", flush=True)
        start = time.perf_counter()
        code = subprocess.call(argv)
        print(f"({part}: {time.perf_counter() - start:.0f} s, exit code {code})", flush=True)
        if code:
            failed.append(part)
    if failed:
        raise SystemExit(f"failed: {failed}")


if __name__ == "__main__":
    main()
