"""Tests of instruct_ablate.ingest (NIv2 checkout -> tables) and instruct_ablate.io.atomic_path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from instruct_ablate.ingest import (
    EXAMPLE_DTYPE,
    NIv2FormatError,
    ingest_split,
    read_split_list,
    read_task,
    select_instances,
)
from instruct_ablate.io import atomic_path, write_table
from instruct_ablate.labels import TypingRule

#: The real partial NIv2 copy that sits beside the repository clone (``<root>/../shared/niv2``).
SHARED_NIV2 = Path(__file__).resolve().parents[2] / "shared" / "niv2"

YN = "task001_toy_yes_no"
GEN = "task002_toy_generation"

TASK_COLUMNS = [
    "task", "part", "definition", "categories", "category", "source", "input_language",
    "output_language", "instruction_language", "domains", "instance_license",
    "positive_examples", "negative_examples", "n_instances_in_file", "n_instances_kept",
    "task_type", "label_space", "n_distinct_outputs", "labels_in_definition", "typing_rule", "ingest_notes",
]


@pytest.fixture
def toy_checkout(niv2_factory, niv2_task):
    """A checkout whose unseen (test) tasks are a Yes/No task and a generation task."""
    return niv2_factory(test={YN: niv2_task("yesno"), GEN: niv2_task("generation")})


@pytest.fixture
def train_checkout(niv2_factory, niv2_task):
    """A checkout with the same two tasks as seen (train) tasks and no test list (a task listed in both
    lists would be dropped from training: tests/test_malformed_inputs.py)."""
    return niv2_factory(train={YN: niv2_task("yesno"), GEN: niv2_task("generation")})


# --------------------------------------------------------------------------- happy path


def test_tables_have_the_documented_columns_and_dtypes(toy_checkout):
    """Both tables have a fixed column set; nested columns are typed (list-of-struct, list of strings)."""
    res = ingest_split(toy_checkout, "toy", "test", instances_per_task=5)
    assert res.tasks.columns == TASK_COLUMNS
    schema = res.tasks.schema
    assert schema["task"] == pl.String
    assert schema["categories"] == pl.List(pl.String)
    assert schema["category"] == pl.String
    assert schema["positive_examples"] == EXAMPLE_DTYPE
    assert schema["negative_examples"] == EXAMPLE_DTYPE
    assert schema["label_space"] == pl.List(pl.String)
    assert schema["n_instances_kept"].is_integer()
    assert res.instances.schema == pl.Schema(
        {"task": pl.String, "id": pl.String, "input": pl.String, "references": pl.List(pl.String), "rank": pl.Int32}
    )
    assert res.tasks["task"].to_list() == [YN, GEN]  # split-list order
    assert res.skipped == []


def test_task_row_content(toy_checkout, niv2_task):
    """Definition, categories (category = Categories[0]), examples as structs, licence, typing."""
    res = ingest_split(toy_checkout, "toy", "test", instances_per_task=5)
    yn = res.tasks.row(0, named=True)
    assert yn["part"] == "test"
    assert yn["definition"] == "Answer 'Yes' if the number is even and 'No' otherwise"  # Definition[0]
    assert yn["categories"] == ["Answer Verification", "Mathematics"]
    assert yn["category"] == "Answer Verification"
    assert yn["domains"] == ["Mathematics"]
    assert yn["instance_license"] == "Apache 2.0"
    assert yn["positive_examples"] == [
        {"input": "Is 4 even?", "output": "Yes", "explanation": "4 is divisible by 2."},
        {"input": "Is 7 even?", "output": "No", "explanation": "7 is odd."},
    ]
    assert yn["negative_examples"] == [{"input": "Is 8 even?", "output": "No", "explanation": "Wrong: 8 is even."}]
    assert yn["n_instances_in_file"] == 12 and yn["n_instances_kept"] == 5
    assert yn["task_type"] == "classification" and yn["label_space"] == ["Yes", "No"]
    assert yn["labels_in_definition"] == ["Yes", "No"]

    gen = res.tasks.row(1, named=True)
    assert gen["definition"] == "Write one sentence describing the given number."  # a plain string works too
    assert gen["negative_examples"] == []  # optional field
    assert gen["input_language"] == [] and gen["instance_license"] == ""
    assert gen["task_type"] == "generation" and gen["label_space"] == []


def test_references_are_lists_and_a_string_output_becomes_a_one_element_list(niv2_factory, niv2_task):
    """``references`` holds every reference output; an instance whose ``output`` is a string gets [output]."""
    task = niv2_task("yesno")
    task["Instances"][0]["output"] = ["Yes", "yes, it is"]
    task["Instances"][1]["output"] = "No"
    task["Instances"][2]["id"] = 77  # integer ids are kept as strings
    root = niv2_factory(test={YN: task})
    inst = ingest_split(root, "toy", "test", instances_per_task=3).instances
    assert inst["references"].to_list() == [["Yes", "yes, it is"], ["No"], ["Yes"]]
    assert inst["id"].to_list() == ["yn-0", "yn-1", "77"]


def test_demonstration_output_list_takes_its_first_string(niv2_factory, niv2_task):
    """A positive example whose output is a list of strings shows the first one; no explanation -> null."""
    task = niv2_task("yesno", Positive__Examples=[{"input": "Is 2 even?", "output": ["Yes", "Indeed"]}])
    res = ingest_split(niv2_factory(test={YN: task}), "toy", "test", instances_per_task=1)
    assert res.tasks["positive_examples"].to_list() == [[{"input": "Is 2 even?", "output": "Yes", "explanation": None}]]


def test_test_tasks_keep_their_first_instances_in_order(toy_checkout):
    """Unseen tasks keep Instances[:n] (NIv2's evaluation set), ranked 0..n-1 in file order."""
    inst = ingest_split(toy_checkout, "toy", "test", instances_per_task=5).instances
    yn = inst.filter(pl.col("task") == YN)
    assert yn["id"].to_list() == [f"yn-{i}" for i in range(5)]
    assert yn["rank"].to_list() == list(range(5))
    assert yn["input"].to_list() == [f"Is {i} even?" for i in range(5)]


def test_test_tasks_with_fewer_instances_than_asked_keep_all(toy_checkout):
    """n larger than the file keeps every instance (min(n, available))."""
    res = ingest_split(toy_checkout, "toy", "test", instances_per_task=100)
    assert res.tasks["n_instances_kept"].to_list() == [12, 40]
    counts = dict(res.instances.group_by("task").len().iter_rows())
    assert counts == {YN: 12, GEN: 40}


def _train_ids(root, seed, n, task=GEN):
    inst = ingest_split(root, "toy", "train", instances_per_task=n, seed=seed).instances
    rows = inst.filter(pl.col("task") == task).sort("rank")
    assert rows["rank"].to_list() == list(range(rows.height))
    return rows["id"].to_list()


def test_training_sample_is_seeded(train_checkout):
    """Seen tasks take a random sample: the same seed gives the same ids, another seed other ids."""
    a = _train_ids(train_checkout, seed=1, n=10)
    assert a == _train_ids(train_checkout, seed=1, n=10)
    assert a != _train_ids(train_checkout, seed=2, n=10)
    assert len(set(a)) == 10 and set(a) <= {f"gen-{i}" for i in range(40)}
    assert a != [f"gen-{i}" for i in range(10)]  # not simply the first instances


def test_training_ranks_follow_the_sample_order(train_checkout):
    """rank k holds the k-th index drawn by select_instances (not the file order of the drawn
    instances), so the first k ranks are themselves a random sample and not biased to early instances."""
    drawn = select_instances(GEN, 40, 10, "train", 42)
    assert drawn != sorted(drawn)
    assert _train_ids(train_checkout, seed=42, n=10) == [f"gen-{i}" for i in drawn]


def test_training_sample_does_not_depend_on_other_tasks(niv2_factory, niv2_task):
    """A task's sample mixes only (seed, task name): adding or reordering other tasks leaves it unchanged."""
    alone = niv2_factory(train={GEN: niv2_task("generation")})
    with_other = niv2_factory(train={YN: niv2_task("yesno"), GEN: niv2_task("generation")})
    assert _train_ids(alone, seed=42, n=10) == _train_ids(with_other, seed=42, n=10)


def test_training_samples_of_different_sizes_are_nested():
    """Module docstring: 'the first k ranks of a training task are a seeded sample of size k and
    samples of different sizes are nested', i.e. select(n=5) == select(n=10)[:5] for every task."""
    for t in range(30):
        small = select_instances(f"task_{t}", 30, 5, "train", 42)
        large = select_instances(f"task_{t}", 30, 10, "train", 42)
        assert small == large[:5], f"task_{t}: {small} vs {large[:5]}"


def test_select_instances_contract():
    """test part: range(min(n, available)); train part: min(n, available) distinct indices in range."""
    assert select_instances("t", 7, 100, "test", 0) == list(range(7))
    assert select_instances("t", 300, 100, "test", 0) == list(range(100))
    sample = select_instances("t", 50, 20, "train", 0)
    assert len(sample) == len(set(sample)) == 20 and all(0 <= i < 50 for i in sample)
    assert sorted(select_instances("t", 6, 100, "train", 0)) == list(range(6))


def test_task_type_is_decided_on_all_instances_before_sampling(niv2_factory, niv2_task):
    """Keeping a single instance does not turn a Yes/No task into a generation task with one label."""
    root = niv2_factory(test={YN: niv2_task("yesno")})
    task = ingest_split(root, "toy", "test", instances_per_task=1).tasks.row(0, named=True)
    assert task["task_type"] == "classification"
    assert task["label_space"] == ["Yes", "No"] and task["n_distinct_outputs"] == 2


def test_typing_rule_and_limit_tasks_are_applied(toy_checkout):
    """The typing rule's overrides reach the table; limit_tasks keeps the first k listed tasks."""
    rule = TypingRule(overrides={YN: "generation"})
    res = ingest_split(toy_checkout, "toy", "test", instances_per_task=2, typing_rule=rule, limit_tasks=1)
    assert res.tasks["task"].to_list() == [YN]
    assert res.tasks["task_type"].to_list() == ["generation"]
    assert res.tasks["typing_rule"][0].startswith("override: generation")
    assert set(res.instances["task"]) == {YN}


def test_list_columns_keep_their_dtype_when_every_task_is_generation(niv2_factory, niv2_task):
    """label_space / labels_in_definition are List(String) even when no task has labels."""
    root = niv2_factory(test={GEN: niv2_task("generation")})
    schema = ingest_split(root, "toy", "test", instances_per_task=2).tasks.schema
    assert schema["label_space"] == pl.List(pl.String)
    assert schema["labels_in_definition"] == pl.List(pl.String)


# --------------------------------------------------------------------------- split lists


def test_read_split_list_keeps_file_order_and_skips_blank_lines(niv2_factory):
    """Task names in file order, surrounding whitespace and blank lines ignored."""
    root = niv2_factory(lists={"train": "b_task\n\n  a_task  \nc_task\n"})
    assert read_split_list(root, "toy", "train") == ["b_task", "a_task", "c_task"]
    with pytest.raises(ValueError, match="part must be one of"):
        read_split_list(root, "toy", "dev")


def test_listed_task_without_file_is_an_error_unless_skipped(niv2_factory, niv2_task):
    """An absent task file raises (naming it); skip_missing=True skips it and lists it in result.skipped."""
    root = niv2_factory(test={YN: niv2_task(), "task404_absent": None, GEN: niv2_task("generation")})
    with pytest.raises(NIv2FormatError) as err:
        ingest_split(root, "toy", "test", instances_per_task=5)
    assert str(root / "tasks" / "task404_absent.json") in str(err.value)
    assert "1 of 3 absent" in str(err.value)

    res = ingest_split(root, "toy", "test", instances_per_task=5, skip_missing=True)
    assert res.skipped == ["task404_absent"]
    assert res.tasks["task"].to_list() == [YN, GEN]
    assert set(res.instances["task"]) == {YN, GEN}


# Malformed split lists and task files, each with its message: tests/test_malformed_inputs.py.


# --------------------------------------------------------------------------- io.atomic_path


def test_atomic_path_writes_on_success(tmp_path):
    """The temporary sibling is renamed onto the target when the block completes."""
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        assert not target.exists()
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    """An exception inside the block leaves no target and no temporary file."""
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_existing_target_on_error(tmp_path):
    """An existing target is untouched when writing its replacement fails."""
    target = tmp_path / "out.txt"
    target.write_text("old content")
    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, partial")
            raise KeyError("x")
    assert target.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_table_with_unknown_suffix_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="unsupported table format"):
        write_table(pl.DataFrame({"a": [1]}), tmp_path / "t.feather")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the real NIv2 copy


