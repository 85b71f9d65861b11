"""Your method. This file is yours to change: the scorer runs

    python method.py --data DIR --out PREDICTIONS --seed N

from your commit and scores what it writes. It starts as the vanilla baseline (methods/vanilla.py):
LoRA-fine-tune the strong model on the weak teacher's soft labels, then predict the test prompts.
Build on w2s_hf/ (data, model, losses, select) or replace any of it; see README.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from w2s_hf.data import run
from w2s_hf.model import train_and_predict


def predict(view, seed):
    """P(label = 1) for every test row, from the training rows and the teacher's labels."""
    meta = view.meta
    return train_and_predict(meta["strong_model"], meta["label_words"], view.train_prompts, view.weak_soft,
                             view.test_prompts, view.train_config, seed=seed, loss="soft_ce")


if __name__ == "__main__":
    run(predict, __doc__)
