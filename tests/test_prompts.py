"""Tests of instruct_ablate.prompts: Tk-Instruct's prompt encoding, fitting, variants and shards."""

from __future__ import annotations

import json

import polars as pl
import pytest

from instruct_ablate.ingest import ingest_split
from instruct_ablate.prompts import (
    SHARD_SCHEMA,
    fit_prompt,
    read_shards,
    render_definition,
    render_demonstration,
    render_query,
    render_variant,
    write_shards,
)
from instruct_ablate.variants import SimplifiedTemplates, VariantSpec

YN = "task001_toy_yes_no"
GEN = "task002_toy_generation"
QUERY_HEAD = "Now complete the following example -\nInput: "


def words(text: str) -> int:
    """A stand-in tokenizer: whitespace-separated word count."""
    return len(text.split())


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    "definition, expected",
    [
        ("Answer yes or no", "Definition: Answer yes or no.\n\n"),
        ("  Answer yes or no.  ", "Definition: Answer yes or no.\n\n"),
        ("Is it true?", "Definition: Is it true?\n\n"),
        ('Say "hi"', 'Definition: Say "hi"\n\n'),  # any ASCII punctuation ends the field
        ("Line one\nline two", "Definition: Line one\nline two.\n\n"),
        ("", ""),
        ("  \n ", ""),
    ],
)
def test_render_definition(definition, expected):
    """'Definition: {d}.' + blank line; the period is added only when d does not end in punctuation."""
    assert render_definition(definition) == expected


@pytest.mark.parametrize(
    "index, inp, out, expected",
    [
        (1, "a b", "c", " Positive Example 1 -\nInput: a b.\n Output: c.\n\n"),
        (2, "  Why?  ", " Because. ", " Positive Example 2 -\nInput: Why?\n Output: Because.\n\n"),
        (3, "x", "", " Positive Example 3 -\nInput: x.\n Output: .\n\n"),
        (10, "(1, 2)", "[3]", " Positive Example 10 -\nInput: (1, 2)\n Output: [3]\n\n"),
    ],
)
def test_render_demonstration(index, inp, out, expected):
    """Tk-Instruct's positive-example block: leading space, 1-based index, periods only when needed."""
    assert render_demonstration(index, inp, out) == expected


@pytest.mark.parametrize(
    "inp, expected",
    [
        ("x", QUERY_HEAD + "x.\nOutput: "),
        ("  It is raining!  ", QUERY_HEAD + "It is raining!\nOutput: "),
        ("Done.", QUERY_HEAD + "Done.\nOutput: "),
        ("", QUERY_HEAD + ".\nOutput: "),
    ],
)
def test_render_query(inp, expected):
    """The instance block ends in 'Output: ' (trailing space), the period is not doubled."""
    assert render_query(inp) == expected


# --------------------------------------------------------------------------- fit_prompt

DEF = render_definition("Answer the question")
DEMOS = [render_demonstration(i + 1, f"input number {i}", f"output {i}") for i in range(3)]
QUERY = render_query("the real question")
D, E, Q = words(DEF), words(DEMOS[0]), words(QUERY)  # 4, 11 and 11 words


def test_fit_prompt_keeps_all_demonstrations_with_a_large_budget():
    text, kept = fit_prompt(DEF, DEMOS, QUERY, words, 10_000)
    assert kept == 3
    assert text == DEF + DEMOS[0] + DEMOS[1] + DEMOS[2] + QUERY


def test_fit_prompt_drops_demonstrations_from_the_last_before_cutting_the_instance():
    """With room for the definition, one demonstration and the query, the later ones are dropped
    and the query is kept whole."""
    assert (D, E, Q) == (4, 11, 11)
    for budget, n in [(D + E + Q, 1), (D + 2 * E + Q - 1, 1), (D + 2 * E + Q, 2), (D + 3 * E + Q, 3)]:
        text, kept = fit_prompt(DEF, DEMOS, QUERY, words, budget)
        assert kept == n, budget
        assert text == DEF + "".join(DEMOS[:n]) + QUERY
        assert text.endswith(QUERY)
        assert words(text) <= budget


