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

Validation (issue #12: no silent wrong data). Input that cannot be read as NIv2
raises :class:`NIv2FormatError`, whose message names the file and the line (split
lists) or the field with its instance or example index (``Instances[3].output[1]``).
Input that can be corrected without guessing is corrected *with a warning*: logged,
returned in ``IngestResult.warnings`` and kept in the task's ``ingest_notes`` column.
Corrected: a UTF-8 byte-order mark; an unknown top-level field (ignored); blank
(whitespace-only) references and the instances left with none (dropped: the staged
NIv2 copy has two, in task388_torque_token_classification); positive examples with
a blank input or output (dropped); a task listed in both the train and the test
split (dropped from training, or an error with ``train_test_overlap="error"``).
Warned about without a change: no positive examples (prompts show none), a label
used by fewer than ``min_instances_per_label`` instances or a constant task (both
typed generation, :mod:`instruct_ablate.labels`).
"""

from __future__ import annotations

import codecs
import difflib
import errno
import json
import logging
import os
import random
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

import polars as pl
from tqdm.auto import tqdm

from .io import stable_seed, write_table
from .labels import TypingRule, type_task
from .metrics import normalize_answer

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
    "ingest_notes": STRINGS,
}


class NIv2FormatError(ValueError):
    """A NIv2 file is missing or malformed.

    The message is ``<file>[, line L][, field F]: <problem>``; ``field`` is a path into the
    task's JSON that names the instance or example index (``Instances[3].output[1]``),
    ``line`` a line of a split list. The same parts are attributes (``path``, ``line``,
    ``field``, ``problem``).
    """

    def __init__(self, path: str | Path, field: str | None, problem: str, line: int | None = None):
        self.path = str(path)
        self.field = field
        self.line = line
        self.problem = problem
        super().__init__(_message(path, field, problem, line))


def _message(path: str | Path, field: str | None, problem: str, line: int | None = None) -> str:
    where = f"{path}" + (f", line {line}" if line is not None else "") + (f", field {field!r}" if field else "")
    return f"{where}: {problem}"


@dataclass(frozen=True)
class _Note:
    """A problem ingest corrected (a warning): where it is and what was done."""

    path: str
    field: str | None
    problem: str
    line: int | None = None

    def message(self) -> str:
        return _message(self.path, self.field, self.problem, self.line)

    def row_note(self) -> str:
        """The note as stored in the task's ``ingest_notes`` (the row names the task: no path)."""
        return (f"field {self.field!r}: " if self.field else "") + self.problem


_ABSENT = "absent"
_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _path_problem(path: Path, what: str) -> str | None:
    """``None`` for a regular file (or a link to one), :data:`_ABSENT`, or what is wrong with the path."""
    if not os.path.lexists(path):
        return _ABSENT
    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"is a symbolic link loop, not a {what}"
        if err.errno == errno.ENOENT and path.is_symlink():
            return f"is a broken symbolic link (its target {os.readlink(path)} does not exist)"
        return f"cannot be read ({err.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return f"is a directory, not a {what}"
    if not stat.S_ISREG(st.st_mode):
        return f"is not a regular file (a device, socket or pipe), not a {what}"
    return None


def _read_text(path: Path, what: str, notes: list[_Note]) -> str:
    """The UTF-8 text of a split list or task file; a UTF-8 byte-order mark is dropped with a note."""
    problem = _path_problem(path, what)
    if problem is not None:
        raise NIv2FormatError(path, None, f"{what} not found" if problem == _ABSENT else problem)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise NIv2FormatError(path, None, f"cannot be read ({err.strerror})") from None
    offset = 0
    if raw.startswith(_BOM):
        notes.append(_Note(str(path), None, "starts with a UTF-8 byte-order mark (BOM), ignored"))
        offset = len(_BOM)
    elif raw.startswith(_UTF16_BOMS):
        raise NIv2FormatError(path, None, "UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    try:
        return raw[offset:].decode("utf-8")
    except UnicodeDecodeError as err:
        at = offset + err.start
        line = raw[:at].count(b"\n") + 1
        raise NIv2FormatError(
            path, None, f"not UTF-8 text (byte 0x{raw[at]:02x} at offset {at}); save it as UTF-8", line=line
        ) from None


def _check_checkout(niv2_dir: Path, split: str) -> None:
    hint = "(expected a NIv2 checkout: a folder with splits/ and tasks/)"
    if not niv2_dir.exists():
        raise NIv2FormatError(niv2_dir, None, f"niv2_dir not found {hint}")
    if not niv2_dir.is_dir():
        raise NIv2FormatError(niv2_dir, None, f"niv2_dir is not a directory {hint}")
    split_dir = niv2_dir / "splits" / split
    if not split_dir.is_dir():
        present = sorted(p.name for p in (niv2_dir / "splits").iterdir() if p.is_dir()) if (niv2_dir / "splits").is_dir() else []
        here = f"splits here: {', '.join(present)}" if present else "no splits/ folder here"
        raise NIv2FormatError(split_dir, None, f"split {split!r} not found ({here})")


def _task_name_problem(name: str) -> str | None:
    """Why a split-list entry cannot name a file ``tasks/<name>.json``, or ``None``."""
    if name.endswith(".json"):
        return "drop the '.json'"
    for sep in ("/", "\\"):
        if sep in name:
            return f"it contains {sep!r}"
    if name in (".", ".."):
        return "it is a folder name"
    for ch in name:
        if ch.isspace():
            return "it contains whitespace"
        if unicodedata.category(ch)[0] == "C":
            return f"it contains the invisible character U+{ord(ch):04X}"
    return None


def _read_split_list(niv2_dir: Path, split: str, part: str, notes: list[_Note]) -> list[str]:
    path = niv2_dir / "splits" / split / f"{part}_tasks.txt"
    if not os.path.lexists(path):
        split_dir = path.parent
        held = sorted(p.name for p in split_dir.iterdir()) if split_dir.is_dir() else []
        what = f"splits/{split} holds: {', '.join(held)}" if held else f"is niv2_dir a NIv2 checkout and {split!r} a split?"
        raise NIv2FormatError(path, None, f"split list not found ({what})")
    text = _read_text(path, "split list", notes)
    names: list[str] = []
    first_line: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        problem = _task_name_problem(name)
        if problem is not None:
            raise NIv2FormatError(
                path, None, f"{name!r} is not a task name: {problem} (list the <name> of each tasks/<name>.json)", line=n
            )
        if name in first_line:
            raise NIv2FormatError(path, None, f"task {name!r} is listed twice (first on line {first_line[name]})", line=n)
        first_line[name] = n
        names.append(name)
    if not names:
        raise NIv2FormatError(path, None, "split list is empty")
    return names


def read_split_list(niv2_dir: str | Path, split: str, part: str) -> list[str]:
    """Task names of ``splits/<split>/<part>_tasks.txt`` in file order (blank lines and surrounding
    whitespace skipped; a UTF-8 byte-order mark is dropped with a logged warning).

    Raises ``ValueError`` for an unknown ``part`` and :class:`NIv2FormatError` if the file is
    absent, not a regular file, not UTF-8 text, empty, names a task twice or holds a line that
    cannot name a file ``tasks/<name>.json`` (a ``/``, a ``.json`` suffix, whitespace inside,
    an invisible character); line-level errors carry the line number.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    notes: list[_Note] = []
    names = _read_split_list(Path(niv2_dir), split, part, notes)
    for note in notes:
        log.warning("%s", note.message())
    return names


class _Obj(dict):
    """A JSON object that remembers the keys it was given more than once."""

    __slots__ = ("dups",)


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj(pairs)
    obj.dups = None
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.dups = []
        for k, _ in pairs:
            if k in seen:
                obj.dups.append(k)
            seen.add(k)
    return obj


def _no_dups(obj: dict, path: Path, where: str = "") -> None:
    dups = getattr(obj, "dups", None)
    if dups:
        raise NIv2FormatError(path, f"{where}{dups[0]}", "appears twice in one JSON object (a JSON reader keeps only the last)")


def _found(value: Any) -> str:
    """The JSON value's Python type name (``dict`` for a JSON object)."""
    return "dict" if isinstance(value, dict) else type(value).__name__


def _type_name(kind: type | tuple) -> str:
    return kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)


def _missing(obj: dict, key: str) -> str:
    """``missing``, with the likely intended key of ``obj`` when there is one."""
    for k in obj:
        if isinstance(k, str) and k.lower() == key.lower():
            return f"missing (the file has {k!r}: field names are case-sensitive)"
    close = difflib.get_close_matches(key, [k for k in obj if isinstance(k, str)], n=1, cutoff=0.8)
    return f"missing (the file has {close[0]!r}: a misspelling?)" if close else "missing"


def _require(obj: dict, key: str, kind: type | tuple, path: Path, where: str = "") -> Any:
    field = f"{where}{key}"
    if key not in obj:
        raise NIv2FormatError(path, field, _missing(obj, key))
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds):
        raise NIv2FormatError(path, field, f"expected {_type_name(kind)}, found {_found(value)}")
    return value


