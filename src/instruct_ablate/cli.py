"""Command line for the model stages outside Snakemake: ``instruct-ablate train|predict``.

The Snakemake rules call the same functions (:func:`instruct_ablate.train.train`,
:func:`instruct_ablate.predict.predict`); this entry point serves quick
experiments, debugging a single job, and the resumption tests, which kill a real
training process. Model specs and training settings take the keys of
``config.yaml`` (``models.<name>``, ``training``) as JSON or as a YAML/JSON file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _mapping(text: str, what: str) -> dict[str, Any]:
    """A JSON object given inline or as a path to a .json/.yaml file."""
    path = Path(text)
    if not text.lstrip().startswith("{") and path.is_file():
        import yaml

        value = yaml.safe_load(path.read_text())
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--{what}: neither a file nor valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise SystemExit(f"--{what}: expected a mapping, got {type(value).__name__}")
    return value


def _parser() -> argparse.ArgumentParser:
    from .settings import Checkpointing, DecodingSettings, TrainingConfig

    T, D, C = TrainingConfig, DecodingSettings, Checkpointing
    p = argparse.ArgumentParser(
        prog="instruct-ablate",
        description="Fine-tune on or predict from instruct-ablate prompt shards (the model stages of the workflow).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="instruction-tune a model on a variant's training shards",
        description="Fine-tune a model on prompt shards (results/prompts/<variant>/train). With --resume-dir the "
        "job saves its resume state there and a killed job, started again with the same arguments, resumes.",
    )
    t.add_argument("--shards", required=True, help="training prompt shard folder")
    t.add_argument("--out", required=True, help="checkpoint folder to write (atomically)")
    t.add_argument("--model", required=True, help='model spec as JSON or a YAML file, e.g. \'{"kind": "t5_random"}\'')
    t.add_argument("--training", default="{}", help="training settings (config.yaml's `training` keys) as JSON or file")
    t.add_argument("--instances-per-task", type=int, required=True, help="training instances per task")
    t.add_argument("--seed", type=int, default=1, help="training seed (new weights, batch order)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    t.add_argument("--resume-dir", default=None, help="folder for the resume state (off when left out)")
    t.add_argument("--checkpoint-every-steps", type=int, default=C.every_steps,
                   help="save the resume state every N steps (default %(default)s)")
    t.add_argument("--checkpoint-every-minutes", type=float, default=C.every_minutes,
                   help="... and/or every N minutes (default %(default)s)")
    t.add_argument("--log", default=None, help="also write the log to this file")

    q = sub.add_parser(
        "predict",
        help="greedy predictions for a variant's test shards",
        description="Greedy-decode every test prompt (results/prompts/<variant>/test) with a checkpoint.",
    )
    q.add_argument("--shards", required=True, help="test prompt shard folder")
    q.add_argument("--checkpoint", required=True, help="fine-tuned checkpoint folder")
    q.add_argument("--out", required=True, help="predictions Parquet file to write")
    q.add_argument("--max-source-length", type=int, default=T.max_source_length,
                   help="prompt tokens (capped by the model; default %(default)s)")
    q.add_argument("--max-new-tokens", type=int, default=D.max_new_tokens, help="NIv2: 128 (default %(default)s)")
    q.add_argument("--batch-tokens", type=int, default=D.batch_tokens,
                   help="rows x (longest prompt + max new tokens) (default %(default)s)")
    q.add_argument("--handover-every", type=int, default=D.handover_every,
                   help="straggler hand-over after N new tokens, 0: off (default %(default)s)")
    q.add_argument("--device", default=T.device, help="cpu | cuda | cuda:N | auto (default %(default)s)")
    q.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    q.add_argument("--log", default=None, help="also write the log to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage error, as argparse; 1 for a bad input,
    reported as one line naming the file or field, with the traceback only in ``--log``)."""
    args = _parser().parse_args(argv)
    from .io import USER_ERRORS, describe_error, log_failure, setup_logging

    setup_logging(args.log)
    try:
        return _run(args)
    except USER_ERRORS as exc:
        log_failure(exc)
        print(f"instruct-ablate {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return 1


def _run(args) -> int:
    if args.command == "train":
        from .settings import Checkpointing, TrainingConfig
        from .train import TrainingPreempted, train

        checkpointing = Checkpointing(args.checkpoint_every_steps, args.checkpoint_every_minutes)
        try:
            train(
                _mapping(args.model, "model"),
                args.shards,
                args.out,
                TrainingConfig.from_dict(_mapping(args.training, "training")),
                instances_per_task=args.instances_per_task,
                seed=args.seed,
                threads=args.threads,
                resume_dir=args.resume_dir,
                checkpointing=checkpointing,
            )
        except TrainingPreempted as exc:
            print(f"instruct-ablate train: {exc}", file=sys.stderr)
            return 128 + 15  # as a process ended by SIGTERM
    else:
        from .predict import predict

        predict(
            {"checkpoint": args.checkpoint},
            args.shards,
            args.out,
            max_source_length=args.max_source_length,
            max_new_tokens=args.max_new_tokens,
            batch_tokens=args.batch_tokens,
            handover_every=args.handover_every or None,
            device=args.device,
            threads=args.threads,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
