"""Build ``tests/data/tiny-bpe``: a small byte-level BPE tokenizer (GPT-2 / SmolLM2 style) for tests.

Trained with Hugging Face ``tokenizers`` on the text of the embedded NIv2 sample (definitions,
demonstrations, instances), vocabulary of 1024, with SmolLM2's special tokens (``<|endoftext|>``,
``<|im_start|>``, ``<|im_end|>``) and a ChatML chat template. Byte-level BPE is what makes the
prompt/target seam matter (``"Output:" + " Yes"`` vs ``"Output: " + "Yes"``), so tests of the
decoder-only path use it with a tiny randomly initialised Llama. No download: run
``python tools/make_tiny_tokenizer.py`` to rebuild it (deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "tiny-bpe"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def corpus():
    for path in sorted((REPO / "data" / "niv2-sample" / "tasks").glob("*.json")):
        task = json.loads(path.read_text(encoding="utf-8"))
        yield " ".join(task["Definition"])
        for ex in task.get("Positive Examples", []) + task.get("Negative Examples", []):
            yield f"{ex['input']} Output: {ex['output']}"
        for inst in task["Instances"][:200]:
            yield f"Input: {inst['input']} Output: {' '.join(inst['output'])}"


def main() -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    OUT.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(OUT)
    print(f"wrote {OUT} (vocabulary {len(fast)})")


if __name__ == "__main__":
    main()
