"""Confident: train only on the rows whose teacher label is most confident (|weak_soft - 0.5| large, per class)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s_hf import defaults
from w2s_hf.data import run
from w2s_hf.model import train_and_predict
from w2s_hf.select import most_confident


def predict(view, seed):
    meta, keep = view.meta, most_confident(view.weak_soft, defaults.CONFIDENT_KEEP)
    prompts = view.train_prompts
    return train_and_predict(meta["strong_model"], meta["label_words"], [prompts[i] for i in keep],
                             view.weak_soft[keep], view.test_prompts, view.train_config, seed=seed)


if __name__ == "__main__":
    run(predict, __doc__)