def test_fit_prompt_keeps_no_demonstration_when_even_the_query_does_not_fit():
    """A budget smaller than definition + query keeps zero demonstrations; the text (too long) is
    left for the tokenizer to cut."""
    for budget in (0, Q - 1, D + Q - 1, D + E + Q - 1):
        text, kept = fit_prompt(DEF, DEMOS, QUERY, words, budget)
        assert kept == 0
        assert text == DEF + QUERY


def test_fit_prompt_stops_at_the_first_demonstration_that_does_not_fit():
    """Tk-Instruct breaks at the first demonstration too long: a shorter later one is not tried."""
    long_demo = render_demonstration(1, "word " * 50, "out")
    short_demo = render_demonstration(2, "a", "b")
    text, kept = fit_prompt(DEF, [long_demo, short_demo], QUERY, words, D + E + Q)
    assert words(short_demo) < E
    assert kept == 0 and text == DEF + QUERY


def test_fit_prompt_measures_kept_demonstrations_joined_with_a_space():
    """As Tk-Instruct, the length test uses definition + ' '.join(kept) + next + query (one extra
    character per kept block, visible with a character count) while the text joins with ''."""
    full = DEF + "".join(DEMOS) + QUERY
    _, kept = fit_prompt(DEF, DEMOS, QUERY, len, len(full))
    assert kept == 2  # the third needs len(full) + 1 characters by the ' '.join measure
    _, kept = fit_prompt(DEF, DEMOS, QUERY, len, len(full) + 1)
    assert kept == 3


def test_fit_prompt_with_a_real_tokenizer_counts_special_tokens():
    """With ByT5 (one token per byte + </s>), a kept prompt is at most max_source_length tokens."""
    transformers = pytest.importorskip("transformers")
    tok = transformers.ByT5Tokenizer()

    def count(text):
        return len(tok(text)["input_ids"])

    full = DEF + "".join(DEMOS[:2]) + QUERY
    assert count(full) == len(full.encode()) + 1
    text, kept = fit_prompt(DEF, DEMOS[:2], QUERY, count, count(full))
    assert (text, kept) == (full, 2)
    text, kept = fit_prompt(DEF, DEMOS[:2], QUERY, count, count(full) - 1)
    assert kept == 1 and count(text) <= count(full) - 1


# --------------------------------------------------------------------------- render_variant


@pytest.fixture
def toy_tables(niv2_factory, niv2_task):
    """(tasks, instances) of a Yes/No classification task and a generation task, 6 instances each."""
    root = niv2_factory(test={YN: niv2_task("yesno"), GEN: niv2_task("generation")})
    res = ingest_split(root, "toy", "test", instances_per_task=6)
    return res.tasks, res.instances


ORIGINAL = VariantSpec.from_config("original", {"definition": "original", "demonstrations": {"count": 2}})


def test_original_variant_renders_definition_two_demonstrations_and_query(toy_tables):
    """One row per instance; definition + the first two positive examples + the query; target is a reference."""
    tasks, instances = toy_tables
    prompts, audit = render_variant(tasks, instances, ORIGINAL, seed=1)
    assert prompts.schema == pl.Schema(SHARD_SCHEMA)
    assert prompts.height == instances.height == 12
    row = prompts.filter((pl.col("task") == YN) & (pl.col("rank") == 3)).row(0, named=True)
    assert row["definition_text"] == "Definition: Answer 'Yes' if the number is even and 'No' otherwise.\n\n"
    assert row["demonstrations"] == [
        " Positive Example 1 -\nInput: Is 4 even?\n Output: Yes.\n\n",
        " Positive Example 2 -\nInput: Is 7 even?\n Output: No.\n\n",
    ]
    assert row["query"] == QUERY_HEAD + "Is 3 even?\nOutput: "
    assert row["prompt"] == row["definition_text"] + "".join(row["demonstrations"]) + row["query"]
    assert (row["id"], row["category"], row["task_type"]) == ("yn-3", "Answer Verification", "classification")
    assert row["references"] == ["No"] and row["target"] == "No"
    assert all(t in r for t, r in zip(prompts["target"], prompts["references"]))
    assert audit["task"].to_list() == [YN, GEN] and set(audit["variant"]) == {"original"}
    # the generation task has three positive examples: only two are shown
    assert prompts.filter(pl.col("task") == GEN)["demonstrations"].list.len().unique().to_list() == [2]


