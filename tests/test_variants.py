"""Tests of instruct_ablate.variants: variant specs, simplified definitions, delusive demonstrations."""

from __future__ import annotations

import pytest

from instruct_ablate.variants import (
    SimplifiedTemplates,
    VariantSpec,
    choose_demonstrations,
    simplified_definition,
)

POS = [
    {"input": "Is 4 even?", "output": "Yes", "explanation": "4 = 2 * 2"},
    {"input": "Is 7 even?", "output": "No", "explanation": None},
    {"input": "Is 0 even?", "output": "Yes", "explanation": None},
]
NEG = [{"input": "Is 8 even?", "output": "No", "explanation": "wrong"}]
GEN_POS = [
    {"input": "one", "output": "The first output."},
    {"input": "two", "output": "The second output."},
    {"input": "three", "output": "The third output."},
]


def spec(**demos) -> VariantSpec:
    return VariantSpec.from_config("v", {"definition": "original", "demonstrations": demos})


def choose(s, task_type="classification", labels=("Yes", "No"), pos=POS, neg=NEG, outs=(), seed=0, task="t"):
    return choose_demonstrations(s, task, task_type, list(labels), pos, neg, list(outs), seed)


# --------------------------------------------------------------------------- VariantSpec


def test_from_config_reads_definition_and_demonstrations():
    s = VariantSpec.from_config(
        "delusive", {"definition": "simplified", "demonstrations": {"count": 3, "kind": "delusive",
                                                                   "method": "negative_as_positive"}}
    )
    assert s == VariantSpec("delusive", "simplified", 3, "delusive", "negative_as_positive")


def test_from_config_defaults():
    """No demonstrations key means count 0; the definition defaults to the original."""
    assert VariantSpec.from_config("d", {}) == VariantSpec("d", "original", 0, "positive", "permuted_labels")
    assert VariantSpec.from_config("d", {"demonstrations": None}).n_demonstrations == 0


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"definition": "short"}, "variants.bad.definition"),
        ({"demonstrations": {"count": 2, "kind": "random"}}, "variants.bad.demonstrations.kind"),
        ({"demonstrations": {"count": 2, "kind": "delusive", "method": "shuffle"}},
         "variants.bad.demonstrations.method"),
        ({"demonstrations": {"count": -1}}, "variants.bad.demonstrations.count"),
        ({"demonstrations": {"count": 0, "kind": "delusive"}}, "variants.bad.demonstrations"),
    ],
)
def test_from_config_rejects_bad_values_naming_the_key(cfg, key):
    with pytest.raises(ValueError) as err:
        VariantSpec.from_config("bad", cfg)
    assert str(err.value).startswith(key + ":")


def test_digest_is_stable_and_distinguishes_specs():
    a = spec(count=2)
    assert a.digest() == spec(count=2).digest()
    assert a.digest() != spec(count=1).digest()
    assert len(a.digest()) == 16


# --------------------------------------------------------------------------- simplified definitions


def test_simplified_definition_of_a_classification_task_lists_its_labels():
    assert simplified_definition("classification", ["Yes", "No"], []) == "Output one of: Yes, No."
    t = SimplifiedTemplates(classification="Choose from [{labels}]", label_separator=" | ")
    assert simplified_definition("classification", ["A", "B", "C"], [], t) == "Choose from [A | B | C]"


@pytest.mark.parametrize(
    "outputs, phrase",
    [
        (["yes", "a short one", "one two three"], "Output a word or a short phrase."),  # median 3 words
        (["one two three four"], "Output a sentence."),
        ([" ".join(["w"] * 40)], "Output a sentence."),
        ([" ".join(["w"] * 41)], "Output a paragraph."),
        (["a", "b c d e f", " ".join(["w"] * 100)], "Output a sentence."),  # the median, not the mean
        ([], "Output a word or a short phrase."),
    ],
)
def test_simplified_definition_of_a_generation_task_by_output_length(outputs, phrase):
    assert simplified_definition("generation", [], outputs) == phrase


def test_simplified_definition_generation_templates():
    assert simplified_definition("generation", [], ["x"], SimplifiedTemplates(generation="none")) == ""
    fixed = SimplifiedTemplates(generation="Write the answer.")
    assert simplified_definition("generation", [], ["x"], fixed) == "Write the answer."


def test_simplified_templates_from_config_ignores_unknown_keys():
    t = SimplifiedTemplates.from_config({"classification": "Labels: {labels}", "generation": "none", "other": 1})
    assert t == SimplifiedTemplates(classification="Labels: {labels}", generation="none")
    assert SimplifiedTemplates.from_config(None) == SimplifiedTemplates()


# --------------------------------------------------------------------------- demonstrations


def test_positive_demonstrations_are_the_first_n_in_file_order():
    demos, note = choose(spec(count=2))
    assert demos == [{"input": "Is 4 even?", "output": "Yes"}, {"input": "Is 7 even?", "output": "No"}]
    assert note == ""
    assert choose(spec(count=10))[0] == [{"input": e["input"], "output": e["output"]} for e in POS]
    assert choose(spec(count=0))[0] == []


def test_permuted_labels_change_every_classification_output_to_another_label():
    labels = ["Yes", "No", "Maybe"]
    s = spec(count=3, kind="delusive")
    for seed in range(20):
        demos, note = choose(s, labels=labels, seed=seed)
        assert note == ""
        assert [d["input"] for d in demos] == [e["input"] for e in POS]
        for d, e in zip(demos, POS):
            assert d["output"] in labels and d["output"] != e["output"]