def _example_output(value: Any, path: Path, field: str) -> str:
    """A demonstration's output may be a string or a non-empty list of strings (the first is shown)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        for j, v in enumerate(value):
            if not isinstance(v, str):
                raise NIv2FormatError(path, f"{field}[{j}]", f"expected a string, found {_found(v)}")
        return value[0]
    found = "an empty list" if isinstance(value, list) else _found(value)
    raise NIv2FormatError(path, field, f"expected a string or a non-empty list of strings, found {found}")


def _examples(task: dict, key: str, path: Path, required: bool, notes: list[_Note], drop_blank: bool) -> list[dict]:
    if key not in task and not required:
        return []
    items = _require(task, key, list, path)
    out = []
    for i, ex in enumerate(items):
        where = f"{key}[{i}]."
        if not isinstance(ex, dict):
            raise NIv2FormatError(
                path, f"{key}[{i}]", f"expected an object with 'input' and 'output', found {_found(ex)}"
            )
        _no_dups(ex, path, where)
        example = {
            "input": _require(ex, "input", str, path, where),
            "output": _example_output(_require(ex, "output", object, path, where), path, f"{where}output"),
            "explanation": ex.get("explanation") if isinstance(ex.get("explanation"), str) else None,
        }
        if drop_blank:
            blank = next((k for k in ("input", "output") if not example[k].strip()), None)
            if blank is not None:
                notes.append(_Note(str(path), f"{where}{blank}", f"blank {blank}: demonstration dropped"))
                continue
        out.append(example)
    return out


def _str_list(task: dict, key: str, path: Path, required: bool = True) -> list[str]:
    if key not in task and not required:
        return []
    value = _require(task, key, list, path)
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise NIv2FormatError(path, f"{key}[{i}]", f"expected a string, found {_found(v)}")
    return value


#: The top-level fields of an allenai/natural-instructions task file (its tasks/README.md).
KNOWN_FIELDS = (
    "Contributors", "Source", "URL", "Categories", "Reasoning", "Definition", "Input_language",
    "Output_language", "Instruction_language", "Domains", "Positive Examples", "Negative Examples",
    "Instances", "Instance License",
)


def _instances(task: dict, path: Path, notes: list[_Note]) -> list[dict]:
    raw_instances = _require(task, "Instances", list, path)
    if not raw_instances:
        raise NIv2FormatError(path, "Instances", "no instances")
    instances = []
    first_of_id: dict[str, int] = {}
    for i, inst in enumerate(raw_instances):
        where = f"Instances[{i}]."
        if not isinstance(inst, dict):
            raise NIv2FormatError(
                path, f"Instances[{i}]", f"expected an object with 'id', 'input' and 'output', found {_found(inst)}"
            )
        _no_dups(inst, path, where)
        id_ = str(_require(inst, "id", (str, int), path, where))
        if not id_.strip():
            raise NIv2FormatError(path, f"{where}id", "empty id")
        if id_ in first_of_id:
            raise NIv2FormatError(
                path, f"{where}id", f"{id_!r} is also the id of Instances[{first_of_id[id_]}] (ids must be unique within a task)"
            )
        first_of_id[id_] = i
        input_ = _require(inst, "input", str, path, where)
        outputs = _require(inst, "output", (list, str), path, where)
        if isinstance(outputs, str):
            outputs = [outputs]
        if not outputs:
            raise NIv2FormatError(path, f"{where}output", "expected a non-empty list of reference strings")
        for j, o in enumerate(outputs):
            if not isinstance(o, str):
                raise NIv2FormatError(path, f"{where}output[{j}]", f"expected a string, found {_found(o)}")
        kept = [o for o in outputs if o.strip()]
        if not kept:
            notes.append(_Note(str(path), f"{where}output", "every reference is blank: instance dropped"))
            continue
        for j, o in enumerate(outputs):
            if not o.strip():
                notes.append(_Note(str(path), f"{where}output[{j}]", f"blank reference dropped ({len(kept)} other kept)"))
        instances.append({"index": i, "id": id_, "input": input_, "output": kept})
    if not instances:
        raise NIv2FormatError(path, "Instances", "every instance's references are blank")
    return instances


def _read_task(path: Path) -> tuple[dict, list[_Note]]:
    notes: list[_Note] = []
    text = _read_text(path, "task file", notes)
    if not text.strip():
        raise NIv2FormatError(path, None, "empty file (expected a JSON object)")
    try:
        task = json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as err:
        raise NIv2FormatError(path, None, f"invalid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except RecursionError:
        raise NIv2FormatError(path, None, "invalid JSON (nested too deeply)") from None
    if not isinstance(task, dict):
        raise NIv2FormatError(path, None, f"expected a JSON object at the top level, found {_found(task)}")
    _no_dups(task, path)
    for key in task:
        if key not in KNOWN_FIELDS:
            close = difflib.get_close_matches(key, KNOWN_FIELDS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            notes.append(_Note(str(path), key, f"unknown field, ignored{hint}"))

    definition = _require(task, "Definition", (list, str), path)
    if isinstance(definition, list):
        if not definition:
            raise NIv2FormatError(path, "Definition", "expected a non-empty list of strings")
        for i, d in enumerate(definition):
            if not isinstance(d, str):
                raise NIv2FormatError(path, f"Definition[{i}]", f"expected a string, found {_found(d)}")
        definition = definition[0]
    if not definition.strip():
        raise NIv2FormatError(path, "Definition", "empty task definition")
    categories = _str_list(task, "Categories", path)
    if not categories:
        raise NIv2FormatError(path, "Categories", "empty list (the task category is Categories[0])")
    n_in_file = len(_require(task, "Instances", list, path))
    instances = _instances(task, path, notes)
    license_ = task.get("Instance License", [])
    if isinstance(license_, list):
        license_ = ", ".join(_str_list(task, "Instance License", path, required=False))
    elif not isinstance(license_, str):
        raise NIv2FormatError(
            path, "Instance License", f"expected a string or a list of strings, found {_found(license_)}"
        )
    out = {
        "definition": definition,
        "categories": categories,
        "source": _str_list(task, "Source", path, required=False),
        "input_language": _str_list(task, "Input_language", path, required=False),
        "output_language": _str_list(task, "Output_language", path, required=False),
        "instruction_language": _str_list(task, "Instruction_language", path, required=False),
        "domains": _str_list(task, "Domains", path, required=False),
        "instance_license": license_,
        "positive_examples": _examples(task, "Positive Examples", path, True, notes, drop_blank=True),
        "negative_examples": _examples(task, "Negative Examples", path, False, notes, drop_blank=False),
        "instances": instances,
        "n_instances_in_file": n_in_file,
    }
    if not out["positive_examples"]:
        notes.append(_Note(str(path), "Positive Examples", "empty list: prompts of this task show no demonstration"))
    return out, notes


def read_task(path: str | Path) -> dict:
    """Load and validate one ``tasks/<task>.json``; return a normalised dict.

    Keys: ``definition`` (str, ``Definition[0]`` as Tk-Instruct takes it), ``categories``,
    ``source``, ``input_language``, ``output_language``, ``instruction_language``, ``domains``
    (list[str]), ``instance_license`` (str), ``positive_examples`` / ``negative_examples``
    (list of ``{input, output, explanation}``), ``instances`` (list of ``{index, id, input,
    output: list[str]}``, ``index`` being the position in the file), ``n_instances_in_file``
    (int) and ``notes`` (list[str]: the warnings below, each naming file and field).

    Raises :class:`NIv2FormatError` naming the file, and the field with its instance or
    example index, for: a path that is absent, a directory, a symbolic-link loop or broken
    link; a file that is empty, not UTF-8 (or UTF-16), not JSON, not a JSON object, or gives a
    key twice in one object; a missing or mistyped field (``Definition``, ``Categories``,
    ``Instances``, ``Positive Examples`` are required); an empty ``Definition``,
    ``Categories`` or ``Instances``; an instance without a non-empty id, with an id used
    by an earlier instance, or without reference strings; every instance's references blank.

    Corrected with a warning (``notes``): a UTF-8 byte-order mark (dropped); an unknown
    top-level field (ignored; a likely misspelling is named); a blank (whitespace-only)
    reference beside others (dropped); an instance whose references are all blank (dropped:
    a blank reference is no answer, as a label it would enter the label space and delusive
    demonstrations); a positive example with a blank input or output (dropped); no positive
    examples at all (kept, prompts show none). Negative examples are kept as written (NIv2
    has blank wrong answers, e.g. task922_event2mind_word_generation).
    """
    task, notes = _read_task(Path(path))
    for note in notes:
        log.warning("%s", note.message())
    return {**task, "notes": [n.message() for n in notes]}


def select_instances(
    task_name: str, n_available: int, n: int, part: str, seed: int, exclude: Collection[int] = ()
) -> list[int]:
    """Indices (file positions) of the instances kept, in rank order.

    ``test``: the positions ``range(min(n, n_available))`` (NIv2's ``Instances[:100]``)
    less ``exclude``. ``train``: a seeded permutation of all ``n_available`` positions,
    less ``exclude``, cut to its first ``n``; so samples of different sizes are nested
    (the sample of size ``k`` is a prefix of the sample of size ``n > k``), and excluding
    a position (an instance dropped at ingest) leaves the other instances' order as it
    was. The seed mixes ``seed`` and the task name, so a task's sample does not depend on
    which other tasks are ingested.
    """
    skip = set(exclude)
    if part == "test":
        return [i for i in range(min(n, n_available)) if i not in skip]
    rng = random.Random(stable_seed("instances", seed, task_name))
    order = list(range(n_available))
    rng.shuffle(order)
    return [i for i in order if i not in skip][:n]


@dataclass
class IngestResult:
    """What :func:`ingest_split` read.

    ``tasks`` (:data:`TASKS_SCHEMA`) and ``instances`` (task, id, input, references, rank);
    ``skipped``: listed tasks whose file is absent (``skip_missing``); ``overlap``: tasks
    listed in both the train and the test split list (dropped from ``train``);
    ``warnings``: every problem ingest corrected, one message each
    (``<file>[, line L][, field F]: <problem>``), also logged.
    """

    tasks: pl.DataFrame
    instances: pl.DataFrame
    skipped: list[str]
    overlap: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


OVERLAP_MODES = ("drop", "error")

#: Overlapping tasks named in a message (all are in ``IngestResult.overlap``).
MAX_NAMED = 20

#: Warnings of one task shown in the log (all are kept in the result and the ``ingest_notes`` column).
LOG_WARNINGS_PER_TASK = 5


def _overlap(
    niv2_dir: Path, split: str, part: str, names: list[str], mode: str, notes: list[_Note]
) -> list[str]:
    """The tasks of ``names`` also listed in the other part's split list (none when it is absent)."""
    other = "test" if part == "train" else "train"
    own_path = niv2_dir / "splits" / split / f"{part}_tasks.txt"
    other_path = niv2_dir / "splits" / split / f"{other}_tasks.txt"
    if not os.path.lexists(other_path):
        return []
    other_names = set(_read_split_list(niv2_dir, split, other, []))  # its own job reports its warnings
    both = [n for n in names if n in other_names]
    if not both:
        return both
    k = len(both)
    tasks = f"{k} task{'s' if k > 1 else ''}"
    named = ", ".join(both[:MAX_NAMED]) + (f" and {k - MAX_NAMED} more" if k > MAX_NAMED else "")
    if mode == "error":
        it = "them" if k > 1 else "it"
        raise NIv2FormatError(
            own_path,
            None,
            f"{tasks} also listed in {other_path} (train/test leakage): {named}; remove {it} from one list, "
            f"or let ingest drop {it} from training (train_test_overlap: drop)",
        )
    done = "dropped from training" if part == "train" else "kept here and dropped from training"
    notes.append(_Note(str(own_path), None, f"{tasks} also listed in {other_path}, {done} (train/test leakage): {named}"))
    return both


def _typing_notes(path: Path, typing, instances: list[dict], rule: TypingRule) -> list[_Note]:
    """Warnings for a task the rule typed generation although its outputs form a small closed set."""
    if typing.constant:
        label = instances[0]["output"][0].strip()
        return [_Note(str(path), "Instances", f"every instance has the same output {label!r}: typed generation "
                                              "(a single label is no classification task)")]
    notes = []
    for norm in typing.rare_labels:
        users = [inst for inst in instances if any(normalize_answer(r) == norm for r in inst["output"])]
        label = next(r.strip() for r in users[0]["output"] if normalize_answer(r) == norm)
        also = ", ".join(f"Instances[{u['index']}]" for u in users[1:])
        who = "this instance only" if len(users) == 1 else f"{len(users)} instances only (also {also})"
        notes.append(
            _Note(
                str(path),
                f"Instances[{users[0]['index']}].output",
                f"label {label!r} is used by {who}: classification needs every label used by "
                f">= {rule.min_instances_per_label:g} instances, so the task is typed generation (fix the output, "
                "or set the type in task_type_overrides.tsv)",
            )
        )
    return notes


def _log_notes(name: str, notes: list[_Note]) -> None:
    for note in notes[:LOG_WARNINGS_PER_TASK]:
        log.warning("%s", note.message())
    if len(notes) > LOG_WARNINGS_PER_TASK:
        log.warning(
            "%s: %d more warnings (see the ingest_notes column of the tasks table)",
            name, len(notes) - LOG_WARNINGS_PER_TASK,
        )


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
    train_test_overlap: str = "drop",
) -> IngestResult:
    """Read every task of ``splits/<split>/<part>_tasks.txt`` into two DataFrames.

    ``skip_missing``: skip (and log) tasks whose file is absent instead of raising
    :class:`NIv2FormatError`; a path that exists but is no readable file (a directory, a
    symbolic-link loop, a broken link) is an error either way. ``limit_tasks``: keep only
    the first ``k`` listed tasks (quick runs). The task type is decided on *all* the usable
    instances of the file, before sampling.

    ``train_test_overlap``: what to do with a task listed in both ``train_tasks.txt`` and
    ``test_tasks.txt`` (train/test leakage). ``"drop"`` (default): the ``train`` part
    leaves it out with a warning, the ``test`` part keeps it and records the overlap in the
    task's ``ingest_notes``; both list it in ``IngestResult.overlap``. ``"error"``: raise
    :class:`NIv2FormatError` naming the tasks. Checked against the whole other list (before
    ``limit_tasks``), and only where that list exists.

    Every problem corrected rather than raised (see :func:`read_task`, and the typing
    warnings: a label used by fewer than ``min_instances_per_label`` instances, a constant
    task; not given for tasks in ``typing_rule.overrides``) is logged (at most
    :data:`LOG_WARNINGS_PER_TASK` lines per task), returned in ``IngestResult.warnings``
    and stored in the task's ``ingest_notes`` column. Raises :class:`NIv2FormatError` for
    a malformed checkout, split list or task file (the message names file, line or field
    and instance index), ``ValueError`` for a bad ``part`` or ``train_test_overlap``.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    if train_test_overlap not in OVERLAP_MODES:
        raise ValueError(f"train_test_overlap must be 'drop' or 'error', not {train_test_overlap!r}")
    niv2_dir = Path(niv2_dir)
    _check_checkout(niv2_dir, split)
    list_notes: list[_Note] = []
    names = _read_split_list(niv2_dir, split, part, list_notes)
    list_path = niv2_dir / "splits" / split / f"{part}_tasks.txt"
    overlap = _overlap(niv2_dir, split, part, names, train_test_overlap, list_notes)
    if part == "train":
        names = [n for n in names if n not in set(overlap)]
    if limit_tasks is not None:
        names = names[:limit_tasks]
    for note in list_notes:
        log.warning("%s", note.message())
    warnings = [n.message() for n in list_notes]
    if not names:
        raise NIv2FormatError(
            list_path, None,
            "every listed task is also listed in the test split" if overlap else f"no task to ingest (limit_tasks={limit_tasks})",
        )

    tasks_dir = niv2_dir / "tasks"
    if not tasks_dir.is_dir():
        raise NIv2FormatError(tasks_dir, None, "tasks folder not found (expected tasks/<task>.json beside splits/)")
    skipped = []
    for n in names:
        problem = _path_problem(tasks_dir / f"{n}.json", "task file")
        if problem == _ABSENT:
            skipped.append(n)
        elif problem is not None:
            raise NIv2FormatError(tasks_dir / f"{n}.json", None, problem)
    if skipped and not skip_missing:
        raise NIv2FormatError(
            tasks_dir / f"{skipped[0]}.json",
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
    other_list = f"splits/{split}/train_tasks.txt"
    for name in tqdm(present, desc=f"ingest {part}", unit="task", mininterval=1.0):
        path = tasks_dir / f"{name}.json"
        t, notes = _read_task(path)
        usable = t["instances"]
        typing = type_task(name, t["definition"], (i["output"] for i in usable), typing_rule)
        if name not in typing_rule.overrides:
            notes += _typing_notes(path, typing, usable, typing_rule)
        _log_notes(name, notes)
        warnings += [n.message() for n in notes]
        row_notes = [n.row_note() for n in notes]
        if name in overlap and part == "test":
            row_notes.append(f"also listed in {other_list}: dropped from training (train/test leakage)")
        by_index = {inst["index"]: inst for inst in usable}
        dropped = set(range(t["n_instances_in_file"])) - set(by_index)
        keep = select_instances(name, t["n_instances_in_file"], instances_per_task, part, seed, exclude=dropped)
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
                "n_instances_in_file": t["n_instances_in_file"],
                "n_instances_kept": len(keep),
                "task_type": typing.task_type,
                "label_space": typing.label_space,
                "n_distinct_outputs": typing.n_distinct_outputs,
                "labels_in_definition": typing.labels_in_definition,
                "typing_rule": typing.rule,
                "ingest_notes": row_notes,
            }
        )
        for rank, idx in enumerate(keep):
            inst = by_index[idx]
            inst_rows.append(
                {"task": name, "id": inst["id"], "input": inst["input"], "references": inst["output"], "rank": rank}
            )
    tasks = pl.DataFrame(task_rows, schema=TASKS_SCHEMA)
    instances = pl.DataFrame(
        inst_rows,
        schema={"task": pl.String, "id": pl.String, "input": pl.String, "references": pl.List(pl.String), "rank": pl.Int32},
    )
    log.info(
        "%s/%s: %d tasks (%d classification, %d generation), %d instances, %d warnings%s",
        split, part, tasks.height, int((tasks["task_type"] == "classification").sum()),
        int((tasks["task_type"] == "generation").sum()), instances.height, len(warnings),
        f", {len(overlap)} tasks also in the other split" if overlap else "",
    )
    return IngestResult(tasks=tasks, instances=instances, skipped=skipped, overlap=overlap, warnings=warnings)


def write_ingest(result: IngestResult, tasks_path: str | Path, instances_path: str | Path) -> None:
    """Write both tables atomically (Parquet)."""
    write_table(result.tasks, tasks_path)
    write_table(result.instances, instances_path)
