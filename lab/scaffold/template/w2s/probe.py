"""A probe on the strong model's features, trained in torch: linear, or a small MLP."""
from dataclasses import dataclass

import numpy as np
import torch

from w2s import defaults
from w2s.losses import soft_cross_entropy


@dataclass(frozen=True)
class ProbeConfig:
    hidden: int = defaults.HIDDEN
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    learning_rate: float = defaults.LEARNING_RATE
    l2: float = defaults.L2


class Probe:
    def __init__(self, model: torch.nn.Module):
        self.model = model

    @torch.no_grad()
    def logits(self, X) -> np.ndarray:
        return self.model(torch.as_tensor(X, dtype=torch.float32)).squeeze(-1).numpy()

    def predict_proba(self, X) -> np.ndarray:
        """P(label = 1) for every row of X."""
        return 1 / (1 + np.exp(-self.logits(X).astype(np.float64)))


def build_model(dim: int, hidden: int) -> torch.nn.Module:
    if hidden <= 0:
        return torch.nn.Linear(dim, 1)
    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 1))


class Adam:
    """Adam (Kingma & Ba 2015) written out: torch.optim's first use imports torch._dynamo, about 1.5 s."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps, self.t = list(params), lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            m_hat, v_hat = m / (1 - b1 ** self.t), v / (1 - b2 ** self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
            p.grad = None


def train_probe(X, targets, *, loss=soft_cross_entropy, weights=None, config: ProbeConfig = ProbeConfig(),
                seed: int = 0) -> Probe:
    """Fit a probe to targets (P(label = 1), soft or hard) with Adam; deterministic given the seed.

    loss: see w2s/losses.py. weights: one non-negative weight per example (default all 1).
    """
    torch.manual_seed(seed)
    X = torch.as_tensor(X, dtype=torch.float32)
    targets = torch.as_tensor(targets, dtype=torch.float32)
    weights = torch.ones(len(X)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    model = build_model(X.shape[1], config.hidden)
    optimizer = Adam(model.parameters(), lr=config.learning_rate)
    penalized = [p for name, p in model.named_parameters() if name.endswith("weight")]
    batch_size = config.batch_size if 0 < config.batch_size < len(X) else len(X)
    steps_per_epoch = -(-len(X) // batch_size)
    total_steps, step = config.epochs * steps_per_epoch, 0
    for _ in range(config.epochs):
        order = torch.randperm(len(X))
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            logits = model(X[batch]).squeeze(-1)
            per_example = loss(logits, targets[batch], step / total_steps)
            w = weights[batch]
            objective = (w * per_example).sum() / w.sum().clamp_min(1e-12)
            objective = objective + config.l2 * sum((p ** 2).sum() for p in penalized)
            objective.backward()
            optimizer.step()
            step += 1
    model.eval()
    return Probe(model)