def test_no_definition_variant_has_empty_definition_text(toy_tables):
    tasks, instances = toy_tables
    spec = VariantSpec.from_config("none", {"definition": "none", "demonstrations": {"count": 2}})
    prompts, audit = render_variant(tasks, instances, spec, seed=1)
    assert set(prompts["definition_text"]) == {""}
    assert all(p.startswith(" Positive Example 1 -\n") for p in prompts["prompt"])
    assert set(audit["definition_shown"]) == {""}


def test_definition_only_variant_has_no_demonstrations(toy_tables):
    tasks, instances = toy_tables
    spec = VariantSpec.from_config("definition_only", {"definition": "original", "demonstrations": {"count": 0}})
    prompts, _ = render_variant(tasks, instances, spec, seed=1)
    assert prompts["demonstrations"].list.len().unique().to_list() == [0]
    assert (prompts["prompt"] == prompts["definition_text"] + prompts["query"]).all()
    assert all(d.startswith("Definition: ") for d in prompts["definition_text"])


def test_simplified_variant_keeps_only_the_output_space(toy_tables):
    """Classification: 'Output one of: <labels>.'; generation: a length phrase from its outputs."""
    tasks, instances = toy_tables
    spec = VariantSpec.from_config("simplified", {"definition": "simplified", "demonstrations": {"count": 2}})
    prompts, audit = render_variant(tasks, instances, spec, seed=1)
    by_task = dict(prompts.group_by("task").agg(pl.col("definition_text").unique()).iter_rows())
    assert by_task[YN] == ["Definition: Output one of: Yes, No.\n\n"]
    assert by_task[GEN] == ["Definition: Output a sentence.\n\n"]  # 9-word positive outputs
    shown = dict(audit.select("task", "definition_shown").iter_rows())
    assert shown == {YN: "Output one of: Yes, No.", GEN: "Output a sentence."}

    custom = SimplifiedTemplates(classification="Answer with {labels}", generation="none", label_separator=" or ")
    prompts, _ = render_variant(tasks, instances, spec, seed=1, templates=custom)
    by_task = dict(prompts.group_by("task").agg(pl.col("definition_text").unique()).iter_rows())
    assert by_task == {YN: ["Definition: Answer with Yes or No.\n\n"], GEN: [""]}


def test_delusive_permuted_labels_give_every_demonstration_a_wrong_label(toy_tables):
    """Each demonstration of a classification task keeps its input and shows another label of the label space."""
    tasks, instances = toy_tables
    spec = VariantSpec.from_config(
        "delusive", {"definition": "original", "demonstrations": {"count": 2, "kind": "delusive"}}
    )
    prompts, audit = render_variant(tasks, instances, spec, seed=7)
    task = tasks.filter(pl.col("task") == YN).row(0, named=True)
    shown = audit.filter(pl.col("task") == YN)["demonstrations_shown"].to_list()[0]
    originals = task["positive_examples"][:2]
    assert [d["input"] for d in shown] == [e["input"] for e in originals]
    for d, e in zip(shown, originals):
        assert d["output"] in task["label_space"] and d["output"] != e["output"]
    expected_blocks = [render_demonstration(i + 1, d["input"], d["output"]) for i, d in enumerate(shown)]
    for blocks in prompts.filter(pl.col("task") == YN)["demonstrations"].to_list():
        assert blocks == expected_blocks
    # generation task: outputs swapped between demonstrations (none keeps its own)
    gen_shown = audit.filter(pl.col("task") == GEN)["demonstrations_shown"].to_list()[0]
    gen_orig = tasks.filter(pl.col("task") == GEN)["positive_examples"].to_list()[0][:2]
    assert [d["output"] for d in gen_shown] == [gen_orig[1]["output"], gen_orig[0]["output"]]


def test_render_variant_is_deterministic_in_the_seed(toy_tables):
    """Same seed -> identical prompts and audit tables."""
    tasks, instances = toy_tables
    spec = VariantSpec.from_config(
        "delusive", {"definition": "original", "demonstrations": {"count": 2, "kind": "delusive"}}
    )
    a, audit_a = render_variant(tasks, instances, spec, seed=3)
    b, audit_b = render_variant(tasks, instances, spec, seed=3)
    assert a.equals(b) and audit_a.equals(audit_b)


