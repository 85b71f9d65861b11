"""Training losses for the probe, in numpy.

A loss takes (logits, targets, progress) and returns (losses, gradients): one loss per example and
its derivative with respect to that example's logit. logits and targets are 1-d float32 arrays
(targets are P(label = 1), soft or hard), and progress runs from 0 to 1 over training, for losses
that change as training goes on. The probe averages the per-example losses with the example
weights and follows the gradients. A target computed from the probe's own predictions counts as a
constant (no gradient flows through it), as `.detach()` would make it in torch.

Writing a loss with torch's autograd instead: see w2s/torch_probe.py.
"""
import numpy as np

from w2s.activations import sigmoid


def soft_cross_entropy(logits, targets, progress=0.0):
    """Cross entropy against soft targets: what training on the teacher's probabilities means."""
    losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return losses, sigmoid(logits) - targets


def label_smoothing(epsilon):
    """Cross entropy against targets pulled towards 0.5 by epsilon: a softer, less committed fit."""
    def loss(logits, targets, progress=0.0):
        return soft_cross_entropy(logits, targets * (1 - epsilon) + 0.5 * epsilon)
    return loss


def hardened(probs, positive_fraction):
    """1.0 for the top `positive_fraction` of probs, else 0.0: predictions with a fixed class balance."""
    threshold = np.quantile(probs, 1 - positive_fraction)
    return (probs > threshold).astype(np.float32)


def logconf(alpha, warmup):
    """The auxiliary confidence loss of Burns et al. 2023 (weak-to-strong generalization).

    The target mixes the teacher's label with the strong model's own hardened prediction:
    (1 - a) * teacher + a * hardened(strong), with a ramping linearly from 0 to alpha over the
    first `warmup` fraction of training. Hardening uses a threshold set, in every batch, so the
    share of positive predictions equals the teacher's share of positive labels in that batch;
    this keeps the loss from collapsing onto one class. It lets the strong model disagree with
    the teacher where it is confident.
    """
    def loss(logits, targets, progress=0.0):
        a = alpha * min(1.0, progress / warmup) if warmup > 0 else alpha
        strong = hardened(sigmoid(logits), float(np.clip(targets.mean(), 0.01, 0.99)))
        return soft_cross_entropy(logits, (1 - a) * targets + a * strong)
    return loss


def bootstrapping(beta, hard=True):
    """Bootstrapping loss of Reed et al. 2014: target = beta * teacher + (1 - beta) * own prediction."""
    def loss(logits, targets, progress=0.0):
        own = sigmoid(logits)
        if hard:
            own = (own > 0.5).astype(np.float32)
        return soft_cross_entropy(logits, beta * targets + (1 - beta) * own)
    return loss


def generalized_cross_entropy(q):
    """Generalized cross entropy of Zhang & Sabuncu 2018: (1 - p_target^q) / q.

    q -> 0 is cross entropy, q = 1 the mean absolute error; in between it bounds the loss of an
    example the probe confidently disagrees with, so a teacher's wrong labels pull less.
    Soft targets mix the two classes' losses.
    """
    def loss(logits, targets, progress=0.0):
        raw = sigmoid(logits)
        p = np.clip(raw, 1e-6, 1 - 1e-6)
        losses = (targets * (1 - p ** q) + (1 - targets) * (1 - (1 - p) ** q)) / q
        d_p = (1 - targets) * (1 - p) ** (q - 1) - targets * p ** (q - 1)
        inside = (raw >= 1e-6) & (raw <= 1 - 1e-6)   # where the clip is flat, no gradient
        return losses, np.where(inside, d_p * raw * (1 - raw), 0).astype(logits.dtype)
    return loss


def symmetric_cross_entropy(alpha=1.0, beta=0.5, floor=1e-4):
    """Symmetric cross entropy of Wang et al. 2019: alpha * CE(target, p) + beta * CE(p, target).

    The reverse term treats the probe's prediction as the target distribution and the teacher's
    label (floored at `floor`, since log 0 is undefined) as the prediction: it is bounded and
    tolerant of label noise.
    """
    def loss(logits, targets, progress=0.0):
        forward, d_forward = soft_cross_entropy(logits, targets)
        p = sigmoid(logits)
        t = np.clip(targets, floor, 1 - floor)
        log_t, log_not_t = np.log(t), np.log(1 - t)
        reverse = -(p * log_t + (1 - p) * log_not_t)
        d_reverse = -(log_t - log_not_t) * p * (1 - p)
        return alpha * forward + beta * reverse, alpha * d_forward + beta * d_reverse
    return loss
