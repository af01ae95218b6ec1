"""Benchmark: prediction instances per second of instruct-ablate's decoder against naive batched generate.

Both sides greedy-decode the same test prompts (NIv2 unseen tasks, original variant, Tk-Instruct
encoding) with the same model and ``max_new_tokens``:

  ours    instruct_ablate.predict.generate: prompts sorted by length, batches cut by a token budget,
          KV cache, finished sequences dropped from the batch; bf16 weights on CUDA
  naive   model.generate(do_sample=False, num_beams=1) on fixed-size batches in data order, each
          padded to its longest prompt (KV cache on, the batch runs until its last sequence ends)

and the outputs are compared string for string. A third line, encoder-only, runs just the encoder
over ours' batches: no decoder can beat it, so it shows how much of ours' time is left to decoding. Each side runs in its own process; its peak
resident memory (and on CUDA, peak allocated GPU memory) is reported.

Examples (the figures in the README came from these):
  python benchmarks/predict_throughput.py --model minilm --checkpoint results/models/minilm-bert2bert/original/n48/seed1
  python benchmarks/predict_throughput.py --model t5-small --instances-per-task 2 --max-new-tokens 32
  python benchmarks/predict_throughput.py --model t5-large --device cuda --instances-per-task 10 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import PRESETS, build_shards, default_niv2, machine, print_table, run_worker

SIDES = ("ours", "naive", "encoder-only")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Examples" + __doc__.split("Examples")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(PRESETS), default="minilm", help="base model preset (untuned)")
    p.add_argument("--checkpoint", type=Path, default=None, help="a fine-tuned checkpoint instead of the preset")
    p.add_argument("--niv2", type=Path, default=default_niv2(), help="NIv2 checkout (default: ../shared/niv2)")
    p.add_argument("--split", default=None, help="default: 'default' for a full layout, 'sample' for the sample")
    p.add_argument("--tasks", type=int, default=None, help="unseen tasks to take (default: all present)")
    p.add_argument("--instances-per-task", type=int, default=3)
    p.add_argument("--max-source-length", type=int, default=256)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-tokens", type=int, default=4096, help="ours: token budget per batch (GPU: 32768+)")
    p.add_argument("--handover-every", type=int, default=8, help="ours: straggler hand-over step (0: off)")
    p.add_argument("--naive-batch-size", type=int, default=32, help="naive: prompts per batch")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sides", default=",".join(SIDES))
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--shards", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    return p


def _load(a):
    import torch

    from instruct_ablate.families import load_checkpoint
    from instruct_ablate.models import load_base

    model, tokenizer = load_checkpoint(a.checkpoint)[:2] if a.checkpoint else load_base(PRESETS[a.model], seed=1)
    dev = torch.device(a.device)
    model.to(device=dev, dtype=torch.bfloat16 if dev.type == "cuda" else torch.float32)
    return model, tokenizer, dev


def worker(a) -> dict:
    import torch

    from instruct_ablate.batching import encode_sources, pad_batch
    from instruct_ablate.models import source_length_limit
    from instruct_ablate.predict import generate
    from instruct_ablate.prompts import read_shards

    torch.set_num_threads(a.threads)
    model, tokenizer, dev = _load(a)
    data = read_shards(a.shards).sort(["task", "rank"])
    sources = encode_sources(data, tokenizer, source_length_limit(model, a.max_source_length))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if a.worker == "encoder-only":
        from instruct_ablate.predict import plan_batches

        texts = [""] * len(sources)
        with torch.inference_mode():
            for b in plan_batches([len(s) for s in sources], max_new_tokens=a.max_new_tokens,
                                  batch_tokens=a.batch_tokens):
                ids, mask = pad_batch([sources[i] for i in b], tokenizer.pad_token_id)
                model.get_encoder()(input_ids=ids.to(dev), attention_mask=mask.to(dev))
    elif a.worker == "ours":
        texts = generate(model, tokenizer, sources, max_new_tokens=a.max_new_tokens, batch_tokens=a.batch_tokens,
                         handover_every=a.handover_every or None, device=dev)
    else:
        texts, positions = [], 0
        with torch.inference_mode():
            for k in range(0, len(sources), a.naive_batch_size):
                ids, mask = pad_batch(sources[k : k + a.naive_batch_size], tokenizer.pad_token_id)
                out = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                                     max_new_tokens=a.max_new_tokens, do_sample=False, num_beams=1)
                texts += [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    new_tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return {"instances": len(texts), "seconds": seconds, "texts": texts, "source_tokens": sum(map(len, sources)),
            "mean_output_tokens": sum(new_tokens) / max(1, len(new_tokens)),
            "cuda_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None}


def main() -> None:
    a = _parser().parse_args()
    if a.worker:
        a.json_out.write_text(json.dumps(worker(a)))
        return
    split = a.split or ("sample" if a.niv2.name == "niv2-sample" else "default")
    what = f"checkpoint {a.checkpoint}" if a.checkpoint else f"{a.model} (untuned)"
    print(f"# prediction throughput: {what} on {machine()}, {a.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        shards = build_shards(a.niv2, split, "test", Path(tmp) / "test", instances_per_task=a.instances_per_task,
                              limit_tasks=a.tasks)
        common = ["--model", a.model, "--max-source-length", str(a.max_source_length), "--max-new-tokens",
                  str(a.max_new_tokens), "--batch-tokens", str(a.batch_tokens), "--handover-every", str(a.handover_every),
                  "--naive-batch-size",
                  str(a.naive_batch_size), "--device", a.device, "--threads", str(a.threads), "--shards", str(shards)]
        if a.checkpoint:
            common += ["--checkpoint", str(a.checkpoint)]
        rows = [{**run_worker(__file__, [*common, "--worker", side]), "side": side} for side in a.sides.split(",")]
    print(f"data: {rows[0]['instances']} test prompts ({a.niv2}, split {split}, first {a.instances_per_task} "
          f"instances per unseen task), source <= {a.max_source_length} tokens, <= {a.max_new_tokens} new tokens; "
          f"ours: budget {a.batch_tokens} tokens per batch; naive: {a.naive_batch_size} prompts per batch")
    by = {r["side"]: r for r in rows}
    for r in rows:
        if r["side"] == "encoder-only":
            r["mean_output_tokens"] = None
        r["inst_s"] = r["instances"] / r["seconds"]
        r["speedup"] = r["inst_s"] / by["naive"]["instances"] * by["naive"]["seconds"] if "naive" in by else None
    print_table(rows, [("side", "decoder", ""), ("instances", "instances", "d"), ("seconds", "seconds", ".1f"),
                       ("inst_s", "instances/s", ".2f"), ("speedup", "x naive", ".2f"),
                       ("mean_output_tokens", "mean output tokens", ".1f"), ("peak_rss_mib", "peak RSS MiB", ".0f"),
                       ("cuda_peak_mib", "peak GPU MiB", ".0f")])
    if "ours" in by and "naive" in by:
        same = sum(x == y for x, y in zip(by["ours"]["texts"], by["naive"]["texts"]))
        if "encoder-only" in by:
            share = 100 * by["encoder-only"]["seconds"] / by["ours"]["seconds"]
            print(f"encoder share of ours' time: {share:.0f}% (bound on any decoder over naive: "
                  f"{by['naive']['seconds'] / by['encoder-only']['seconds']:.2f}x)")
        print(f"outputs identical: {same}/{len(by['ours']['texts'])}")
        for x, y in [(x, y) for x, y in zip(by["ours"]["texts"], by["naive"]["texts"]) if x != y][:3]:
            print(f"  differs: ours {x[:80]!r} | naive {y[:80]!r}")


if __name__ == "__main__":
    main()
