# Config validation, path helpers and the slices of config each rule depends on.
# Each rule's params hold exactly the config its output depends on, so Snakemake's
# params trigger reruns only what a config change makes stale.

import json
import os
from pathlib import Path

from snakemake.utils import validate


def _yaml_overrides(cfg, schema_file):
    """Read ``--config key=value`` strings as YAML where the schema wants no string, so that
    ``--config skip_missing_tasks=true`` and ``--config seeds=[1,2]`` validate as a bool and a list
    (Snakemake passes the first as a string and splits the second into strings).
    """
    import yaml

    def parse(key, value):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(
                f"--config {key}={value}: not valid YAML ({exc})"
            ) from None

    props = yaml.safe_load(open(schema_file))["properties"]
    for key, value in list(cfg.items()):
        want = props.get(key, {})
        if isinstance(value, str) and want.get("type") not in (None, "string"):
            cfg[key] = parse(key, value)
        elif isinstance(value, list) and want.get("items", {}).get("type") not in (
            None,
            "string",
        ):
            cfg[key] = [parse(key, v) if isinstance(v, str) else v for v in value]


_yaml_overrides(config, os.path.join(workflow.basedir, "schemas", "config.schema.yaml"))
validate(config, "../schemas/config.schema.yaml")

# The package's code digests (params of every rule); read from the repository where Snakemake's
# Python does not have the package installed.
try:
    from instruct_ablate import settings
    from instruct_ablate.provenance import code_digest
    from instruct_ablate.sources import source_problem
except ImportError:
    import sys

    sys.path.insert(0, os.path.join(workflow.basedir, "src"))
    from instruct_ablate import settings
    from instruct_ablate.provenance import code_digest
    from instruct_ablate.sources import source_problem

# Every model source resolves, before any job runs (a typo fails here, naming the key).
for _m, _spec in config["models"].items():
    for _key in ("pretrained", "decoder", "tokenizer"):
        if _spec.get(_key):
            _problem = source_problem(
                _spec[_key], _spec.get("gguf_file") if _key == "pretrained" else None
            )
            if _problem:
                raise ValueError(f"config.yaml: models.{_m}.{_key}: {_problem}")

for _v in (
    config["training_variants"]
    + config["evaluation"]["untuned"]
    + [v for vs in config["evaluation"]["extra"].values() for v in vs]
):
    if _v not in config["variants"]:
        raise ValueError(
            f"config.yaml: variant {_v!r} is used but not defined under 'variants'"
        )
for _v in config["evaluation"]["extra"]:
    if _v not in config["training_variants"]:
        raise ValueError(
            f"config.yaml: evaluation.extra.{_v}: not one of training_variants"
        )

R = config["results_dir"]
SEP = "[A-Za-z0-9][A-Za-z0-9_.-]*"


wildcard_constraints:
    part="train|test",
    variant=SEP,
    eval_variant=SEP,
    model=SEP,
    n=r"\d+",
    seed=r"\d+",


def code(script):
    """Digest of the package code a rule's script runs (its imports, transitively): a param of the
    rule, so an edit to that code reruns the rule and what depends on it, and nothing else.
    """
    return code_digest(os.path.join(workflow.basedir, "workflow_scripts", script))


def workflow_path(path):
    """A config path: a relative one is tried against the working directory, then the workflow folder."""
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (Path(workflow.basedir) / p).exists():
        p = Path(workflow.basedir) / p
    return str(p)


def niv2_dir():
    """The NIv2 checkout."""
    return workflow_path(config["niv2_dir"])


def split_list(part):
    return os.path.join(niv2_dir(), "splits", config["split"], f"{part}_tasks.txt")


def task_files(wildcards):
    """The task files of a split part that exist (absent ones fail or are skipped in the ingest job)."""
    files = [
        os.path.join(niv2_dir(), "tasks", f"{n}.json")
        for n in split_tasks(wildcards.part)
    ]
    return [f for f in files if os.path.exists(f)]


def other_split_list(wildcards):
    """The other part's split list (ingest drops a task listed in both from training): an input, so
    editing either list reruns both ingest jobs."""
    other = split_list("test" if wildcards.part == "train" else "train")
    return [other] if os.path.isfile(other) else []


def overrides_file():
    """The reviewed task-type overrides file, or [] when none is configured."""
    f = config["task_typing"].get("overrides_file")
    return [workflow_path(f)] if f else []


def split_tasks(part):
    """The task names a split part lists (after ``data.limit_<part>_tasks``). A list that cannot be
    read (absent, a folder, not UTF-8) gives what can be read: the ingest job then says what is wrong.
    """
    try:
        with open(split_list(part), encoding="utf-8", errors="replace") as f:
            names = [l.strip().lstrip("\ufeff") for l in f if l.strip()]
    except OSError:
        return []
    limit = config["data"].get(f"limit_{part}_tasks")
    return names[:limit] if limit else names


def skipped_tasks(part):
    """The listed tasks whose file is absent and that ``skip_missing_tasks`` skips ([] when nothing is
    missing or skipping is off: then an absent file fails the ingest job). A param of ingest in place of
    the flag, so ``skip_missing_tasks: true`` with nothing missing reruns nothing."""
    if not config["skip_missing_tasks"]:
        return []
    return [
        n
        for n in split_tasks(part)
        if not os.path.exists(os.path.join(niv2_dir(), "tasks", f"{n}.json"))
    ]


