"""Tests of instruct_ablate.labels: classification vs generation, label space and its evidence."""

from __future__ import annotations

import pytest

from instruct_ablate.labels import TypingRule, type_task


def refs(*outputs: str) -> list[list[str]]:
    """One single-reference instance per output."""
    return [[o] for o in outputs]


def test_closed_reused_label_set_is_classification():
    """2 distinct normalised outputs over 6 instances (>= 2 per label, <= 10 labels)."""
    t = type_task("t", "Say yes or no.", refs("Yes", "No", "Yes", "No", "yes", "No"))
    assert t.task_type == "classification"
    assert t.label_space == ["Yes", "No"]
    assert t.n_distinct_outputs == 2
    assert "2 distinct normalised outputs over 6 instances" in t.rule


def test_open_outputs_are_generation_with_an_empty_label_space():
    t = type_task("t", "Write a sentence.", refs("One thing.", "Another thing.", "A third thing."))
    assert t.task_type == "generation"
    assert t.label_space == []
    assert t.n_distinct_outputs == 3


def test_rule_boundaries():
    """classification iff 2 <= distinct <= max_labels and every label is used by >= min_instances_per_label."""
    # exactly 2 instances per label: classification; one label used once: generation
    assert type_task("t", "", refs("a", "b", "a", "b")).task_type == "classification"
    assert type_task("t", "", refs("a", "b", "a")).task_type == "generation"
    # 10 labels used twice each: classification; 11 labels: generation however often used
    ten = [f"label{i}" for i in range(10)] * 2
    assert type_task("t", "", refs(*ten)).task_type == "classification"
    eleven = [f"label{i}" for i in range(11)] * 5
    assert type_task("t", "", refs(*eleven)).task_type == "generation"
    # a custom rule
    rule = TypingRule(max_labels=3, min_instances_per_label=1.5)
    assert type_task("t", "", refs("a", "b", "c"), rule).task_type == "generation"  # each used once < 1.5
    assert type_task("t", "", refs("a", "b", "c", "a", "b", "c"), rule).task_type == "classification"
    assert type_task("t", "", refs("a", "b", "c", "d") * 4, rule).task_type == "generation"  # 4 labels > 3
    # no instances at all
    assert type_task("t", "", []).task_type == "generation"


def test_every_label_must_be_reused_not_only_on_average():
    """Issue #12: three reused labels and one used once (a stray, often a typo) is not a 4-label task.

    On average (12 instances / 4 labels = 3 >= 2) the old rule took 'Maybee' into the label space and
    the random baseline of the task fell from 33.3 to 25.0; per label, the task is generation and
    ``rare_labels`` names the stray so that ingest can warn.
    """
    outputs = refs(*(["Yes", "No", "Maybe"] * 4)[:11], "Maybee")
    t = type_task("t", "Answer Yes, No or Maybe.", outputs)
    assert t.task_type == "generation" and t.label_space == []
    assert t.rare_labels == ["maybee"] and not t.constant
    assert t.n_distinct_outputs == 4
    assert "the rarest used by 1" in t.rule and "used by fewer: 'maybee'" in t.rule
    fixed = type_task("t", "Answer Yes, No or Maybe.", refs(*(["Yes", "No", "Maybe"] * 4)))
    assert fixed.task_type == "classification" and fixed.label_space == ["Yes", "No", "Maybe"]
    assert fixed.rare_labels == []


def test_a_label_counts_the_instances_using_it_not_the_references():
    """Two references of one instance with the same label are one use of it."""
    t = type_task("t", "", [["A", "a"], ["B"], ["B"]])
    assert t.task_type == "generation" and t.rare_labels == ["a"]
    assert type_task("t", "", [["A", "a"], ["A"], ["B"], ["B"]]).task_type == "classification"


def test_a_constant_task_is_generation():
    """Issue #12: all outputs one string is no one-label classification task (its random baseline is 100)."""
    t = type_task("t", "Always answer Yes.", refs("Yes", "yes", "Yes.", "YES"))
    assert t.task_type == "generation" and t.label_space == []
    assert t.constant and t.n_distinct_outputs == 1 and t.rare_labels == []
    assert "a constant task, not classification" in t.rule


def test_an_override_cannot_make_a_task_with_fewer_than_two_labels_classification():
    with pytest.raises(ValueError, match=r"task_typing\.overrides\.task9: cannot be classification: its instances "
                                         r"have 1 distinct normalised output \(a label space needs at least 2"):
        type_task("task9", "", refs("Yes", "yes"), TypingRule(overrides={"task9": "classification"}))
    # to generation it is allowed (and what the rule decides anyway)
    forced = type_task("task9", "", refs("Yes", "yes"), TypingRule(overrides={"task9": "generation"}))
    assert forced.task_type == "generation" and forced.rule.startswith("override: generation (")
    # a stray label can be accepted explicitly: the override takes every distinct output as a label
    stray = refs("Yes", "No", "Yes", "No", "Maybee")
    forced = type_task("task9", "", stray, TypingRule(overrides={"task9": "classification"}))
    assert forced.task_type == "classification" and forced.label_space == ["Yes", "No", "Maybee"]


def test_labels_are_compared_after_normalisation():
    """'Yes', 'yes.' and ' YES ' are one label (NIv2's normalisation)."""
    t = type_task("t", "", refs("Yes", "yes.", " YES ", "No", "no!", "No"))
    assert t.n_distinct_outputs == 2
    assert t.task_type == "classification"


def test_label_surface_form_is_the_most_frequent_casing_in_first_appearance_order():
    """Each label shows its most frequent (stripped) surface form; labels keep first-appearance order."""
    t = type_task("t", "", refs("false", "True", "true", "True", "False", "False", " True "))
    assert t.label_space == ["False", "True"]
    # a tie keeps the form seen first
    t = type_task("t", "", refs("yes", "YES", "No", "no"))
    assert t.label_space == ["yes", "No"]