@pytest.mark.skipif(not SHARED_NIV2.is_dir(), reason=f"real NIv2 copy not found at {SHARED_NIV2}")
def test_real_niv2_default_test_split():
    """default/test: 103 of the 119 listed tasks are present (16 skipped); each keeps its first min(100, n)."""
    res = ingest_split(SHARED_NIV2, "default", "test", instances_per_task=100, skip_missing=True)
    listed = read_split_list(SHARED_NIV2, "default", "test")
    absent = [n for n in listed if not (SHARED_NIV2 / "tasks" / f"{n}.json").is_file()]
    assert len(listed) == 119
    assert res.tasks.height == 103 and len(res.skipped) == 16
    assert res.skipped == absent
    assert res.tasks["task"].to_list() == [n for n in listed if n not in absent]

    by_task = res.instances.partition_by("task", as_dict=True, maintain_order=True)
    for row in res.tasks.iter_rows(named=True):
        name = row["task"]
        raw = json.loads((SHARED_NIV2 / "tasks" / f"{name}.json").read_text(encoding="utf-8"))["Instances"]
        k = min(100, len(raw))
        assert row["n_instances_in_file"] == len(raw) and row["n_instances_kept"] == k, name
        inst = by_task[(name,)]
        assert inst["rank"].to_list() == list(range(k)), name
        assert inst["id"].to_list() == [str(r["id"]) for r in raw[:k]], name
        assert inst["references"].to_list() == [r["output"] for r in raw[:k]], name
    assert set(res.tasks["task_type"]) == {"classification", "generation"}
    assert all(re.fullmatch(r"task\d+_\w[\w.-]*", n) for n in res.tasks["task"])


@pytest.mark.skipif(not SHARED_NIV2.is_dir(), reason=f"real NIv2 copy not found at {SHARED_NIV2}")
def test_real_niv2_blank_references_are_dropped_with_a_warning():
    """The one staged task with blank references (TORQUE, 2 of its 500 instances answer ''): those two
    instances are dropped, each named in a warning, and the others keep their file positions."""
    path = SHARED_NIV2 / "tasks" / "task388_torque_token_classification.json"
    task = read_task(path)
    assert task["n_instances_in_file"] == 500 and len(task["instances"]) == 498
    assert task["notes"] == [
        f"{path}, field 'Instances[{i}].output': every reference is blank: instance dropped" for i in (172, 217)
    ]
    assert [i["index"] for i in task["instances"]][170:174] == [170, 171, 173, 174]
