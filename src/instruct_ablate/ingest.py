"""Read a Super-NaturalInstructions checkout into Parquet tables.

Layout followed (allenai/natural-instructions): ``splits/<split>/{train,test}_tasks.txt``
list task names, one per line; ``tasks/<task>.json`` holds ``Definition`` (list of
one string), ``Categories``, ``Source``, ``Positive Examples`` / ``Negative Examples``
(lists of ``{input, output, explanation}``) and ``Instances`` (``{id, input, output:
[str, ...]}``).

Two tables per split part (``train`` = seen tasks, ``test`` = unseen tasks):

* **tasks**: one row per task (name, definition, categories, ..., demonstrations as
  list-of-struct, task type and label space from :mod:`instruct_ablate.labels`);
* **instances**: one row per kept instance (task, id, input, references, rank).

Instance selection: test tasks keep their first ``n`` instances (NIv2's official
evaluation set is ``Instances[:100]``, ``eval/leaderboard/create_reference_file.py``);
training tasks keep a seeded random sample of ``n`` (as Tk-Instruct's
``max_num_instances_per_task``). ``rank`` is the instance's position in that
selection, so the first ``k`` ranks of a training task are a seeded sample of
size ``k`` and samples of different sizes are nested.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from .io import stable_seed, write_table
from .labels import TypingRule, type_task

__all__ = [
    "NIv2FormatError",
    "read_split_list",
    "read_task",
    "select_instances",
    "ingest_split",
    "write_ingest",
    "EXAMPLE_DTYPE",
    "TASKS_SCHEMA",
]

log = logging.getLogger("instruct_ablate.ingest")

PARTS = ("train", "test")

EXAMPLE_DTYPE = pl.List(pl.Struct({"input": pl.String, "output": pl.String, "explanation": pl.String}))


STRINGS = pl.List(pl.String)

TASKS_SCHEMA = {
    "task": pl.String,
    "part": pl.String,
    "definition": pl.String,
    "categories": STRINGS,
    "category": pl.String,
    "source": STRINGS,
    "input_language": STRINGS,
    "output_language": STRINGS,
    "instruction_language": STRINGS,
    "domains": STRINGS,
    "instance_license": pl.String,
    "positive_examples": EXAMPLE_DTYPE,
    "negative_examples": EXAMPLE_DTYPE,
    "n_instances_in_file": pl.Int64,
    "n_instances_kept": pl.Int64,
    "task_type": pl.String,
    "label_space": STRINGS,
    "n_distinct_outputs": pl.Int64,
    "labels_in_definition": STRINGS,
    "typing_rule": pl.String,
}


class NIv2FormatError(ValueError):
    """A NIv2 file is missing or malformed; the message names the file and the field."""

    def __init__(self, path: str | Path, field: str | None, problem: str):
        self.path = str(path)
        self.field = field
        where = f"{path}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")


def read_split_list(niv2_dir: str | Path, split: str, part: str) -> list[str]:
    """Task names of ``splits/<split>/<part>_tasks.txt`` in file order (blank lines skipped).

    Raises :class:`NIv2FormatError` if the file is absent, empty, or names a task twice.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    path = Path(niv2_dir) / "splits" / split / f"{part}_tasks.txt"
    if not path.is_file():
        raise NIv2FormatError(path, None, f"split list not found (is niv2_dir a NIv2 checkout and {split!r} a split?)")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise NIv2FormatError(path, None, "split list is empty")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise NIv2FormatError(path, None, f"task {name!r} is listed twice")
        seen.add(name)
    return names


def _require(obj: dict, key: str, kind: type | tuple, path: Path, where: str = "") -> Any:
    field = f"{where}{key}"
    if key not in obj:
        raise NIv2FormatError(path, field, "missing")
    value = obj[key]
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise NIv2FormatError(path, field, f"expected {want}, found {type(value).__name__}")
    return value


