"""Fully offline stand-ins for the `hf` task kind: a tiny random-weight causal LM and small datasets.

    make_tiny_model(folder, vocab_words) -> folder   a Qwen3-shaped LM + its tokenizer, saved as a
                                                    Hugging Face folder (what `strong_model` points at)
    tiny_jsonl_datasets(folder)          -> paths   binary and pairwise JSONL splits (labelled, train,
                                                    test) with a `label` field, that the tiny LM can learn
    vocabulary(texts)                    -> words   every token the tokenizer needs for those texts

Nothing here touches the network: the tokenizer is a `tokenizers` WordLevel model over the given
words (whitespace and punctuation pre-tokenizer), the model is `AutoModelForCausalLM.from_config`.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"

# Binary: "name a fruit ?" (or a tool) answered with a fruit or a tool; label 1 when the answer fits.
FRUITS = ["apple", "pear", "plum", "grape", "mango", "lemon", "peach", "melon"]
TOOLS = ["hammer", "saw", "drill", "wrench", "chisel", "pliers", "spanner", "file"]
# Pairwise: two responses to a request; the better one is polite. Label 1 when `second` is better.
REQUESTS = ["help me", "fix this", "explain that", "answer me", "write it", "check this"]
GOOD = ["sure , happy to help", "of course , here it is", "gladly , see below", "certainly , done"]
BAD = ["no", "go away", "figure it out", "not my job"]

BINARY_TEMPLATE = "Question : {question}\nAnswer : {choice}\nCorrect ?"
PAIRWISE_TEMPLATE = "Request : {prompt}\nA : {first}\nB : {second}\nBetter ?"
BINARY_LABEL_WORDS = [" No", " Yes"]
PAIRWISE_LABEL_WORDS = [" A", " B"]


def vocabulary(texts) -> list[str]:
    """The distinct pre-tokens of `texts` (words and punctuation runs), in first-seen order."""
    from tokenizers.pre_tokenizers import Whitespace

    pre, seen = Whitespace(), {}
    for text in texts:
        for token, _ in pre.pre_tokenize_str(text):
            seen.setdefault(token, None)
    return list(seen)


def make_tiny_model(folder, vocab_words, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4,
                    max_positions: int = 256) -> Path:
    """Save a random-weight Qwen3-shaped causal LM and a word-level tokenizer over `vocab_words` in `folder`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    import transformers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    # Qwen3 (the family of the lab's usual strong model) where this transformers has it. Qwen2's
    # tokenizer class is forced by transformers 5's AutoTokenizer, which would not read a WordLevel model.
    config_class = getattr(transformers, "Qwen3Config", None) or transformers.Qwen2Config

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = [PAD, UNK, EOS] + [w for w in dict.fromkeys(vocab_words) if w not in (PAD, UNK, EOS)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, unk_token=UNK, eos_token=EOS)
    tokenizer.save_pretrained(folder)

    config = config_class(
        vocab_size=len(words), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        pad_token_id=0, eos_token_id=2, bos_token_id=None, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # after the final RMSNorm the hidden state's norm is fixed: give the LM head
        model.lm_head.weight.normal_(0.0, 0.2)  # room for confident logits (std 0.02 caps them near +-1)
    model.save_pretrained(folder)
    for path in folder.iterdir():   # as a Hub download is: transformers saves weights as 0600
        path.chmod(0o644)
    return folder


def _binary_rows(rng: random.Random, n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        label = int(rng.random() < 0.5)
        choice = rng.choice(FRUITS if label else TOOLS)
        rows.append({"id": f"{prefix}{i}", "question": "name a fruit ?", "choice": choice, "label": label})
    return rows


def _pairwise_rows(rng: random.Random, n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        good, bad = rng.choice(GOOD), rng.choice(BAD)
        label = int(rng.random() < 0.5)
        first, second = (bad, good) if label else (good, bad)
        rows.append({"id": f"{prefix}{i}", "prompt": rng.choice(REQUESTS), "first": first, "second": second,
                     "label": label})
    return rows


def tiny_jsonl_datasets(folder, n: int = 48, seed: int = 0) -> dict[str, dict[str, Path]]:
    """Write binary/ and pairwise/ datasets of `n` rows per split (labelled, train, test) under `folder`.

    Returns {"binary": {"labelled": path, "train": path, "test": path}, "pairwise": {...}}. Every row
    has an `id`, the shape's fields and a ground-truth `label`.
    """
    folder, rng, out = Path(folder), random.Random(seed), {}
    for shape, make in (("binary", _binary_rows), ("pairwise", _pairwise_rows)):
        (folder / shape).mkdir(parents=True, exist_ok=True)
        out[shape] = {}
        for split in ("labelled", "train", "test"):
            path = folder / shape / f"{split}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in make(rng, n, f"{split}-")))
            out[shape][split] = path
    return out


def all_words() -> list[str]:
    """The vocabulary that covers both tiny datasets, their templates and their label words."""
    texts = [BINARY_TEMPLATE.format(question="", choice=""),
             PAIRWISE_TEMPLATE.format(prompt="", first="", second=""), *BINARY_LABEL_WORDS, *PAIRWISE_LABEL_WORDS,
             *FRUITS, *TOOLS, "name a fruit ?", *REQUESTS, *GOOD, *BAD]
    return vocabulary(texts)
