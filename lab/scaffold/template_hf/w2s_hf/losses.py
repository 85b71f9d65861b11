"""Training losses for the LoRA classifier.

A loss is `f(logits, targets, progress=0.0, weights=None) -> scalar tensor`:

- logits: (n, 2) float, the LM's next-token logits for the two label words (class 0, class 1);
- targets: (n,) float, P(label = 1) to fit, soft (the teacher's weak_soft) or hard;
- progress: from 0 to 1 over the whole of training (all epochs), for losses that change as training goes;
- weights: (n,) per-example weights or None; a loss returns the weighted mean of its per-example losses.

`Classifier.fit(loss=...)` takes such a callable or one of the names in LOSSES. A loss of your own
only needs (logits, targets); `fit` passes `progress` and `weights` only if your function accepts them.
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F


def weighted_mean(per_example: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    if weights is None:
        return per_example.mean()
    weights = weights.to(per_example)
    return (per_example * weights).sum() / weights.sum().clamp_min(1e-12)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example CE of the 2-way softmax of `logits` against target P(label = 1): -(t log p1 + (1 - t) log p0)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    t = targets.to(logp)
    return -(t * logp[:, 1] + (1 - t) * logp[:, 0])


def soft_ce(logits, targets, progress=0.0, weights=None):
    """Cross entropy against the soft targets: training on the teacher's probabilities (vanilla)."""
    return weighted_mean(cross_entropy(logits, targets), weights)


def hard_ce(logits, targets, progress=0.0, weights=None):
    """Cross entropy against the hardened targets, 1.0 where targets > 0.5 else 0.0."""
    return weighted_mean(cross_entropy(logits, (targets > 0.5).float()), weights)


soft_cross_entropy = soft_ce  # the embedded scaffold's name


def label_smoothing(epsilon: float):
    """Cross entropy against targets pulled towards 0.5 by epsilon: commit less to the teacher."""
    def loss(logits, targets, progress=0.0, weights=None):
        return soft_ce(logits, targets * (1 - epsilon) + 0.5 * epsilon, weights=weights)
    return loss


def ramp(alpha: float, warmup: float, progress: float) -> float:
    """alpha * min(1, progress / warmup): the auxiliary weight, rising linearly over the first `warmup` of training."""
    return alpha * min(1.0, progress / warmup) if warmup > 0 else alpha


def hardened(p1: torch.Tensor, positive_fraction) -> torch.Tensor:
    """1.0 for the top `positive_fraction` of p1, else 0.0: hard predictions with a fixed class balance."""
    threshold = torch.quantile(p1.float(), 1 - float(positive_fraction))
    return (p1 > threshold).float()


def confident(alpha: float = 0.5, warmup: float = 0.2):
    """The auxiliary confidence loss of Burns et al. 2023 (weak-to-strong generalization), plain hardening.

        L = (1 - a) * CE(p, teacher) + a * CE(p, 1[p1 > 0.5]),   a = alpha * min(1, progress / warmup)

    p is the classifier's own prediction (detached when hardened). The second term rewards the
    strong model for being confident in its own answer, so it can overrule the teacher where it is
    sure. Since CE is linear in its target, this is CE against the mixed target
    (1 - a) * teacher + a * 1[p1 > 0.5].
    """
    def loss(logits, targets, progress=0.0, weights=None):
        a = ramp(alpha, warmup, progress)
        own = (F.softmax(logits.float(), dim=-1)[:, 1] > 0.5).float().detach()
        return weighted_mean(cross_entropy(logits, (1 - a) * targets.float() + a * own), weights)
    return loss


def logconf(alpha: float = 0.5, warmup: float = 0.2):
    """Burns et al.'s confidence loss as in their code (`logconf_loss_fn`): class-balanced hardening.

        L = CE(p, (1 - a) * teacher + a * hardened(p1, mean(teacher))),   a = alpha * min(1, progress / warmup)

    Hardening puts the threshold, in every batch, at the quantile of p1 that makes the share of
    positive predictions equal the teacher's share of positive labels in that batch, which keeps the
    loss from collapsing onto one class. The same semantics as the embedded scaffold's `logconf`.
    """
    def loss(logits, targets, progress=0.0, weights=None):
        a = ramp(alpha, warmup, progress)
        p1 = F.softmax(logits.float(), dim=-1)[:, 1].detach()
        own = hardened(p1, targets.float().mean().clamp(0.01, 0.99))
        return weighted_mean(cross_entropy(logits, (1 - a) * targets.float() + a * own), weights)
    return loss


def bootstrapping(beta: float = 0.8, hard: bool = True):
    """Bootstrapping loss of Reed et al. 2014: target = beta * teacher + (1 - beta) * own prediction."""
    def loss(logits, targets, progress=0.0, weights=None):
        own = F.softmax(logits.float(), dim=-1)[:, 1].detach()
        if hard:
            own = (own > 0.5).float()
        return weighted_mean(cross_entropy(logits, beta * targets.float() + (1 - beta) * own), weights)
    return loss


LOSSES = {
    "soft_ce": lambda: soft_ce,
    "hard_ce": lambda: hard_ce,
    "confident": confident,
    "logconf": logconf,
    "bootstrapping": bootstrapping,
}


def get_loss(loss):
    """A loss callable from a callable (returned as is) or a name in LOSSES (with its default settings)."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: expected a callable or one of {sorted(LOSSES)}")
    return LOSSES[loss]()


def call_loss(loss, logits, targets, progress: float, weights):
    """Call `loss` with the keywords it accepts (progress, weights); weights need a loss that accepts them."""
    try:
        params = inspect.signature(loss).parameters
    except (TypeError, ValueError):
        params = {}
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {}
    if any_kw or "progress" in params:
        kwargs["progress"] = progress
    if weights is not None:
        if not (any_kw or "weights" in params):
            raise ValueError("sample_weights need a loss that accepts `weights` (see w2s_hf/losses.py)")
        kwargs["weights"] = weights
    return loss(logits, targets, **kwargs)