def test_permuted_labels_compare_labels_after_normalisation():
    """A demonstration whose output is 'yes.' is not 'changed' into the label 'Yes'."""
    pos = [{"input": "q", "output": "yes."}]
    for seed in range(10):
        demos, _ = choose(spec(count=1, kind="delusive"), labels=["Yes", "No"], pos=pos, seed=seed)
        assert demos == [{"input": "q", "output": "No"}]


def test_permuted_labels_are_deterministic_and_depend_on_the_seed():
    s = spec(count=3, kind="delusive")
    labels = ["A", "B", "C", "D", "E"]
    pos = [{"input": f"i{k}", "output": "A"} for k in range(3)]
    runs = {seed: choose(s, labels=labels, pos=pos, seed=seed) for seed in range(10)}
    assert all(choose(s, labels=labels, pos=pos, seed=seed) == r for seed, r in runs.items())
    assert len({tuple(d["output"] for d in r[0]) for r in runs.values()}) > 1


def test_permuted_outputs_of_a_generation_task_are_a_derangement():
    """Generation task with >= 2 demonstrations: outputs are rotated, none keeps its own."""
    s = spec(count=3, kind="delusive")
    originals = [e["output"] for e in GEN_POS]
    for seed in range(20):
        demos, note = choose(s, task_type="generation", labels=[], pos=GEN_POS, seed=seed)
        assert note == ""
        assert [d["input"] for d in demos] == ["one", "two", "three"]
        outs = [d["output"] for d in demos]
        assert sorted(outs) == sorted(originals)
        assert all(o != e for o, e in zip(outs, originals))


def test_single_generation_demonstration_takes_a_different_instance_output():
    s = spec(count=1, kind="delusive")
    outs = ["The first output!", "the FIRST output", "Something else entirely."]
    demos, note = choose(s, task_type="generation", labels=[], pos=GEN_POS[:1], outs=outs)
    assert demos == [{"input": "one", "output": "Something else entirely."}]  # normalised duplicates excluded
    assert note == ""


def test_single_generation_demonstration_without_alternative_keeps_its_output_and_says_so():
    s = spec(count=1, kind="delusive")
    demos, note = choose(s, task_type="generation", labels=[], pos=GEN_POS[:1], outs=["the first output"])
    assert demos == [{"input": "one", "output": "The first output."}]
    assert note == "could not permute 1 of 1: kept output"


def test_generation_demonstrations_with_equal_outputs_take_instance_outputs():
    """Rotating two equal outputs changes nothing, so each takes a differing instance output instead."""
    s = spec(count=2, kind="delusive")
    pos = [{"input": "a", "output": "same"}, {"input": "b", "output": "Same."}]
    demos, note = choose(s, task_type="generation", labels=[], pos=pos, outs=["same", "other one"])
    assert [d["input"] for d in demos] == ["a", "b"]
    assert [d["output"] for d in demos] == ["other one", "other one"]
    assert note == ""


def test_classification_with_a_single_label_falls_back_to_swapping_demonstration_outputs():
    demos, _ = choose(spec(count=2, kind="delusive"), labels=["Yes"], pos=POS[:2])
    assert demos == [{"input": "Is 4 even?", "output": "No"}, {"input": "Is 7 even?", "output": "Yes"}]


def test_negative_as_positive_shows_negative_examples():
    s = spec(count=2, kind="delusive", method="negative_as_positive")
    demos, note = choose(s)
    assert demos == [{"input": "Is 8 even?", "output": "No"}] and note == ""
    demos, note = choose(s, neg=[])
    assert demos == [{"input": "Is 4 even?", "output": "Yes"}, {"input": "Is 7 even?", "output": "No"}]
    assert note == "no negative examples: kept positive"


@pytest.mark.parametrize(
    "demos",
    [
        {"count": 2, "kind": "positive"},
        {"count": 2, "kind": "delusive", "method": "permuted_labels"},
        {"count": 2, "kind": "delusive", "method": "negative_as_positive"},
    ],
    ids=["positive", "permuted_labels", "negative_as_positive"],
)
def test_a_task_without_positive_examples_shows_none_and_says_so(demos):
    """Issue #12: a task with no positive examples got 0 demonstrations in every variant without a note."""
    demos_shown, note = choose(spec(**demos), pos=[], neg=[] if demos.get("method") == "negative_as_positive" else NEG)
    assert demos_shown == []
    assert note.startswith("no positive examples: 0 of 2 demonstrations shown")


def test_negative_as_positive_without_positive_examples_still_shows_the_negatives():
    demos, note = choose(spec(count=2, kind="delusive", method="negative_as_positive"), pos=[])
    assert demos == [{"input": "Is 8 even?", "output": "No"}] and note == ""


def test_no_note_when_no_demonstration_is_asked_for():
    assert choose(spec(count=0), pos=[]) == ([], "")


def test_permuted_labels_never_choose_a_blank_label():
    """Ingest drops blank references, so no blank label reaches here; the choice skips one anyway."""
    for seed in range(20):
        demos, _ = choose(spec(count=2, kind="delusive"), labels=["Yes", "No", " "], seed=seed)
        assert all(d["output"].strip() for d in demos)
