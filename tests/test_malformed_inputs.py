"""Malformed NIv2 input, as a new user writes it by hand (issue #12): every kind and the message it gives.

Each case builds a tiny checkout (``conftest.niv2_factory``), runs :func:`ingest_split` on it and
expects either

* ``error``: :class:`NIv2FormatError` (never another exception, never a traceback-only failure) whose
  message is exactly ``<file>[, line L][, field F]: <problem>``, the field naming the instance or
  example index (``Instances[3].output[1]``); or
* ``warning``: the input is accepted, the data are corrected as documented (``check``), and the
  message is in ``IngestResult.warnings`` (and the log); warnings about one task are also in its
  ``ingest_notes`` column.

The README's "What ingest checks" lists the same cases.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import polars as pl
import pytest

from instruct_ablate.ingest import NIv2FormatError, ingest_split, read_task

YN = "task001_toy_yes_no"
GEN = "task002_toy_generation"
TASK = f"tasks/{YN}.json"
TEST_LIST = "splits/toy/test_tasks.txt"
TRAIN_LIST = "splits/toy/train_tasks.txt"


@dataclass
class Case:
    id: str
    build: Callable[..., Any]  # (niv2_factory, niv2_task, tmp_path) -> root | (root, part, kwargs)
    kind: str  # "error" | "warning"
    file: str  # relative to the checkout root ("" = the root itself)
    problem: str  # "{root}" stands for the checkout root
    field: str | None = None
    line: int | None = None
    check: Callable[[Any], None] | None = None


def expected_message(root: Path, case: Case) -> str:
    where = str(root / case.file) if case.file else str(root)
    if case.line is not None:
        where += f", line {case.line}"
    if case.field is not None:
        where += f", field {case.field!r}"
    return f"{where}: {case.problem.format(root=root)}"


# --------------------------------------------------------------------------- builders


def task(mutate: Callable[[dict], Any], kind: str = "yesno"):
    """A checkout whose only (unseen) task is the toy task changed by ``mutate`` (in place or returned)."""

    def build(factory, make, tmp_path):
        t = make(kind)
        t = mutate(t) or t
        return factory(test={YN: t})

    return build


def raw_task(content: str | bytes):
    """A checkout whose task file holds ``content`` verbatim."""

    def build(factory, make, tmp_path):
        root = factory(test={YN: make()})
        path = root / TASK
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return root

    return build


def raw_list(content: bytes, task_names=(YN,)):
    """A checkout whose unseen split list holds ``content`` verbatim."""

    def build(factory, make, tmp_path):
        root = factory(test={n: make() for n in task_names})
        (root / TEST_LIST).write_bytes(content)
        return root

    return build


def task_path_replaced(replace: Callable[[Path], None], **kwargs):
    """A checkout whose task file is replaced by ``replace(path)`` (a directory, a link, ...)."""

    def build(factory, make, tmp_path):
        root = factory(test={YN: make()})
        path = root / TASK
        path.unlink()
        replace(path)
        return root, "test", kwargs

    return build


def set_at(*steps_and_value):
    """``set_at("Instances", 3, "output", [""])``: set a nested value."""
    *steps, last, value = steps_and_value

    def mutate(t):
        obj = t
        for s in steps:
            obj = obj[s]
        obj[last] = value

    return mutate


def delete_at(*steps):
    *steps, last = steps

    def mutate(t):
        obj = t
        for s in steps:
            obj = obj[s]
        del obj[last]

    return mutate


def rename_key(old: str, new: str):
    return lambda t: {(new if k == old else k): v for k, v in t.items()}


def with_duplicate_key(text_of_task: Callable[[dict], str]):
    def build(factory, make, tmp_path):
        root = factory(test={YN: make()})
        (root / TASK).write_text(text_of_task(make()), encoding="utf-8")
        return root

    return build


def _duplicate_instances_key(t: dict) -> str:
    body = json.dumps(t)[:-1]  # drop the closing brace
    return body + ', "Instances": ' + json.dumps(t["Instances"][:2]) + "}"


def _duplicate_output_key_in_instance_2(t: dict) -> str:
    text = json.dumps(t)
    inst = json.dumps(t["Instances"][2])
    return text.replace(inst, inst[:-1] + ', "output": ["No"]}')


def overlap(**kwargs):
    def build(factory, make, tmp_path):
        root = factory(train={YN: make(), GEN: make("generation")}, test={YN: make()})
        kw = dict(kwargs)
        return root, kw.pop("part", "train"), kw

    return build


# --------------------------------------------------------------------------- checks of accepted input


def check_blank_only_reference(res):
    """Instances[3] (the only reference blank) is dropped; the label space has no blank label."""
    assert res.instances["id"].to_list() == ["yn-0", "yn-1", "yn-2", "yn-4"]
    row = res.tasks.row(0, named=True)
    assert row["n_instances_in_file"] == 12 and row["n_instances_kept"] == 4
    assert row["task_type"] == "classification" and row["label_space"] == ["Yes", "No"]
    assert row["ingest_notes"] == ["field 'Instances[3].output': every reference is blank: instance dropped"]


def check_blank_beside_others(res):
    assert res.instances.filter(pl.col("id") == "yn-3")["references"].to_list() == [["No"]]
    assert res.tasks["label_space"].to_list() == [["Yes", "No"]]


def check_positive_example_dropped(res):
    assert [e["input"] for e in res.tasks["positive_examples"][0]] == ["Is 4 even?"]


def check_no_positive_examples(res):
    assert res.tasks["positive_examples"].to_list() == [[]]


def check_generation(res):
    row = res.tasks.row(0, named=True)
    assert row["task_type"] == "generation" and row["label_space"] == []


def check_bom_list(res):
    assert res.tasks["task"].to_list() == [YN]


def check_bom_task(res):
    assert res.tasks["definition"].to_list() == ["Answer 'Yes' if the number is even and 'No' otherwise"]


def check_dropped_from_training(res):
    assert res.tasks["task"].to_list() == [GEN]
    assert set(res.instances["task"]) == {GEN}
    assert res.overlap == [YN]


def check_kept_in_test(res):
    assert res.tasks["task"].to_list() == [YN] and res.overlap == [YN]
    assert res.tasks["ingest_notes"].to_list() == [
        [f"also listed in {TRAIN_LIST}: dropped from training (train/test leakage)"]
    ]


def check_unknown_field(res):
    assert res.tasks["negative_examples"].to_list() == [[]]


def _stray_label(t):
    t["Instances"][11]["output"] = ["Maybee"]


def _all_blank(t):
    for inst in t["Instances"]:
        inst["output"] = [""]


def _constant(t):
    for inst in t["Instances"]:
        inst["output"] = ["Yes"]


def _symlink_loop(path: Path):
    other = path.with_name("loop.json")
    os.symlink(other.name, path)
    os.symlink(path.name, other)


def _broken_symlink(path: Path):
    os.symlink("elsewhere/task001.json", path)


def _absent_root(factory, make, tmp_path):
    return tmp_path / "no-such-checkout"


def _file_root(factory, make, tmp_path):
    root = tmp_path / "checkout.zip"
    root.write_text("not a folder")
    return root


def _unknown_split(factory, make, tmp_path):
    return factory(test={YN: make()}), "test", {}, "nosuch"


def _list_absent(factory, make, tmp_path):
    return factory(train={YN: make()})


def _list_is_dir(factory, make, tmp_path):
    root = factory(train={YN: make()})
    (root / TEST_LIST).mkdir()
    return root


def _tasks_dir_absent(factory, make, tmp_path):
    root = factory(test={YN: make()})
    (root / TASK).unlink()
    (root / "tasks").rmdir()
    return root


def _all_absent(factory, make, tmp_path):
    return factory(test={"task404_a": None, "task404_b": None}), "test", {"skip_missing": True}


def _one_absent(factory, make, tmp_path):
    return factory(test={YN: make(), "task404_absent": None})


E = "error"
W = "warning"
TRUNCATED = '{"Definition": ["x"], '
DEF_NO = "Answer 'Yes' if the number is even and 'No' otherwise"

CASES = [
    # --- the checkout and its split lists
    Case("niv2_dir absent", _absent_root, E, "",
         "niv2_dir not found (expected a NIv2 checkout: a folder with splits/ and tasks/)"),
    Case("niv2_dir is a file", _file_root, E, "",
         "niv2_dir is not a directory (expected a NIv2 checkout: a folder with splits/ and tasks/)"),
    Case("unknown split", _unknown_split, E, "splits/nosuch", "split 'nosuch' not found (splits here: toy)"),
    Case("split list absent", _list_absent, E, TEST_LIST, "split list not found (splits/toy holds: train_tasks.txt)"),
    Case("split list is a directory", _list_is_dir, E, TEST_LIST, "is a directory, not a split list"),
    Case("split list empty", raw_list(b""), E, TEST_LIST, "split list is empty"),
    Case("split list of blank lines", raw_list(b"\n  \n\t\n"), E, TEST_LIST, "split list is empty"),
    Case("split list not UTF-8", raw_list(YN.encode() + b"\ncaf\xe9\n"), E, TEST_LIST,
         "not UTF-8 text (byte 0xe9 at offset 22); save it as UTF-8", line=2),
    Case("split list in UTF-16", raw_list(YN.encode("utf-16")), E, TEST_LIST,
         "UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"),
    Case("split list with a BOM", raw_list(b"\xef\xbb\xbf" + YN.encode() + b"\n"), W, TEST_LIST,
         "starts with a UTF-8 byte-order mark (BOM), ignored", check=check_bom_list),
    Case("task listed twice", raw_list(f"{YN}\n{GEN}\n{YN}\n".encode(), (YN, GEN)), E, TEST_LIST,
         f"task {YN!r} is listed twice (first on line 1)", line=3),
    Case("task name with a folder", raw_list(b"sub/task001\n"), E, TEST_LIST,
         "'sub/task001' is not a task name: it contains '/' (list the <name> of each tasks/<name>.json)", line=1),
    Case("task name with .json", raw_list(f"{YN}.json\n".encode()), E, TEST_LIST,
         f"'{YN}.json' is not a task name: drop the '.json' (list the <name> of each tasks/<name>.json)", line=1),
    Case("task name with a space", raw_list(b"task001 toy\n"), E, TEST_LIST,
         "'task001 toy' is not a task name: it contains whitespace (list the <name> of each tasks/<name>.json)",
         line=1),
    Case("task name with an invisible character", raw_list(f"{GEN}\n{YN}\u200b\n".encode()), E, TEST_LIST,
         f"'{YN}\\u200b' is not a task name: it contains the invisible character U+200B "
         "(list the <name> of each tasks/<name>.json)", line=2),
    Case("listed task file absent", _one_absent, E, "tasks/task404_absent.json",
         f"task listed in {{root}}/{TEST_LIST} but its file is absent (1 of 2 absent; "
         "set skip_missing_tasks: true to skip them)"),
    Case("no listed task file present", _all_absent, E, TEST_LIST, "no listed task has a file under tasks/"),
    Case("tasks folder absent", _tasks_dir_absent, E, "tasks",
         "tasks folder not found (expected tasks/<task>.json beside splits/)"),
    Case("task in both splits", overlap(), W, TRAIN_LIST,
         f"1 task also listed in {{root}}/{TEST_LIST}, dropped from training (train/test leakage): {YN}",
         check=check_dropped_from_training),
    Case("task in both splits, seen from the test part", overlap(part="test"), W, TEST_LIST,
         f"1 task also listed in {{root}}/{TRAIN_LIST}, kept here and dropped from training "
         f"(train/test leakage): {YN}", check=check_kept_in_test),
    Case("task in both splits, overlap an error", overlap(train_test_overlap="error"), E, TRAIN_LIST,
         f"1 task also listed in {{root}}/{TEST_LIST} (train/test leakage): {YN}; remove it from one list, "
         "or let ingest drop it from training (train_test_overlap: drop)"),
    # --- files that are not readable task files
    Case("task file is a directory", task_path_replaced(Path.mkdir, skip_missing=True), E, TASK,
         "is a directory, not a task file"),
    Case("task file is a symlink loop", task_path_replaced(_symlink_loop, skip_missing=True), E, TASK,
         "is a symbolic link loop, not a task file"),
    Case("task file is a broken symlink", task_path_replaced(_broken_symlink, skip_missing=True), E, TASK,
         "is a broken symbolic link (its target elsewhere/task001.json does not exist)"),
    Case("empty task file", raw_task(""), E, TASK, "empty file (expected a JSON object)"),
    Case("truncated JSON", raw_task(TRUNCATED), E, TASK,
         "invalid JSON (Expecting property name enclosed in double quotes at line 1, column 23)"),
    Case("JSON syntax error", raw_task('{\n  "Definition": ["x"],\n  oops\n}'), E, TASK,
         "invalid JSON (Expecting property name enclosed in double quotes at line 3, column 3)"),
    Case("top-level list", raw_task("[1, 2, 3]"), E, TASK, "expected a JSON object at the top level, found list"),
    Case("task file not UTF-8", raw_task(b'{"Definition": ["caf\xe9"]}'), E, TASK,
         "not UTF-8 text (byte 0xe9 at offset 20); save it as UTF-8", line=1),
    Case("task file with a BOM", lambda f, m, p: _bom_task(f, m), W, TASK,
         "starts with a UTF-8 byte-order mark (BOM), ignored", check=check_bom_task),
    Case("key twice in the task", with_duplicate_key(_duplicate_instances_key), E, TASK,
         "appears twice in one JSON object (a JSON reader keeps only the last)", field="Instances"),
    Case("key twice in an instance", with_duplicate_key(_duplicate_output_key_in_instance_2), E, TASK,
         "appears twice in one JSON object (a JSON reader keeps only the last)", field="Instances[2].output"),
    Case("unknown field", task(rename_key("Negative Examples", "Negative Example")), W, TASK,
         "unknown field, ignored (did you mean 'Negative Examples'?)", field="Negative Example",
         check=check_unknown_field),
    # --- Definition
    Case("missing Definition", task(delete_at("Definition")), E, TASK, "missing", field="Definition"),
    Case("Definition in lower case", task(rename_key("Definition", "definition")), E, TASK,
         "missing (the file has 'definition': field names are case-sensitive)", field="Definition"),
    Case("empty Definition list", task(set_at("Definition", [])), E, TASK,
         "expected a non-empty list of strings", field="Definition"),
    Case("blank Definition", task(set_at("Definition", ["   "])), E, TASK, "empty task definition",
         field="Definition"),
    Case("Definition mistyped", task(set_at("Definition", 3)), E, TASK, "expected list or str, found int",
         field="Definition"),
    Case("Definition with a non-string", task(set_at("Definition", [DEF_NO, 2])), E, TASK,
         "expected a string, found int", field="Definition[1]"),
    # --- Instances
    Case("missing Instances", task(delete_at("Instances")), E, TASK, "missing", field="Instances"),
    Case("Instances misspelt", task(rename_key("Instances", "Instance")), E, TASK,
         "missing (the file has 'Instance': a misspelling?)", field="Instances"),
    Case("empty Instances", task(set_at("Instances", [])), E, TASK, "no instances", field="Instances"),
    Case("Instances mistyped", task(set_at("Instances", {"id": 1})), E, TASK, "expected list, found dict",
         field="Instances"),
    Case("instance not an object", task(set_at("Instances", 2, ["yn-2", "Is 2 even?", ["Yes"]])), E, TASK,
         "expected an object with 'id', 'input' and 'output', found list", field="Instances[2]"),
    Case("instance without id", task(delete_at("Instances", 1, "id")), E, TASK, "missing",
         field="Instances[1].id"),
    Case("instance id mistyped", task(set_at("Instances", 1, "id", True)), E, TASK,
         "expected str or int, found bool", field="Instances[1].id"),
    Case("blank instance id", task(set_at("Instances", 2, "id", " ")), E, TASK, "empty id",
         field="Instances[2].id"),
    Case("duplicate instance id", task(set_at("Instances", 5, "id", "yn-1")), E, TASK,
         "'yn-1' is also the id of Instances[1] (ids must be unique within a task)", field="Instances[5].id"),
    Case("instance without input", task(delete_at("Instances", 0, "input")), E, TASK, "missing",
         field="Instances[0].input"),
    Case("instance input mistyped", task(set_at("Instances", 0, "input", 7)), E, TASK,
         "expected str, found int", field="Instances[0].input"),
    Case("instance without output", task(delete_at("Instances", 1, "output")), E, TASK, "missing",
         field="Instances[1].output"),
    Case("instance output mistyped", task(set_at("Instances", 0, "output", {"text": "Yes"})), E, TASK,
         "expected list or str, found dict", field="Instances[0].output"),
    Case("instance with no reference", task(set_at("Instances", 3, "output", [])), E, TASK,
         "expected a non-empty list of reference strings", field="Instances[3].output"),
    Case("non-string reference", task(set_at("Instances", 0, "output", ["Yes", 3])), E, TASK,
         "expected a string, found int", field="Instances[0].output[1]"),
    Case("blank reference, the only one", task(set_at("Instances", 3, "output", ["  "])), W, TASK,
         "every reference is blank: instance dropped", field="Instances[3].output",
         check=check_blank_only_reference),
    Case("blank reference beside others", task(set_at("Instances", 3, "output", ["No", ""])), W, TASK,
         "blank reference dropped (1 other kept)", field="Instances[3].output[1]", check=check_blank_beside_others),
    Case("every reference blank", task(_all_blank), E, TASK,
         "every instance's references are blank", field="Instances"),
    # --- Categories and other metadata
    Case("Categories not a list", task(set_at("Categories", "Answer Verification")), E, TASK,
         "expected list, found str", field="Categories"),
    Case("Categories of non-strings", task(set_at("Categories", [1])), E, TASK, "expected a string, found int",
         field="Categories[0]"),
    Case("empty Categories", task(set_at("Categories", [])), E, TASK,
         "empty list (the task category is Categories[0])", field="Categories"),
    Case("Domains mistyped", task(set_at("Domains", "Mathematics")), E, TASK, "expected list, found str",
         field="Domains"),
    Case("Instance License mistyped", task(set_at("Instance License", {"name": "MIT"})), E, TASK,
         "expected a string or a list of strings, found dict", field="Instance License"),
    # --- demonstrations
    Case("missing Positive Examples", task(delete_at("Positive Examples")), E, TASK, "missing",
         field="Positive Examples"),
    Case("Positive Examples mistyped", task(set_at("Positive Examples", {"input": "x"})), E, TASK,
         "expected list, found dict", field="Positive Examples"),
    Case("example not an object", task(set_at("Positive Examples", 0, "Is 4 even? Yes")), E, TASK,
         "expected an object with 'input' and 'output', found str", field="Positive Examples[0]"),
    Case("example without input", task(delete_at("Positive Examples", 1, "input")), E, TASK, "missing",
         field="Positive Examples[1].input"),
    Case("example without output", task(delete_at("Positive Examples", 0, "output")), E, TASK, "missing",
         field="Positive Examples[0].output"),
    Case("example output an empty list", task(set_at("Positive Examples", 0, "output", [])), E, TASK,
         "expected a string or a non-empty list of strings, found an empty list", field="Positive Examples[0].output"),
    Case("example output mistyped", task(set_at("Positive Examples", 0, "output", 1)), E, TASK,
         "expected a string or a non-empty list of strings, found int", field="Positive Examples[0].output"),
    Case("blank example output", task(set_at("Positive Examples", 1, "output", " ")), W, TASK,
         "blank output: demonstration dropped", field="Positive Examples[1].output",
         check=check_positive_example_dropped),
    Case("blank example input", task(set_at("Positive Examples", 1, "input", "")), W, TASK,
         "blank input: demonstration dropped", field="Positive Examples[1].input",
         check=check_positive_example_dropped),
    Case("no positive examples", task(set_at("Positive Examples", [])), W, TASK,
         "empty list: prompts of this task show no demonstration", field="Positive Examples",
         check=check_no_positive_examples),
    Case("Negative Examples mistyped", task(set_at("Negative Examples", "none")), E, TASK,
         "expected list, found str", field="Negative Examples"),
    # --- data that parse but would give wrong numbers
    Case("label used once", task(_stray_label), W, TASK,
         "label 'Maybee' is used by this instance only: classification needs every label used by >= 2 "
         "instances, so the task is typed generation (fix the output, or set the type in "
         "task_type_overrides.tsv)", field="Instances[11].output", check=check_generation),
    Case("constant task", task(_constant), W, TASK,
         "every instance has the same output 'Yes': typed generation (a single label is no classification task)",
         field="Instances", check=check_generation),
]


def _bom_task(factory, make):
    root = factory(test={YN: make()})
    (root / TASK).write_bytes(b"\xef\xbb\xbf" + json.dumps(make()).encode("utf-8"))
    return root


def test_the_suite_holds_at_least_25_kinds_of_malformed_input():
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_gives_its_message(case, niv2_factory, niv2_task, tmp_path, caplog):
    built = case.build(niv2_factory, niv2_task, tmp_path)
    if not isinstance(built, tuple):
        built = (built, "test", {})
    root, part, kwargs, split = (*built, "toy")[:4]
    message = expected_message(root, case)
    run = lambda: ingest_split(root, split, part, instances_per_task=5, **kwargs)  # noqa: E731
    if case.kind == "error":
        with pytest.raises(NIv2FormatError) as err:
            run()
        assert str(err.value) == message
        assert err.value.field == case.field and err.value.line == case.line
        assert err.value.path == (str(root / case.file) if case.file else str(root))
        return
    with caplog.at_level("WARNING", logger="instruct_ablate.ingest"):
        res = run()
    assert message in res.warnings, res.warnings
    assert message in caplog.text
    case.check(res)


# --------------------------------------------------------------------------- beyond single messages


def test_a_blank_reference_never_becomes_a_label_or_a_delusive_demonstration(niv2_factory, niv2_task):
    """Issue #12: a whitespace-only reference became a label and then an empty delusive demonstration."""
    from instruct_ablate.prompts import render_variant
    from instruct_ablate.variants import VariantSpec

    t = niv2_task("yesno")
    for k in (1, 5, 9):
        t["Instances"][k]["output"] = [" "]
    root = niv2_factory(test={YN: t})
    res = ingest_split(root, "toy", "test", instances_per_task=100)
    assert res.tasks["label_space"].to_list() == [["Yes", "No"]]
    assert res.tasks["n_instances_kept"].to_list() == [9]
    assert all(r.strip() for refs in res.instances["references"] for r in refs)
    spec = VariantSpec("delusive", "original", 2, "delusive", "permuted_labels")
    for seed in range(10):
        _, audit = render_variant(res.tasks, res.instances, spec, seed=seed)
        assert all(d["output"].strip() for d in audit["demonstrations_shown"][0])


