"""Tests of instruct_ablate.metrics: NIv2's exact match and ROUGE-L, and their aggregation."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import polars as pl
import pytest
from rouge_score import rouge_scorer

from instruct_ablate.metrics import aggregate, exact_match, normalize_answer, rouge_l, score_instances

#: The real partial NIv2 copy beside the repository clone; it holds NIv2's official scoring script.
SHARED_NIV2 = Path(__file__).resolve().parents[2] / "shared" / "niv2"
OFFICIAL_EVAL = SHARED_NIV2 / "eval" / "automatic" / "evaluation.py"

# (prediction, references): casing, punctuation, articles, stemming, partial overlap,
# empty strings, several references, digits, non-ASCII text, long outputs.
PAIRS = [
    ("Yes", ["Yes"]),
    ("yes", ["Yes"]),
    ("Yes.", ["yes"]),
    ("No", ["Yes"]),
    ("the cat", ["cat"]),
    ("The  Cat!", ["the cat"]),
    ("a dog", ["the dog"]),
    ("", ["something"]),
    ("something", [""]),
    ("", [""]),
    ("   ", ["x"]),
    ("running dogs", ["the dog runs"]),
    ("The cats are running quickly.", ["A cat runs quick", "cats running quickly"]),
    ("Paris", ["Paris, France", "paris"]),
    ("London", ["Paris, France", "Berlin"]),
    ("42", ["42"]),
    ("42.0", ["42"]),
    ("4 2", ["42"]),
    ("positive", ["Positive", "negative"]),
    ("entailment", ["Entailment"]),
    ("not entailment", ["entailment"]),
    ("Café au lait", ["cafe au lait"]),
    ("Ein Hund läuft", ["Ein Hund läuft schnell"]),
    ("don't stop", ["dont stop"]),
    ("well-known fact", ["well known fact"]),
    ("A quick brown fox jumps over the lazy dog near the river bank today",
     ["The quick brown fox jumped over a lazy dog by the river", "A fox"]),
    ("The answer is B", ["B", "(B)"]),
    ("(B)", ["B"]),
    ("Question: what is the capital of France? Answer: Paris",
     ["What is the capital of France?", "Paris is the capital"]),
    ("one two three four five six seven eight nine ten", ["ten nine eight seven six five four three two one"]),
    ("sentence one. sentence two.", ["sentence two. sentence one."]),
    ("UPPER lower MiXeD", ["upper LOWER mixed"]),
]


# --------------------------------------------------------------------------- normalisation and EM


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The  Cat!", "the cat"),  # articles are kept (unlike SQuAD)
        ("  A\tdog\n", "a dog"),
        ("don't-stop...", "dontstop"),
        ("Café!", "café"),  # only ASCII punctuation is removed
        ("«quoted»", "«quoted»"),
        ("", ""),
        ("?!", ""),
    ],
)
def test_normalize_answer(text, expected):
    """Lower-case, remove string.punctuation, collapse whitespace; nothing else."""
    assert normalize_answer(text) == expected


def test_exact_match_takes_the_best_reference():
    """1.0 when the normalised prediction equals any normalised reference."""
    assert exact_match("The Cat!", ["dog", "the cat"]) == 1.0
    assert exact_match("cat", ["the cat", "a cat"]) == 0.0  # articles count
    assert exact_match("no", ["No.", "Nope"]) == 1.0
    assert exact_match("yes", ["no"]) == 0.0
    assert isinstance(exact_match("a", ["a"]), float)


@pytest.mark.parametrize("fn", [exact_match, rouge_l])
def test_empty_reference_list_raises(fn):
    with pytest.raises(ValueError, match="no reference"):
        fn("anything", [])


# --------------------------------------------------------------------------- ROUGE-L


@pytest.mark.parametrize(
    "pred, refs, expected",
    [
        # ROUGE-L F = 2PR / (P + R), P = LCS / len(prediction), R = LCS / len(reference), in tokens
        ("the cat sat on the mat", ["the cat is on the mat"], 5 / 6),  # LCS: the cat on the mat
        ("a b c d", ["a c"], 2 * (2 / 4) * 1 / (2 / 4 + 1)),  # P = 1/2, R = 1: 2/3
        ("running quickly", ["run quick"], 0.5),  # Porter stems: run quickli / run quick
        ("Hello, world!", ["hello world"], 1.0),  # lower-cased, punctuation is no token
        ("a b", ["c", "a b c"], 0.8),  # best over the references: P = 1, R = 2/3
        ("c b a", ["a b c"], 1 / 3),  # order matters: LCS 1
    ],
)
def test_rouge_l_matches_hand_computed_lcs_f_measures(pred, refs, expected):
    """rouge_l is ROUGE-L F with stemming, best over the references (rouge-score's RougeScorer, as NIv2)."""
    assert rouge_l(pred, refs) == pytest.approx(expected, abs=1e-12)


def test_rouge_l_hand_computed_values():
    """Stemming makes 'cats' match 'cat'; LCS of 2 in 3+3 tokens gives F = 2/3."""
    assert rouge_l("The cats", ["the cat"]) == pytest.approx(1.0)
    assert rouge_l("the cat sat", ["a cat sat"]) == pytest.approx(2 / 3)
    assert rouge_l("the cat sat", ["a cat sat", "the cat sat"]) == pytest.approx(1.0)
    assert rouge_l("", ["x"]) == 0.0
    assert rouge_l("x y z", ["a b c"]) == 0.0


# --------------------------------------------------------------------------- scoring tables

TOY = pl.DataFrame(
    {
        "task": ["a", "a", "b"],
        "category": ["Cls", "Cls", "Gen"],
        "prediction": ["yes", "no", "the cat sat"],
        "references": [["Yes"], ["yes"], ["a cat sat"]],
    }
)


def test_score_instances_adds_per_instance_scores_times_100():
    scored = score_instances(TOY)
    assert scored.columns == [*TOY.columns, "exact_match", "rougeL"]
    assert scored.schema["exact_match"] == pl.Float64 and scored.schema["rougeL"] == pl.Float64
    assert scored["exact_match"].to_list() == [100.0, 0.0, 0.0]
    assert scored["rougeL"].to_list() == pytest.approx([100.0, 0.0, 200 / 3])


def test_score_instances_treats_a_null_prediction_as_empty():
    scored = score_instances(pl.DataFrame({"prediction": [None, "x"], "references": [["x"], ["x"]]}))
    assert scored["exact_match"].to_list() == [0.0, 100.0]
    assert scored["rougeL"].to_list() == [0.0, 100.0]


@pytest.mark.parametrize("missing", ["prediction", "references"])
def test_score_instances_names_a_missing_column(missing):
    with pytest.raises(ValueError, match=repr(missing)):
        score_instances(TOY.drop(missing))


def test_score_instances_rejects_an_instance_without_references():
    with pytest.raises(ValueError, match="no reference"):
        score_instances(pl.DataFrame({"prediction": ["x"], "references": [[]]}, schema_overrides={
            "references": pl.List(pl.String)}))


def test_aggregate_micro_averages_over_instances():
    """Per task: a = mean(100, 0), b = its one instance; overall = mean over the 3 instances
    (micro: 100/3 EM, not the macro 25)."""
    scored = score_instances(TOY)
    per_task = aggregate(scored, ["task"])
    assert per_task["task"].to_list() == ["a", "b"]
    assert per_task["n_instances"].to_list() == [2, 1]
    assert per_task["exact_match"].to_list() == pytest.approx([50.0, 0.0])
    assert per_task["rougeL"].to_list() == pytest.approx([50.0, 200 / 3])

    overall = aggregate(scored, [])
    assert overall.height == 1
    assert overall["n_instances"].item() == 3
    assert overall["exact_match"].item() == pytest.approx(100 / 3)
    assert overall["rougeL"].item() == pytest.approx((100 + 0 + 200 / 3) / 3)

    by_two = aggregate(scored, ["category", "task"])
    assert by_two.select("category", "task").rows() == [("Cls", "a"), ("Gen", "b")]
    assert by_two.schema["n_instances"] == pl.UInt32


# --------------------------------------------------------------------------- parity with NIv2's script


@pytest.fixture
def niv2_evaluation(monkeypatch):
    """NIv2's eval/automatic/evaluation.py, imported offline.

    It imports ``from rouge import rouge_scorer`` (Google's rouge-score) and loads GPT-2's
    tokenizer from the hub at import time (only used by the cross-lingual track): stub both
    modules in sys.modules for the duration of the test.
    """
    if not OFFICIAL_EVAL.is_file():
        pytest.skip(f"NIv2's official evaluation script not found at {OFFICIAL_EVAL}")
    rouge_stub = types.ModuleType("rouge")
    rouge_stub.rouge_scorer = rouge_scorer

    class _AutoTokenizer:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            return types.SimpleNamespace(tokenize=lambda s: s.split())

    transformers_stub = types.ModuleType("transformers")
    transformers_stub.AutoTokenizer = _AutoTokenizer
    monkeypatch.setitem(sys.modules, "rouge", rouge_stub)
    monkeypatch.setitem(sys.modules, "transformers", transformers_stub)
    spec = importlib.util.spec_from_file_location("niv2_official_evaluation", OFFICIAL_EVAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parity_with_niv2_official_evaluation(niv2_evaluation):
    """Per pair and over all pairs, our scores x100 (rounded to 4 decimals) equal NIv2's compute_metrics."""
    scored = score_instances(
        pl.DataFrame(
            {"prediction": [p for p, _ in PAIRS], "references": [r for _, r in PAIRS]},
            schema={"prediction": pl.String, "references": pl.List(pl.String)},
        )
    )
    for (pred, refs), ours in zip(PAIRS, scored.iter_rows(named=True)):
        theirs = niv2_evaluation.compute_metrics([pred], [refs])
        assert theirs["exact_match"] == pytest.approx(round(ours["exact_match"], 4), abs=1e-6), (pred, refs)
        assert theirs["rougeL"] == pytest.approx(round(ours["rougeL"], 4), abs=1e-6), (pred, refs)
        assert normalize_answer(pred) == niv2_evaluation.normalize_answer(pred)

    theirs = niv2_evaluation.compute_metrics([p for p, _ in PAIRS], [r for _, r in PAIRS])
    overall = aggregate(scored, []).row(0, named=True)
    assert theirs["exact_match"] == pytest.approx(round(overall["exact_match"], 4), abs=1e-6)
    assert theirs["rougeL"] == pytest.approx(round(overall["rougeL"], 4), abs=1e-6)
    # the pairs exercise both metrics away from 0 and 100
    assert 0 < overall["exact_match"] < 100 and 0 < overall["rougeL"] < 100