def test_target_is_drawn_among_several_references_by_seed(niv2_factory, niv2_task):
    """With several references, the target is a seeded choice: reproducible and not always the first."""
    task = niv2_task("generation")
    for i, inst in enumerate(task["Instances"]):
        inst["output"] = [f"first answer {i}", f"second answer {i}", f"third answer {i}"]
    res = ingest_split(niv2_factory(test={GEN: task}), "toy", "test", instances_per_task=40)
    a, _ = render_variant(res.tasks, res.instances, ORIGINAL, seed=5)
    b, _ = render_variant(res.tasks, res.instances, ORIGINAL, seed=5)
    assert a["target"].to_list() == b["target"].to_list()
    assert all(t in r for t, r in zip(a["target"], a["references"]))
    assert len({t.split()[0] for t in a["target"]}) == 3  # 40 draws over 3 references use all of them


def test_render_variant_max_rank_keeps_the_first_ranks(toy_tables):
    tasks, instances = toy_tables
    prompts, audit = render_variant(tasks, instances, ORIGINAL, seed=1, max_rank=2)
    assert prompts.height == 4
    assert sorted(prompts["rank"].to_list()) == [0, 0, 1, 1]
    assert audit.height == 2


# --------------------------------------------------------------------------- shards


def test_write_and_read_shards_round_trip(toy_tables, tmp_path):
    """tasks_per_shard=1 writes one shard per task (sorted by name) plus definitions and meta;
    read_shards returns the same rows; max_rank filters."""
    tasks, instances = toy_tables
    prompts, audit = render_variant(tasks, instances, ORIGINAL, seed=1)
    out = tmp_path / "shards"
    files = write_shards(prompts, audit, out, tasks_per_shard=1, meta={"variant": "original"})
    assert files == ["shard-00000.parquet", "shard-00001.parquet"]
    assert sorted(p.name for p in out.iterdir()) == sorted(files + ["definitions.parquet", "meta.json"])
    assert set(pl.read_parquet(out / files[0])["task"]) == {YN}
    assert set(pl.read_parquet(out / files[1])["task"]) == {GEN}
    meta = json.loads((out / "meta.json").read_text())
    assert meta == {"variant": "original", "shards": files, "n_rows": 12, "n_tasks": 2}
    assert pl.read_parquet(out / "definitions.parquet").equals(audit.sort("task"))

    back = read_shards(out)
    assert back.equals(prompts.sort(["task", "rank"]))
    few = read_shards(out, max_rank=2)
    assert few.equals(prompts.filter(pl.col("rank") < 2).sort(["task", "rank"]))


def test_write_shards_groups_tasks_and_replaces_the_folder(toy_tables, tmp_path):
    tasks, instances = toy_tables
    prompts, audit = render_variant(tasks, instances, ORIGINAL, seed=1)
    out = tmp_path / "results" / "shards"
    write_shards(prompts, audit, out, tasks_per_shard=1, meta={})
    files = write_shards(prompts, audit, out, tasks_per_shard=50, meta={})
    assert files == ["shard-00000.parquet"]
    assert not (out / "shard-00001.parquet").exists()  # the old folder was replaced, not merged
    assert [p.name for p in out.parent.iterdir()] == ["shards"]  # no temporary or .old folder left
    with pytest.raises(ValueError, match="tasks_per_shard"):
        write_shards(prompts, audit, tmp_path / "bad", tasks_per_shard=0, meta={})


def test_read_shards_without_shards_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        read_shards(tmp_path)


def test_a_task_without_positive_examples_has_an_audit_note(niv2_factory, niv2_task):
    """Issue #12: no demonstration can be shown, and the audit (definitions.parquet, ``note``) says so."""
    root = niv2_factory(test={YN: niv2_task("yesno", Positive__Examples=[]), GEN: niv2_task("generation")})
    res = ingest_split(root, "toy", "test", instances_per_task=3)
    prompts, audit = render_variant(res.tasks, res.instances, ORIGINAL, seed=1)
    assert prompts.filter(pl.col("task") == YN)["demonstrations"].list.len().unique().to_list() == [0]
    notes = dict(zip(audit["task"], audit["note"]))
    assert notes[YN] == "no positive examples: 0 of 2 demonstrations shown"
    assert notes[GEN] == ""
    definition_only = VariantSpec.from_config("definition_only", {"demonstrations": {"count": 0}})
    assert set(render_variant(res.tasks, res.instances, definition_only, seed=1)[1]["note"]) == {""}
