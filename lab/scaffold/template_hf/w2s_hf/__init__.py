"""Building blocks for weak-to-strong methods on a Hugging Face causal LM fine-tuned with LoRA.

    from w2s_hf.data import load_view, prompt, run     # the data folder, prompts, the method contract
    from w2s_hf.model import Classifier                # LoRA classifier over two label words
    from w2s_hf.model import train_and_predict         # the standard recipe (vanilla, teacher, ceiling)
    from w2s_hf import losses, select                  # soft_ce, hard_ce, confident, logconf; filtering

Inside this package imports are relative, so it works both as `w2s_hf` (a method puts the
repository root on sys.path) and as `lab.scaffold.template_hf.w2s_hf` (the lab's own use).
"""
from . import defaults, losses, select
from .data import View, load_view, prompt, run, swapped, write_predictions
from .losses import confident, hard_ce, logconf, soft_ce
from .model import Classifier, fit_kwargs, train_and_predict

__all__ = ["View", "load_view", "prompt", "run", "swapped", "write_predictions", "defaults", "losses", "select",
           "soft_ce", "hard_ce", "confident", "logconf", "Classifier", "fit_kwargs", "train_and_predict"]
