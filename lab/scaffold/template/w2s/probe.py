"""A probe on the strong model's features, trained in numpy: linear, or a small MLP.

Minibatch Adam on the weighted mean loss plus L2 on the weights, as torch would run it: the same
initialisation as torch.nn.Linear, the same Adam. It needs no torch, so a method built on it starts
in a fraction of a second. w2s/torch_probe.py trains the same probe in torch, for losses written
with autograd; for a seed the two start from the same weights and see the same batches.
"""
from dataclasses import dataclass

import numpy as np

from w2s import defaults
from w2s.activations import gelu, gelu_derivative, sigmoid
from w2s.losses import soft_cross_entropy


@dataclass(frozen=True)
class ProbeConfig:
    hidden: int = defaults.HIDDEN
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    learning_rate: float = defaults.LEARNING_RATE
    l2: float = defaults.L2


class Probe:
    """params: [weight (1, dim), bias (1,)] for a linear probe; [weight (hidden, dim), bias (hidden,),
    weight (1, hidden), bias (1,)] for an MLP (torch.nn.Linear's layout)."""

    def __init__(self, params: list[np.ndarray]):
        self.params = params

    def logits(self, X) -> np.ndarray:
        return forward(self.params, np.asarray(X, dtype=np.float32))[0]

    def predict_proba(self, X) -> np.ndarray:
        """P(label = 1) for every row of X."""
        return sigmoid(self.logits(X).astype(np.float64))


def initial_params(dim: int, hidden: int, rng: np.random.Generator) -> list[np.ndarray]:
    """torch.nn.Linear's initialisation: weights and biases uniform in +-1/sqrt(inputs)."""
    params = []
    for inputs, outputs in ([(dim, 1)] if hidden <= 0 else [(dim, hidden), (hidden, 1)]):
        bound = 1 / np.sqrt(inputs)
        params.append(rng.uniform(-bound, bound, (outputs, inputs)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, outputs).astype(np.float32))
    return params


def start(n: int, dim: int, config: ProbeConfig, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The initial parameters and each epoch's order of the rows, drawn from the seed."""
    rng = np.random.default_rng(seed)
    params = initial_params(dim, config.hidden, rng)
    return params, [rng.permutation(n) for _ in range(config.epochs)]


def forward(params, X):
    """Logits (n,) and what the backward pass needs."""
    if len(params) == 2:
        return X @ params[0][0] + params[1][0], None
    pre = X @ params[0].T + params[1]
    return gelu(pre) @ params[2][0] + params[3][0], pre


def backward(params, X, pre, d_logits) -> list[np.ndarray]:
    """Gradients of sum(d_logits * logits) with respect to the params."""
    if pre is None:
        return [(d_logits @ X)[None, :], d_logits.sum(keepdims=True)]
    d_pre = np.outer(d_logits, params[2][0]) * gelu_derivative(pre)
    return [d_pre.T @ X, d_pre.sum(0), (d_logits @ gelu(pre))[None, :], d_logits.sum(keepdims=True)]


class Adam:
    """Adam (Kingma & Ba 2015), the update torch.optim.Adam makes, in float32."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):
        self.t += 1
        b1, b2 = self.betas
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / (1 - b1 ** self.t)) / (np.sqrt(v / (1 - b2 ** self.t)) + self.eps)


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    size = batch_size if 0 < batch_size < len(order) else len(order)
    return [order[i:i + size] for i in range(0, len(order), size)]


def train_probe(X, targets, *, loss=soft_cross_entropy, weights=None, config: ProbeConfig = ProbeConfig(),
                seed: int = 0) -> Probe:
    """Fit a probe to targets (P(label = 1), soft or hard) with Adam; deterministic given the seed.

    loss: see w2s/losses.py. weights: one non-negative weight per example (default all 1).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.float32)
    weights = np.ones(len(X), np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    params, orders = start(len(X), X.shape[1], config, seed)
    optimizer = Adam(params, config.learning_rate)
    schedule = [batch for order in orders for batch in batches(order, config.batch_size)]
    for step, batch in enumerate(schedule):
        xb, w = X[batch], weights[batch]
        logits, pre = forward(params, xb)
        _, d_losses = loss(logits, targets[batch], step / len(schedule))
        d_logits = (w * d_losses / max(float(w.sum()), 1e-12)).astype(np.float32)
        grads = backward(params, xb, pre, d_logits)
        for i in range(0, len(params), 2):   # L2 on the weights, not the biases
            grads[i] += 2 * config.l2 * params[i]
        optimizer.step(grads)
    return Probe(params)