def _text(value: Any, path: Path, field: str) -> str:
    """A demonstration's output may be a string or a list of strings (first taken)."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value[0]
    if isinstance(value, str):
        return value
    raise NIv2FormatError(path, field, f"expected a string, found {type(value).__name__}")


def _examples(task: dict, key: str, path: Path, required: bool) -> list[dict]:
    if key not in task and not required:
        return []
    items = _require(task, key, list, path)
    out = []
    for i, ex in enumerate(items):
        where = f"{key}[{i}]."
        if not isinstance(ex, dict):
            raise NIv2FormatError(path, f"{key}[{i}]", "expected an object with 'input' and 'output'")
        out.append(
            {
                "input": _require(ex, "input", str, path, where),
                "output": _text(_require(ex, "output", (str, list), path, where), path, f"{where}output"),
                "explanation": ex.get("explanation") if isinstance(ex.get("explanation"), str) else None,
            }
        )
    return out


def _str_list(task: dict, key: str, path: Path, required: bool = True) -> list[str]:
    if key not in task and not required:
        return []
    value = _require(task, key, list, path)
    if not all(isinstance(v, str) for v in value):
        raise NIv2FormatError(path, key, "expected a list of strings")
    return value


def read_task(path: str | Path) -> dict:
    """Load and validate one ``tasks/<task>.json``; return a normalised dict.

    Keys: ``definition`` (str), ``categories``, ``source``, ``input_language``,
    ``output_language``, ``instruction_language``, ``domains`` (list[str]),
    ``instance_license`` (str), ``positive_examples`` / ``negative_examples``
    (list of ``{input, output, explanation}``), ``instances`` (list of
    ``{id, input, output: list[str]}``).

    Raises :class:`NIv2FormatError` naming the file and field for a missing
    file, invalid JSON, a missing or mistyped field, an empty ``Instances`` or
    ``Definition``, or an instance without reference outputs.
    """
    path = Path(path)
    if not path.is_file():
        raise NIv2FormatError(path, None, "task file not found")
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise NIv2FormatError(path, None, f"invalid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    except UnicodeDecodeError as err:
        raise NIv2FormatError(path, None, f"not UTF-8 text ({err})") from err
    if not isinstance(task, dict):
        raise NIv2FormatError(path, None, "expected a JSON object at the top level")

    definition = _require(task, "Definition", (list, str), path)
    if isinstance(definition, list):
        if not definition or not isinstance(definition[0], str):
            raise NIv2FormatError(path, "Definition", "expected a non-empty list of strings")
        definition = definition[0]
    if not definition.strip():
        raise NIv2FormatError(path, "Definition", "empty task definition")
    categories = _str_list(task, "Categories", path)
    if not categories:
        raise NIv2FormatError(path, "Categories", "empty list (the task category is Categories[0])")

    raw_instances = _require(task, "Instances", list, path)
    if not raw_instances:
        raise NIv2FormatError(path, "Instances", "no instances")
    instances = []
    for i, inst in enumerate(raw_instances):
        where = f"Instances[{i}]."
        if not isinstance(inst, dict):
            raise NIv2FormatError(path, f"Instances[{i}]", "expected an object")
        outputs = _require(inst, "output", (list, str), path, where)
        if isinstance(outputs, str):
            outputs = [outputs]
        if not outputs or not all(isinstance(o, str) for o in outputs):
            raise NIv2FormatError(path, f"{where}output", "expected a non-empty list of reference strings")
        instances.append(
            {
                "id": str(_require(inst, "id", (str, int), path, where)),
                "input": _require(inst, "input", str, path, where),
                "output": outputs,
            }
        )
    license_ = task.get("Instance License", [])
    return {
        "definition": definition,
        "categories": categories,
        "source": _str_list(task, "Source", path, required=False),
        "input_language": _str_list(task, "Input_language", path, required=False),
        "output_language": _str_list(task, "Output_language", path, required=False),
        "instruction_language": _str_list(task, "Instruction_language", path, required=False),
        "domains": _str_list(task, "Domains", path, required=False),
        "instance_license": ", ".join(license_) if isinstance(license_, list) else str(license_),
        "positive_examples": _examples(task, "Positive Examples", path, required=True),
        "negative_examples": _examples(task, "Negative Examples", path, required=False),
        "instances": instances,
    }


def select_instances(task_name: str, n_available: int, n: int, part: str, seed: int) -> list[int]:
    """Indices of the instances kept, in rank order.

    ``test``: ``range(min(n, n_available))`` (NIv2's ``Instances[:100]``).
    ``train``: the first ``min(n, n_available)`` indices of a seeded permutation of
    all instances, so samples of different sizes are nested (the sample of size
    ``k`` is a prefix of the sample of size ``n > k``). The seed mixes ``seed`` and
    the task name, so a task's sample does not depend on which other tasks are
    ingested.
    """
    k = min(n, n_available)
    if part == "test":
        return list(range(k))
    rng = random.Random(stable_seed("instances", seed, task_name))
    order = list(range(n_available))
    rng.shuffle(order)
    return order[:k]


@dataclass
class IngestResult:
    tasks: pl.DataFrame
    instances: pl.DataFrame
    skipped: list[str]


def ingest_split(
    niv2_dir: str | Path,
    split: str,
    part: str,
    *,
    instances_per_task: int,
    seed: int = 42,
    skip_missing: bool = False,
    typing_rule: TypingRule = TypingRule(),
    limit_tasks: int | None = None,
) -> IngestResult:
    """Read every task of ``splits/<split>/<part>_tasks.txt`` into two DataFrames.

    ``skip_missing``: skip (and log) tasks whose file is absent instead of
    raising :class:`NIv2FormatError`. ``limit_tasks``: keep only the first
    ``k`` listed tasks (quick runs). The task type is decided on *all* the
    instances of the file, before sampling.
    """
    niv2_dir = Path(niv2_dir)
    names = read_split_list(niv2_dir, split, part)
    if limit_tasks is not None:
        names = names[:limit_tasks]
    list_path = niv2_dir / "splits" / split / f"{part}_tasks.txt"
    skipped = [n for n in names if not (niv2_dir / "tasks" / f"{n}.json").is_file()]
    if skipped and not skip_missing:
        raise NIv2FormatError(
            niv2_dir / "tasks" / f"{skipped[0]}.json",
            None,
            f"task listed in {list_path} but its file is absent ({len(skipped)} of {len(names)} absent; "
            "set skip_missing_tasks: true to skip them)",
        )
    if skipped:
        log.warning(
            "%s/%s: skipping %d of %d listed tasks whose file is absent: %s",
            split, part, len(skipped), len(names), ", ".join(skipped),
        )
    task_rows, inst_rows = [], []
    present = [n for n in names if n not in set(skipped)]
    if not present:
        raise NIv2FormatError(list_path, None, "no listed task has a file under tasks/")
    for name in tqdm(present, desc=f"ingest {part}", unit="task", mininterval=1.0):
        t = read_task(niv2_dir / "tasks" / f"{name}.json")
        typing = type_task(name, t["definition"], (i["output"] for i in t["instances"]), typing_rule)
        keep = select_instances(name, len(t["instances"]), instances_per_task, part, seed)
        task_rows.append(
            {
                "task": name,
                "part": part,
                "definition": t["definition"],
                "categories": t["categories"],
                "category": t["categories"][0],
                "source": t["source"],
                "input_language": t["input_language"],
                "output_language": t["output_language"],
                "instruction_language": t["instruction_language"],
                "domains": t["domains"],
                "instance_license": t["instance_license"],
                "positive_examples": t["positive_examples"],
                "negative_examples": t["negative_examples"],
                "n_instances_in_file": len(t["instances"]),
                "n_instances_kept": len(keep),
                "task_type": typing.task_type,
                "label_space": typing.label_space,
                "n_distinct_outputs": typing.n_distinct_outputs,
                "labels_in_definition": typing.labels_in_definition,
                "typing_rule": typing.rule,
            }
        )
        for rank, idx in enumerate(keep):
            inst = t["instances"][idx]
            inst_rows.append(
                {"task": name, "id": inst["id"], "input": inst["input"], "references": inst["output"], "rank": rank}
            )
    tasks = pl.DataFrame(task_rows, schema=TASKS_SCHEMA)
    instances = pl.DataFrame(
        inst_rows,
        schema={"task": pl.String, "id": pl.String, "input": pl.String, "references": pl.List(pl.String), "rank": pl.Int32},
    )
    log.info(
        "%s/%s: %d tasks (%d classification, %d generation), %d instances",
        split, part, tasks.height, int((tasks["task_type"] == "classification").sum()),
        int((tasks["task_type"] == "generation").sum()), instances.height,
    )
    return IngestResult(tasks=tasks, instances=instances, skipped=skipped)


def write_ingest(result: IngestResult, tasks_path: str | Path, instances_path: str | Path) -> None:
    """Write both tables atomically (Parquet)."""
    write_table(result.tasks, tasks_path)
    write_table(result.instances, instances_path)