def ingest_params(part):
    d = config["data"]
    n = d["test_instances_per_task"] if part == "test" else max(d["instances_per_task"])
    return {
        "niv2_dir": niv2_dir(),
        "split": config["split"],
        "instances_per_task": n,
        "seed": config["seed"] if part == "train" else None,
        "skipped": skipped_tasks(part),
        "train_test_overlap": config["train_test_overlap"],
        "limit_tasks": d.get(f"limit_{part}_tasks"),
        "typing": {
            k: v for k, v in config["task_typing"].items() if k != "overrides_file"
        },
    }


def prompt_seed(variant, part):
    """The data seed where it changes a variant's shards: training targets (one of an instance's references,
    drawn per instance) and delusive demonstrations. Unseen tasks' shards of other variants do not depend
    on it (their targets are the first reference), so a new seed does not rerun their predictions.
    """
    delusive = (
        config["variants"][variant].get("demonstrations", {}).get("kind") == "delusive"
    )
    return config["seed"] if part == "train" or delusive else None


def simplified_templates(variant):
    """The simplified-definition templates, only for variants that show simplified definitions."""
    if config["variants"][variant]["definition"] == "simplified":
        return config["simplified_definition"]
    return {}


def model_spec(model):
    """The model's source spec (without its training overrides)."""
    return {k: v for k, v in config["models"][model].items() if k != "training"}


def training_config(model):
    return {**config["training"], **config["models"][model].get("training", {})}


def training_settings(model):
    """The model's training settings with every default filled in (``instruct_ablate.settings``)."""
    return settings.TrainingConfig.from_dict(training_config(model))


for _m in config["models"]:
    try:
        training_settings(_m)
    except ValueError as exc:
        raise ValueError(f"config.yaml: models.{_m}: {exc}") from None


def uses_gpu(model):
    return training_settings(model).device.startswith("cuda")


def job_resource(kind, key):
    """A job's resource from ``resources.<kind>``, else its default (``settings.RESOURCES``)."""
    return (
        config["resources"]
        .get(kind, {})
        .get(key, getattr(settings.RESOURCES[kind], key))
    )


def random_init_seed(model):
    """The seed of an untuned model's newly drawn weights, or None for a model loaded whole."""
    kind = config["models"][model]["kind"]
    return (
        config["seed"]
        if kind in ("t5_random", "llama_random", "encoder_decoder")
        else None
    )


def decoding_params(model):
    """What a prediction depends on: decoding length, source length, device, dtype, attention. The
    batching settings (``DecodingSettings.BATCHING_ONLY``) give identical predictions: the script reads
    them from the config, so changing them reruns nothing."""
    t = training_settings(model)
    d = settings.DecodingSettings.from_dict(config["decoding"])
    return {
        "max_new_tokens": d.max_new_tokens,
        "max_source_length": t.max_source_length,
        "device": t.device,
        "bf16": t.bf16,
        "attn_implementation": config["models"][model].get("attn_implementation"),
    }


def evaluation_pairs():
    """(training variant, evaluation variant) pairs: each model on its own variant, plus evaluation.extra."""
    pairs = [(v, v) for v in config["training_variants"]]
    for tv, evs in config["evaluation"]["extra"].items():
        pairs += [(tv, ev) for ev in evs if (tv, ev) not in pairs]
    return pairs


BASELINES = ["random", "majority"]


def run_paths():
    """Every run's path below predictions/ and metrics/ (no suffix)."""
    runs = [f"baselines/{b}" for b in BASELINES]
    for m in config["models"]:
        for ev in config["evaluation"]["untuned"]:
            runs.append(f"{m}/untuned/{ev}")
        for n in config["data"]["instances_per_task"]:
            for s in config["seeds"]:
                for tv, ev in evaluation_pairs():
                    runs.append(f"{m}/{tv}/n{n}/seed{s}/{ev}")
    return runs


def run_identity(run):
    """model, train_variant, instances_per_task, seed, eval_variant of a run path."""
    parts = run.split("/")
    if parts[0] == "baselines":
        return {
            "model": "baseline",
            "train_variant": parts[1],
            "instances_per_task": 0,
            "seed": (
                config["seed"] if parts[1] == "random" else 0
            ),  # the majority baseline draws nothing
            "eval_variant": "-",
        }
    if len(parts) == 3:
        return {
            "model": parts[0],
            "train_variant": "untuned",
            "instances_per_task": 0,
            "seed": 0,
            "eval_variant": parts[2],
        }
    m, tv, n, s, ev = parts
    return {
        "model": m,
        "train_variant": tv,
        "instances_per_task": int(n[1:]),
        "seed": int(s[4:]),
        "eval_variant": ev,
    }


def report_study():
    """The study the claims are read against: its models, sizes and the untuned model's default evaluation variant."""
    return {
        "models": list(config["models"]),
        "instances_per_task": config["data"]["instances_per_task"],
        "untuned_eval": (config["evaluation"]["untuned"] or ["original"])[0],
    }


def report_outputs():
    return [
        f"{R}/audit/tasks.csv",
        f"{R}/audit/random_expected.csv",
        f"{R}/report/summary.md",
        f"{R}/report/summary.csv",
        f"{R}/report/provenance.csv",
        f"{R}/report/scores.png",
        f"{R}/report/categories.png",
        f"{R}/report/claims.md",
        f"{R}/report/claims.csv",
        f"{R}/report/forest.png",
        f"{R}/report/curves.png",
        f"{R}/report/eval_variant_effects.png",
        f"{R}/report/task_shifts.png",
    ]
