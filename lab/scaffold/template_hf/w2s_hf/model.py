"""A causal LM fine-tuned with LoRA as a two-class classifier over label words.

The class logits of a prompt are the LM's next-token logits, after the prompt's last token, for
the first tokens of the two label words (meta["label_words"], e.g. [" No", " Yes"]). Only the LoRA
weights train; the base model stays frozen. The lab fine-tunes the weak teacher and the ceiling
with this same code (`train_and_predict`), so "trained the same way" holds by construction.

    clf = Classifier(model_dir, label_words, lora_r=16, lora_alpha=32, lora_dropout=0.05, max_length=512, seed=0)
    clf.predict_proba(prompts)                       # before fit: the strong model's zero-shot answer
    clf.fit(prompts, weak_soft, epochs=2, lr=1e-4, batch_size=8, grad_accum=2, seed=0, loss="soft_ce")
    p1 = clf.predict_proba(test_prompts)             # P(label = 1), float64 numpy array

Padding is on the left and position ids count real tokens only, so the last position of every row
is its prompt's last token and a prompt scores the same alone or in a padded batch. Prompts longer
than max_length lose their beginning (truncation on the left): the end, where the answer goes, stays.
"""
from __future__ import annotations

import gc
import hashlib
import inspect
import json
import os
import random
import shutil
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .losses import call_loss, get_loss

# Attention and MLP projections of Llama / Qwen / Mistral / Gemma-style models.
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
STATE_FILE = "state.pt"
ADAPTER_FILE = "adapter_model.safetensors"


def _bar(iterable, desc: str, enabled: bool, **kwargs):
    """A tqdm progress bar on stderr; sparse updates when stderr is a log file rather than a terminal."""
    from tqdm import tqdm

    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(iterable, desc=desc, file=sys.stderr, disable=not enabled, mininterval=interval, **kwargs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def limit_gpu_memory() -> None:
    """Honour LAB_GPU_MEMORY_FRACTION (set by the lab's GPU scheduler when agents share a GPU)."""
    fraction = os.environ.get("LAB_GPU_MEMORY_FRACTION")
    if fraction and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(float(fraction))


def lora_targets(model: torch.nn.Module) -> list[str] | str:
    """The attention and MLP projections present in the model, by name; else every Linear but the LM head."""
    present = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
               if isinstance(module, torch.nn.Linear)}
    found = [p for p in PROJECTIONS if p in present]
    return found if found else "all-linear"  # peft: every Linear layer except the output layer


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _load_kwargs(dtype: torch.dtype) -> dict:
    import transformers
    from packaging.version import Version

    key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return {key: dtype, "local_files_only": True}


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _loss_name(loss) -> str:
    """A stable name for a loss in checkpoint fingerprints: the name, or the function and its simple settings."""
    if isinstance(loss, str):
        return loss
    fn = loss if inspect.isfunction(loss) else type(loss)
    settings = [c.cell_contents for c in (getattr(loss, "__closure__", None) or ())
                if isinstance(c.cell_contents, (bool, int, float, str))]
    return f"{fn.__module__}.{fn.__qualname__}{settings}"