def test_punctuation_only_references_are_kept(niv2_factory, niv2_task):
    """A reference such as ',' is not blank (NIv2 has them, e.g. task382_hybridqa_answer_generation): kept."""
    t = niv2_task("generation")
    t["Instances"][0]["output"] = [","]
    res = ingest_split(niv2_factory(test={GEN: t}), "toy", "test", instances_per_task=2)
    assert res.instances["references"].to_list()[0] == [","] and res.warnings == []


def test_dropped_instances_keep_the_other_instances_sample(niv2_factory, niv2_task):
    """Dropping an instance (blank references) does not reshuffle the training sample of the others:
    the sample is the seeded permutation of the file's positions with the dropped ones left out."""
    clean = niv2_factory(train={GEN: niv2_task("generation")})
    t = niv2_task("generation")
    t["Instances"][7]["output"] = [""]
    broken = niv2_factory(train={GEN: t})
    a = ingest_split(clean, "toy", "train", instances_per_task=40, seed=3).instances["id"].to_list()
    b = ingest_split(broken, "toy", "train", instances_per_task=40, seed=3).instances["id"].to_list()
    assert b == [i for i in a if i != "gen-7"]
    small = ingest_split(broken, "toy", "train", instances_per_task=10, seed=3).instances["id"].to_list()
    assert small == b[:10]  # nested samples stay nested


