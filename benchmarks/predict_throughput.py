"""Benchmark: prediction instances per second of instruct-ablate's decoder against naive batched generate.

Both sides greedy-decode the same test prompts (NIv2 unseen tasks, original variant, fitted and encoded
as `instruct_ablate.predict.predict` does for the model's family) with the same model, `max_new_tokens`
and end tokens (the family's `end_ids`: for a chat model its end-of-turn token too):

  ours          instruct_ablate.predict.generate: prompts sorted by length, batches cut by a token budget,
                KV cache, finished sequences dropped from the batch, straggler hand-over; bf16 on CUDA.
                --batch-tokens takes several budgets (sides ours-t<N>): each is run and the fastest counts
  naive-b<N>    model.generate(do_sample=False, num_beams=1) on batches of N prompts in input order, each
                padded to its longest prompt (decoder-only models: left-padded), KV cache on, the batch runs
                until its last sequence ends (`ModelFamily.generate`, a thin wrapper). --naive-batch-size takes
                several sizes: each is run, and the fastest is the (tuned) baseline
  first-token   the prompts of ours' batches (first budget) read and one token decoded (encoder + first decoder step, or
                the decoder-only prefill): no decoder can beat it, so it shows how much of ours' time is
                left to decoding

and the outputs of the fastest ours are compared string for string with every naive size (greedy decoding is deterministic;
float rounding with other batch shapes may rarely flip an argmax): --min-identical sets the share that
must agree, or the benchmark fails. To show the outputs are not vacuous the table gives the number of
distinct outputs and their mean length. Each run is a fresh process; the sides run alternately, --repeats
times each (A B C, C B A, ...); the table gives median (min-max) and the ratio of medians. Peak memory:
resident set while decoding (and on CUDA, peak allocated GPU memory).

With --peak-tflops (or on CUDA, a known GPU) it also prints model FLOPs utilisation: 2 x parameters x
(prompt + output tokens)/s over the peak (output tokens re-tokenised from the decoded text, on both sides).

Examples (the figures in the README came from these):
  python benchmarks/predict_throughput.py --model minilm --checkpoint results/models/minilm-bert2bert/original/n48/seed1
  python benchmarks/predict_throughput.py --model t5-small --instances-per-task 2 --max-new-tokens 32
  python benchmarks/predict_throughput.py --model smollm2 --instances-per-task 1 --max-new-tokens 64 --naive-batch-size 4,8,16
  python benchmarks/predict_throughput.py --model t5-large --device cuda --instances-per-task 10 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import (PRESETS, PeakMemory, alternate, bf16_peak, build_shards, default_niv2, machine, materialise,
                     print_table, spread)

SIDES = ("ours", "naive", "first-token")


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
    p.add_argument("--batch-tokens", default="4096",
                   help="ours: token budget per batch (GPU: 32768+); a comma list tunes it")
    p.add_argument("--handover-every", type=int, default=8, help="ours: straggler hand-over step (0: off)")
    p.add_argument("--naive-batch-size", default="32", help="naive: prompts per batch; a comma list tunes it")
    p.add_argument("--min-identical", type=float, default=0.95,
                   help="share of outputs every naive size must reproduce exactly (default 0.95)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {SIDES}")
    p.add_argument("--repeats", type=int, default=3, help="runs per side, alternating")
    p.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak for MFU (default: known GPUs only)")
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--shards", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    return p


def _load(a):
    import torch

    from instruct_ablate.families import family_of, load_checkpoint
    from instruct_ablate.models import load_base

    if a.checkpoint:
        model, tokenizer, family = load_checkpoint(a.checkpoint)
    else:
        spec = json.loads(a.spec) if a.spec else PRESETS[a.model]
        (model, tokenizer), family = load_base(spec, seed=1), family_of(spec)
    dev = torch.device(a.device)
    model.to(device=dev, dtype=torch.bfloat16 if dev.type == "cuda" else torch.float32)
    return model, tokenizer, family, dev


def worker(a) -> dict:
    import torch

    from instruct_ablate.predict import generate, plan_batches
    from instruct_ablate.prompts import read_shards

    torch.set_num_threads(a.threads)
    model, tokenizer, family, dev = _load(a)
    data = read_shards(a.shards).sort(["task", "rank"])
    max_src = family.source_limit(model, a.max_source_length, a.max_new_tokens)
    sources = family.encode_prompts(data, tokenizer, model, max_src, a.max_new_tokens)
    pad_id, end_ids = tokenizer.pad_token_id, family.end_ids(model, tokenizer)
    with PeakMemory(a.device) as peak:
        if a.worker == "first-token":
            texts = [""] * len(sources)
            for b in plan_batches([len(s) for s in sources], max_new_tokens=a.max_new_tokens,
                                  batch_tokens=int(a.batch_tokens)):
                family.decode(model, [sources[i] for i in b], pad_id=pad_id, end_ids=end_ids, max_new_tokens=1)
        elif a.worker == "ours":
            texts = generate(model, tokenizer, sources, max_new_tokens=a.max_new_tokens, batch_tokens=int(a.batch_tokens),
                             handover_every=a.handover_every or None, device=dev, family=family)
        else:
            size, texts = int(a.naive_batch_size), []
            for k in range(0, len(sources), size):
                seqs = family.generate(model, sources[k : k + size], pad_id=pad_id, end_ids=end_ids,
                                       max_new_tokens=a.max_new_tokens)
                texts += [t.strip() for t in tokenizer.batch_decode(seqs, skip_special_tokens=True)]
    new_tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return {"instances": len(texts), "seconds": peak.seconds, "texts": texts, "source_tokens": sum(map(len, sources)),
            "output_tokens": sum(new_tokens), "params": sum(p.numel() for p in model.parameters()),
            "start_rss_mib": peak.start_rss_mib, "loop_rss_mib": peak.rss_mib, "cuda_peak_mib": peak.cuda_mib}


def main() -> None:
    a = _parser().parse_args()
    if a.worker:
        a.json_out.write_text(json.dumps(worker(a)))
        return
    sides = a.sides.split(",")
    if set(sides) - set(SIDES):
        raise SystemExit(f"--sides: unknown {sorted(set(sides) - set(SIDES))}")
    sizes = [int(s) for s in a.naive_batch_size.split(",")]
    budgets = [int(s) for s in a.batch_tokens.split(",")]
    split = a.split or ("sample" if a.niv2.name == "niv2-sample" else "default")
    what = f"checkpoint {a.checkpoint}" if a.checkpoint else f"{a.model} (untuned)"
    print(f"# prediction throughput: {what} on {machine()}, {a.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        shards = build_shards(a.niv2, split, "test", Path(tmp) / "test", instances_per_task=a.instances_per_task,
                              limit_tasks=a.tasks)
        common = ["--model", a.model, "--max-source-length", str(a.max_source_length), "--max-new-tokens",
                  str(a.max_new_tokens), "--batch-tokens", str(budgets[0]), "--handover-every", str(a.handover_every),
                  "--device", a.device, "--threads", str(a.threads), "--shards", str(shards)]
        if a.checkpoint:
            common += ["--checkpoint", str(a.checkpoint)]
        else:
            common += ["--spec", json.dumps(materialise(PRESETS[a.model], Path(tmp) / "model"))]
        runs = []
        for side in sides:
            if side == "naive":
                runs += [(f"naive-b{n}", [*common, "--worker", side, "--naive-batch-size", str(n)]) for n in sizes]
            elif side == "ours" and len(budgets) > 1:
                runs += [(f"ours-t{n}", [*common, "--worker", side, "--batch-tokens", str(n)]) for n in budgets]
            else:
                runs.append((side, [*common, "--worker", side]))
        results = alternate(__file__, runs, a.repeats)
    print(f"data: {results[runs[0][0]][0]['instances']} test prompts ({a.niv2}, split {split}, first "
          f"{a.instances_per_task} instances per unseen task), source <= {a.max_source_length} tokens, <= "
          f"{a.max_new_tokens} new tokens; ours: budget {a.batch_tokens} tokens per batch; naive: "
          f"{', '.join(map(str, sizes))} prompts per batch; {a.repeats} runs per side, alternating")
    peak = bf16_peak(a.peak_tflops) if a.peak_tflops or a.device.startswith("cuda") else None
    rows = []
    for label, _ in runs:
        rs = results[label]
        texts = rs[0]["texts"]
        if any(x["texts"] != texts for x in rs[1:]):
            raise SystemExit(f"{label}: the runs decoded different outputs")
        r = {"side": label, "instances": rs[0]["instances"], "texts": texts,
             "inst_s": spread([x["instances"] / x["seconds"] for x in rs]), "seconds": spread([x["seconds"] for x in rs]),
             "start_rss_mib": spread([x["start_rss_mib"] for x in rs]) if rs[0]["start_rss_mib"] else None,
             "loop_rss_mib": spread([x["loop_rss_mib"] for x in rs]) if rs[0]["loop_rss_mib"] else None,
             "cuda_peak_mib": spread([x["cuda_peak_mib"] for x in rs]) if rs[0]["cuda_peak_mib"] else None}
        if label != "first-token":
            r["mean_output_tokens"] = rs[0]["output_tokens"] / max(1, rs[0]["instances"])
            r["distinct"] = len(set(texts))
            tokens = rs[0]["source_tokens"] + rs[0]["output_tokens"]
            r["mfu"] = spread([100 * 2 * x["params"] * tokens / x["seconds"] / peak for x in rs]) if peak else None
        rows.append(r)
    naive = [r for r in rows if r["side"].startswith("naive")]
    best = max(naive, key=lambda r: r["inst_s"]["median"]) if naive else None
    mine = [r for r in rows if r["side"].startswith("ours")]
    ours = max(mine, key=lambda r: r["inst_s"]["median"]) if mine else None
    if any(r["texts"] != ours["texts"] for r in mine):
        print("note: ours' budgets decoded different outputs")
    for r in rows:
        r["speedup"] = r["inst_s"]["median"] / best["inst_s"]["median"] if best else None
        if ours and r in naive:
            r["identical"] = f"{sum(x == y for x, y in zip(ours['texts'], r['texts']))}/{len(r['texts'])}"
    print_table(rows, [("side", "decoder", ""), ("instances", "instances", "d"), ("seconds", "seconds", ".1f"),
                       ("inst_s", "instances/s", ".2f"), ("speedup", "x best naive (medians)", ".2f"),
                       ("identical", "identical to ours", ""), ("distinct", "distinct outputs", "d"),
                       ("mean_output_tokens", "mean output tokens", ".1f"),
                       ("start_rss_mib", "RSS at start MiB", ".0f"), ("loop_rss_mib", "peak RSS MiB", ".0f"),
                       ("cuda_peak_mib", "peak GPU MiB", ".0f"), ("mfu", "MFU %", ".2f")])
    if best:
        print(f"best naive batch size: {best['side'].removeprefix('naive-b')}"
              + (f"; best ours: {ours['side']}; ours / best naive (medians): {ours['speedup']:.2f}x" if ours else ""))
    if ours and "first-token" in {r["side"] for r in rows}:
        first = next(r for r in rows if r["side"] == "first-token")
        share = 100 * first["seconds"]["median"] / ours["seconds"]["median"]
        print(f"first-token share of {ours['side']}' time: {share:.0f}%" + (
            f" (bound on any decoder over the best naive: {first['speedup']:.2f}x)" if best else ""))
    if ours:
        failed = []
        for r in naive:
            same = sum(x == y for x, y in zip(ours["texts"], r["texts"]))
            print(f"outputs identical ({ours['side']} vs {r['side']}): {same}/{len(ours['texts'])}")
            for x, y in [(x, y) for x, y in zip(ours["texts"], r["texts"]) if x != y][:3]:
                print(f"  differs: ours {x[:80]!r} | naive {y[:80]!r}")
            if same < a.min_identical * len(ours["texts"]):
                failed.append(r["side"])
        for text in sorted(set(ours["texts"]), key=ours["texts"].index)[:3]:
            print(f"  e.g. ours: {text[:100]!r}")
        if failed:
            raise SystemExit(f"outputs of {failed} differ from ours beyond --min-identical {a.min_identical}")


if __name__ == "__main__":
    main()
