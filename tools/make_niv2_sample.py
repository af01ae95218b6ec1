"""Build the embedded NIv2 sample (data/niv2-sample) from a NIv2 checkout.

Usage: python tools/make_niv2_sample.py ../shared/niv2 data/niv2-sample

Copies the chosen task files unchanged except that ``Instances`` is cut to its
first ``--train-instances`` (training tasks) or ``--test-instances`` (test tasks)
entries, writes a ``sample`` split listing them, and copies the LICENSE.
"""

import argparse
import json
import shutil
from pathlib import Path

TRAIN = [
    "task1289_trec_classification",
    "task227_clariq_classification",
    "task843_financial_phrasebank_classification",
    "task664_mmmlu_answer_generation_abstract_algebra",
    "task1146_country_capital",
    "task1509_evalution_antonyms",
    "task1585_root09_hypernym_generation",
    "task132_dais_text_modification",
    "task1364_hans_answer_generation",
    "task565_circa_answer_generation",
    "task471_haspart_answer_generation",
    "task143_odd-man-out_classification_generate_category",
]
TEST = [
    "task1155_bard_analogical_reasoning_trash_or_treasure",
    "task391_causal_relationship",
    "task1612_sick_label_classification",
    "task671_ambigqa_text_generation",
    "task1557_jfleg_answer_generation",
    "task102_commongen_sentence_generation",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("niv2_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--train-instances", type=int, default=100)
    ap.add_argument("--test-instances", type=int, default=100)
    args = ap.parse_args()
    default_train = set((args.niv2_dir / "splits/default/train_tasks.txt").read_text().split())
    default_test = set((args.niv2_dir / "splits/default/test_tasks.txt").read_text().split())
    assert set(TRAIN) <= default_train and set(TEST) <= default_test, "sample must follow the default split"
    (args.out_dir / "tasks").mkdir(parents=True, exist_ok=True)
    (args.out_dir / "splits/sample").mkdir(parents=True, exist_ok=True)
    manifest = ["task\tsplit\tinstances_kept\tinstances_in_source\tinstance_license"]
    for part, names, n in (("train", TRAIN, args.train_instances), ("test", TEST, args.test_instances)):
        for name in names:
            task = json.loads((args.niv2_dir / "tasks" / f"{name}.json").read_text(encoding="utf-8"))
            total = len(task["Instances"])
            task["Instances"] = task["Instances"][:n]
            (args.out_dir / "tasks" / f"{name}.json").write_text(
                json.dumps(task, ensure_ascii=False, indent=4) + "\n", encoding="utf-8"
            )
            lic = ", ".join(task.get("Instance License", []))
            manifest.append(f"{name}\t{part}\t{len(task['Instances'])}\t{total}\t{lic}")
        (args.out_dir / f"splits/sample/{part}_tasks.txt").write_text("\n".join(names) + "\n")
    (args.out_dir / "MANIFEST.tsv").write_text("\n".join(manifest) + "\n")
    shutil.copy(args.niv2_dir / "LICENSE", args.out_dir / "LICENSE")


if __name__ == "__main__":
    main()