def test_every_reference_of_an_instance_counts():
    """Several references per instance are all labels (and all vote for the surface form)."""
    t = type_task("t", "", [["A", "a"], ["a"], ["B"], ["b", "b"]])
    assert t.n_distinct_outputs == 2
    assert t.label_space == ["a", "b"]


def test_labels_in_definition_match_whole_words_of_the_normalised_definition():
    """A label is 'mentioned' when its normalised form occurs as whole words in the normalised definition."""
    outputs = refs("Entailment", "Neutral", "Contradiction", "Entailment", "Neutral", "Contradiction")
    t = type_task("t", "Answer 'entailment' or 'contradiction'; nothing neutral-ish.", outputs)
    # 'neutral-ish' normalises to 'neutralish': not a whole-word match
    assert t.labels_in_definition == ["Entailment", "Contradiction"]
    t = type_task("t", "Output Yes or NO.", refs("Yes", "No", "Yes", "No"))
    assert t.labels_in_definition == ["Yes", "No"]
    t = type_task("t", "Nothing here mentions them (yesterday, nobody).", refs("Yes", "No", "Yes", "No"))
    assert t.labels_in_definition == []


def test_labels_in_definition_is_kept_for_generation_tasks_too():
    t = type_task("t", "Write the word cat or a sentence.", refs("cat", "a dog runs", "birds sing"))
    assert t.task_type == "generation"
    assert t.labels_in_definition == ["cat"]


def test_override_forces_the_type():
    """An override wins over the data rule, in both directions, and says so in ``rule``."""
    data = refs("Yes", "No", "Yes", "No")
    forced_gen = type_task("task9", "", data, TypingRule(overrides={"task9": "generation"}))
    assert forced_gen.task_type == "generation" and forced_gen.label_space == []
    assert forced_gen.n_distinct_outputs == 2
    assert forced_gen.rule.startswith("override: generation (")

    open_data = refs("one sentence", "another sentence", "a third")
    forced_cls = type_task("task9", "", open_data, TypingRule(overrides={"task9": "classification"}))
    assert forced_cls.task_type == "classification"
    assert forced_cls.label_space == ["one sentence", "another sentence", "a third"]

    other = type_task("task8", "", open_data, TypingRule(overrides={"task9": "classification"}))
    assert other.task_type == "generation"  # overrides are per task name


def test_bad_override_value_raises_naming_the_task():
    with pytest.raises(ValueError, match=r"task_typing\.overrides\.task9: 'cls' is neither"):
        type_task("task9", "", refs("a", "b", "a", "b"), TypingRule(overrides={"task9": "cls"}))


def test_typing_rule_from_config():
    assert TypingRule.from_config(None) == TypingRule()
    rule = TypingRule.from_config({"max_labels": "5", "min_instances_per_label": 3, "overrides": {"t": "generation"}})
    assert rule == TypingRule(max_labels=5, min_instances_per_label=3.0, overrides={"t": "generation"})
    assert TypingRule.from_config({"overrides": None}).overrides == {}


def test_outputs_may_be_a_generator():
    """``outputs`` is consumed once (ingest passes a generator over the instances)."""
    t = type_task("t", "", (r for r in refs("a", "b", "a", "b")))
    assert t.task_type == "classification" and t.label_space == ["a", "b"]


def test_read_overrides_parses_the_reviewed_file(tmp_path):
    """Comments and blank lines are skipped; each row maps a task to its forced type."""
    from instruct_ablate.labels import read_overrides

    f = tmp_path / "overrides.tsv"
    f.write_text("# reviewed\n\ntask\ttask_type\treason\nt1\tgeneration\tfree-form answers\nt2\tclassification\tsix labels\n")
    assert read_overrides(f) == {"t1": "generation", "t2": "classification"}


@pytest.mark.parametrize(
    "body, message",
    [
        ("task\ttype\treason\n", "header"),
        ("task\ttask_type\treason\nt1\tregression\twhy\n", "'regression'"),
        ("task\ttask_type\treason\nt1\tgeneration\n", "non-empty reason"),
        ("task\ttask_type\treason\nt1\tgeneration\ta\nt1\tclassification\tb\n", "twice"),
    ],
)
def test_read_overrides_names_file_and_line_of_a_bad_row(tmp_path, body, message):
    from instruct_ablate.labels import read_overrides

    f = tmp_path / "overrides.tsv"
    f.write_text(body)
    with pytest.raises(ValueError, match=message) as err:
        read_overrides(f)
    assert str(f) in str(err.value)


def test_shipped_overrides_file_is_valid():
    """The repository's reviewed overrides file parses, every row of it is an override, and every
    overridden task is a task name of NIv2's split lists (a typo would silently override nothing)."""
    from pathlib import Path

    from instruct_ablate.labels import TASK_TYPES, read_overrides

    root = Path(__file__).resolve().parents[1]
    path = root / "task_type_overrides.tsv"
    overrides = read_overrides(path)
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    assert rows[0].split("\t")[:3] == ["task", "task_type", "reason"]
    assert len(overrides) == len(rows) - 1
    assert set(overrides.values()) <= set(TASK_TYPES)
    listed = {
        line.strip()
        for niv2 in (root / "data" / "niv2-sample", root.parent / "shared" / "niv2")
        for split_list in niv2.glob("splits/*/*_tasks.txt")
        for line in split_list.read_text(encoding="utf-8").splitlines()
    }
    assert len(listed) >= 18  # the embedded sample's tasks at least
    assert set(overrides) <= listed, sorted(set(overrides) - listed)
