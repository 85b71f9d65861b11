"""Vanilla: LoRA-fine-tune the strong model on the teacher's soft labels (cross entropy), as in Burns et al. 2023."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s_hf.data import run
from w2s_hf.model import train_and_predict


def predict(view, seed):
    meta = view.meta
    return train_and_predict(meta["strong_model"], meta["label_words"], view.train_prompts, view.weak_soft,
                             view.test_prompts, view.train_config, seed=seed, loss="soft_ce")


if __name__ == "__main__":
    run(predict, __doc__)