def test_overlap_with_an_unknown_mode_is_refused(niv2_factory, niv2_task):
    root = niv2_factory(test={YN: niv2_task()})
    with pytest.raises(ValueError, match="train_test_overlap must be 'drop' or 'error', not 'warn'"):
        ingest_split(root, "toy", "test", instances_per_task=5, train_test_overlap="warn")


def test_an_overridden_task_is_not_warned_about(niv2_factory, niv2_task):
    """A constant task the reviewer typed in the overrides file gives no typing warning."""
    from instruct_ablate.labels import TypingRule

    t = niv2_task("yesno")
    _constant(t)
    res = ingest_split(niv2_factory(test={YN: t}), "toy", "test", instances_per_task=5,
                       typing_rule=TypingRule(overrides={YN: "generation"}))
    assert res.warnings == [] and res.tasks["ingest_notes"].to_list() == [[]]


def test_many_warnings_of_one_task_are_logged_in_short(niv2_factory, niv2_task, caplog):
    """All warnings are kept (result and ingest_notes); the log shows 5 per task and a count of the rest."""
    t = niv2_task("generation")
    for k in range(12):
        t["Instances"][k]["output"] = [""]
    with caplog.at_level("WARNING", logger="instruct_ablate.ingest"):
        res = ingest_split(niv2_factory(test={GEN: t}), "toy", "test", instances_per_task=100)
    assert len(res.warnings) == 12 and len(res.tasks["ingest_notes"][0]) == 12
    assert caplog.text.count("every reference is blank") == 5
    assert f"{GEN}: 7 more warnings (see the ingest_notes column of the tasks table)" in caplog.text


def test_read_task_reports_absent_and_non_file_paths(tmp_path):
    with pytest.raises(NIv2FormatError, match="task file not found"):
        read_task(tmp_path / "nope.json")
    (tmp_path / "d.json").mkdir()
    with pytest.raises(NIv2FormatError, match="is a directory, not a task file"):
        read_task(tmp_path / "d.json")


def test_a_training_list_wholly_inside_the_test_list_is_an_error(niv2_factory, niv2_task):
    """Pointing both lists at the same tasks leaves nothing to train on: said, not an empty table."""
    tasks = {f"task{k:03d}_t": niv2_task() for k in range(25)}
    root = niv2_factory(train=tasks, test=tasks)
    with pytest.raises(NIv2FormatError, match="every listed task is also listed in the test split"):
        ingest_split(root, "toy", "train", instances_per_task=2)
    res = ingest_split(root, "toy", "test", instances_per_task=2)
    assert res.overlap == list(tasks) and len(res.warnings) == 1
    assert res.warnings[0].endswith(", task019_t and 5 more")  # the first 20 named, all in res.overlap
