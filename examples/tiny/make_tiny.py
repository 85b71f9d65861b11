"""Make what examples/tiny/lab.toml names, offline: two random-weight Qwen3-shaped causal LMs with a word-level
tokenizer (models/strong, models/weak) and small pairwise and binary JSONL datasets (data/), from tests/tiny_hf.py.

    python make_tiny.py [FOLDER]      (default: the folder of this file)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))   # the repository's tests/tiny_hf.py

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import tiny_hf  # noqa: E402


def make(folder: Path) -> None:
    words = tiny_hf.all_words()
    tiny_hf.make_tiny_model(folder / "models" / "strong", words, seed=0, hidden=32, layers=2)
    tiny_hf.make_tiny_model(folder / "models" / "weak", words, seed=1, hidden=16, layers=1)
    tiny_hf.tiny_jsonl_datasets(folder / "data", n=48)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    make(target)
    print(f"made models/ and data/ in {target}; next: lab init")