class Classifier:
    """A LoRA-wrapped causal LM whose two class logits are the label words' next-token logits."""

    def __init__(self, model_dir, label_words, lora_r: int = 16, lora_alpha: int = 32, lora_dropout: float = 0.05,
                 max_length: int = 512, device=None, dtype=None, *, seed: int = 0,
                 gradient_checkpointing: bool = False):
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = str(model_dir)
        self.label_words = list(label_words)
        if len(self.label_words) != 2:
            raise ValueError(f"label_words must be two words (class 0, class 1), got {self.label_words!r}")
        self.max_length = int(max_length)
        self.device = torch.device(device) if device is not None else default_device()
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        self.dtype = dtype if dtype is not None else default_dtype(self.device)

        tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        tokenizer.padding_side = "left"
        tokenizer.truncation_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
        if tokenizer.pad_token is None:
            raise ValueError(f"the tokenizer in {self.model_dir} has no pad, eos or unk token to pad with")
        self.tokenizer = tokenizer
        self.label_ids = self._label_token_ids(self.label_words)

        if self.device.type == "cuda":
            limit_gpu_memory()
        base = AutoModelForCausalLM.from_pretrained(self.model_dir, **_load_kwargs(self.dtype))
        base.config.use_cache = False
        if gradient_checkpointing:
            if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5
                base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.lora_config = LoraConfig(r=int(lora_r), lora_alpha=int(lora_alpha), lora_dropout=float(lora_dropout),
                                      target_modules=lora_targets(base), bias="none", task_type="CAUSAL_LM")
        torch.manual_seed(seed)  # the LoRA A matrices' initialisation (B starts at zero)
        with warnings.catch_warnings():  # peft calls a transformers property deprecated in transformers 5
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.model = get_peft_model(base, self.lora_config).to(self.device)
        self.model.eval()
        forward = base.forward
        self._position_ids = _accepts(forward, "position_ids")
        self._keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if _accepts(forward, k)), None)

    def _label_token_ids(self, words) -> list[int]:
        ids = []
        for word in words:
            tokens = self.tokenizer.encode(word, add_special_tokens=False)
            if not tokens:
                raise ValueError(f"label word {word!r} encodes to no tokens")
            ids.append(tokens[0])
        if ids[0] == ids[1]:
            raise ValueError(f"label words {words!r} both start with token {ids[0]} "
                             f"({self.tokenizer.convert_ids_to_tokens(ids[0])!r}): choose words whose first tokens differ")
        unk = self.tokenizer.unk_token_id
        if unk is not None and unk in ids:
            raise ValueError(f"label words {words!r}: one of them is the unknown token for this tokenizer")
        return ids

    # -- the forward pass ------------------------------------------------------------------------

    def encode(self, prompts) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def class_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(n, 2) float32 logits of the label words at the last prompt token (inputs left-padded)."""
        kwargs = {}
        if self._position_ids:
            kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        if self._keep:
            kwargs[self._keep] = 1
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
        return out.logits[:, -1, self.label_ids].float()

    def logits(self, prompts, batch_size: int = 16, *, adapter: bool = True, progress: bool = False) -> np.ndarray:
        """(n, 2) class logits for `prompts`; adapter=False asks the base model alone (zero-shot)."""
        prompts = list(prompts)
        if not prompts:
            return np.zeros((0, 2), dtype=np.float64)
        lengths = [len(ids) for ids in self.tokenizer(prompts, truncation=True, max_length=self.max_length)["input_ids"]]
        order = np.argsort(lengths, kind="stable")  # similar lengths together: less padding
        out = np.zeros((len(prompts), 2), dtype=np.float64)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), (self.model.disable_adapter() if not adapter else nullcontext()):
                for start in _bar(range(0, len(prompts), batch_size), "predict", progress, leave=False):
                    idx = order[start:start + batch_size]
                    out[idx] = self.class_logits(**self.encode([prompts[i] for i in idx])).cpu().double().numpy()
        finally:
            self.model.train(was_training)
        return out

    def predict_proba(self, prompts, batch_size: int = 16, *, adapter: bool = True,
                      progress: bool = False) -> np.ndarray:
        """P(label = 1) for every prompt (float64 array); adapter=False: the base model's zero-shot answer."""
        z = self.logits(prompts, batch_size, adapter=adapter, progress=progress)
        return torch.sigmoid(torch.from_numpy(z[:, 1] - z[:, 0])).numpy()

    # -- training --------------------------------------------------------------------------------

    def fit(self, prompts, soft_targets, *, epochs: int, lr: float, batch_size: int, grad_accum: int = 1,
            seed: int = 0, loss="soft_ce", progress: bool = True, checkpoint_dir=None, sample_weights=None,
            weight_decay: float = 0.0, max_grad_norm: float | None = 1.0) -> "Classifier":
        """Train the LoRA weights with AdamW (constant lr) on `soft_targets` = P(label = 1) per prompt.

        loss: a callable `f(logits (n, 2), targets (n,), progress=, weights=) -> scalar` or a name in
        losses.LOSSES. Each epoch visits the prompts in an order fixed by (seed, epoch); an optimizer
        step happens every `grad_accum` batches (and at the end of an epoch). With `checkpoint_dir`,
        the adapter, the optimizer and the random state are saved after every epoch, and a later call
        with the same data and settings resumes after the newest saved epoch (a call with more epochs
        continues from there). Returns self.
        """
        prompts = list(prompts)
        targets = np.asarray(soft_targets, dtype=np.float32).reshape(-1)
        if len(targets) != len(prompts):
            raise ValueError(f"{len(targets)} targets for {len(prompts)} prompts")
        if not np.isfinite(targets).all() or targets.min(initial=0) < 0 or targets.max(initial=0) > 1:
            raise ValueError("targets must be probabilities in [0, 1]")
        weights = None
        if sample_weights is not None:
            weights = np.asarray(sample_weights, dtype=np.float32).reshape(-1)
            if len(weights) != len(prompts):
                raise ValueError(f"{len(weights)} sample_weights for {len(prompts)} prompts")
        loss_fn = get_loss(loss)
        batch_size, grad_accum, epochs = int(batch_size), max(1, int(grad_accum)), int(epochs)
        n = len(prompts)
        per_epoch = -(-n // batch_size)
        total = max(1, epochs * per_epoch)

        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        seed_everything(seed)
        start = 0
        if checkpoint_dir is not None:
            checkpoint_dir = Path(checkpoint_dir)
            fingerprint = _digest(prompts, targets, weights if weights is not None else "none", lr, batch_size,
                                  grad_accum, seed, weight_decay, max_grad_norm,
                                  _loss_name(loss),
                                  self.label_ids, self.max_length, self.lora_config.r, self.lora_config.lora_alpha,
                                  self.lora_config.lora_dropout)
            start = self._resume(checkpoint_dir, fingerprint, optimizer, epochs)

        t_all = torch.from_numpy(targets)
        w_all = torch.from_numpy(weights) if weights is not None else None
        self.model.train()
        for epoch in range(start, epochs):
            order = np.random.default_rng([seed, epoch]).permutation(n)
            optimizer.zero_grad(set_to_none=True)
            bar = _bar(range(per_epoch), f"epoch {epoch + 1}/{epochs}", progress)
            for b in bar:
                idx = order[b * batch_size:(b + 1) * batch_size]
                group = min(grad_accum, per_epoch - (b // grad_accum) * grad_accum)
                logits = self.class_logits(**self.encode([prompts[i] for i in idx]))
                value = call_loss(loss_fn, logits, t_all[idx].to(self.device), (epoch * per_epoch + b) / total,
                                  None if w_all is None else w_all[idx].to(self.device))
                (value / group).backward()
                if (b + 1) % grad_accum == 0 or b + 1 == per_epoch:
                    if max_grad_norm:
                        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                bar.set_postfix(loss=f"{value.item():.4f}", refresh=False)
            if checkpoint_dir is not None:
                self._save_checkpoint(checkpoint_dir, epoch + 1, fingerprint, optimizer)
        self.model.eval()
        self.epochs_trained = epochs
        return self

    # -- saving and resuming ---------------------------------------------------------------------

    def save_adapter(self, folder) -> Path:
        """The LoRA weights and config in peft's format (adapter_config.json, adapter_model.safetensors)."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        return folder

    def load_adapter(self, folder) -> None:
        """Load LoRA weights saved by save_adapter into this classifier (same base model and LoRA config)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        state = load_file(str(Path(folder) / ADAPTER_FILE), device=str(self.device))
        result = set_peft_model_state_dict(self.model, state)
        unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
        if unexpected:
            raise ValueError(f"adapter in {folder} does not fit this model: unexpected {unexpected[:3]}")

    @staticmethod
    def saved_epochs(checkpoint_dir) -> list[int]:
        """The epochs with a complete checkpoint in checkpoint_dir, oldest first."""
        checkpoint_dir = Path(checkpoint_dir)
        if not checkpoint_dir.is_dir():
            return []
        found = []
        for path in checkpoint_dir.glob("epoch-*"):
            suffix = path.name.split("-", 1)[1]
            if suffix.isdigit() and (path / STATE_FILE).is_file():
                found.append(int(suffix))
        return sorted(found)

    def _save_checkpoint(self, checkpoint_dir: Path, epoch: int, fingerprint: str, optimizer) -> None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint_dir / f".epoch-{epoch}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.save_adapter(tmp)
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate(),
               "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        torch.save({"epoch": epoch, "fingerprint": fingerprint, "optimizer": optimizer.state_dict(), "rng": rng},
                   tmp / STATE_FILE)
        final = checkpoint_dir / f"epoch-{epoch}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)  # a checkpoint appears whole or not at all
        for old in self.saved_epochs(checkpoint_dir):
            if old != epoch:
                shutil.rmtree(checkpoint_dir / f"epoch-{old}", ignore_errors=True)

    def _resume(self, checkpoint_dir: Path, fingerprint: str, optimizer, epochs: int) -> int:
        """Load the newest checkpoint that belongs to this run; the number of epochs already done."""
        saved = self.saved_epochs(checkpoint_dir)
        if not saved:
            return 0
        epoch = saved[-1]
        state = torch.load(checkpoint_dir / f"epoch-{epoch}" / STATE_FILE, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != fingerprint:
            warnings.warn(f"{checkpoint_dir}: checkpoint of another run (other data or settings); starting over")
            return 0
        if epoch > epochs:
            warnings.warn(f"{checkpoint_dir}: checkpoint at epoch {epoch} is past the {epochs} asked for; starting over")
            return 0
        self.load_adapter(checkpoint_dir / f"epoch-{epoch}")
        optimizer.load_state_dict(state["optimizer"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["random"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.resumed_from = epoch
        return epoch

    def close(self) -> None:
        """Free the model (and its GPU memory)."""
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- from meta.json --------------------------------------------------------------------------

    @classmethod
    def from_train_config(cls, model_dir, label_words, train: dict, *, seed: int = 0, device=None, dtype=None):
        """A Classifier with the LoRA and length settings of meta["train"]."""
        return cls(model_dir, label_words, lora_r=train["lora_r"], lora_alpha=train["lora_alpha"],
                   lora_dropout=train["lora_dropout"], max_length=train["max_length"], device=device, dtype=dtype,
                   seed=seed, gradient_checkpointing=bool(train.get("gradient_checkpointing", False)))


def fit_kwargs(train: dict) -> dict:
    """The fit() keywords that meta["train"] sets: epochs, lr, batch_size, grad_accum."""
    return {"epochs": int(train["epochs"]), "lr": float(train["lr"]), "batch_size": int(train["batch_size"]),
            "grad_accum": int(train.get("grad_accum", 1))}


def train_and_predict(model_dir, label_words, train_prompts, targets, predict_prompts, train: dict, *,
                      seed: int = 0, loss="soft_ce", sample_weights=None, checkpoint_dir=None,
                      progress: bool = True, device=None, dtype=None) -> np.ndarray:
    """The standard recipe: LoRA-fine-tune `model_dir` on (train_prompts, targets) with the settings of
    meta["train"], then P(label = 1) for `predict_prompts`. vanilla.py is this with the teacher's
    weak_soft; the lab trains the weak teacher and the ceiling with this very function."""
    clf = Classifier.from_train_config(model_dir, label_words, train, seed=seed, device=device, dtype=dtype)
    try:
        clf.fit(train_prompts, targets, **fit_kwargs(train), seed=seed, loss=loss, progress=progress,
                checkpoint_dir=checkpoint_dir, sample_weights=sample_weights)
        return clf.predict_proba(predict_prompts, batch_size=int(train["batch_size"]), progress=progress)
    finally:
        clf.close()
