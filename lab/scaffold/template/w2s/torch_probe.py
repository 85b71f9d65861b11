"""The probe of w2s/probe.py trained in torch, for losses written with torch's autograd.

A loss here is f(logits, targets, progress) -> per-example losses, all torch tensors; no gradient
needs writing. For a seed the training starts from the same weights and sees the same batches as
w2s/probe.py, so with the same loss the two give the same probe up to float rounding. Importing
torch takes about a second of every run that uses this module.
"""
import numpy as np
import torch

from w2s.probe import Probe, ProbeConfig, batches, start


def soft_cross_entropy(logits, targets, progress=0.0):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def forward(params, X):
    if len(params) == 2:
        return X @ params[0][0] + params[1][0]
    return torch.nn.functional.gelu(X @ params[0].T + params[1]) @ params[2][0] + params[3][0]


class Adam:
    """Adam written out: torch.optim's first use imports torch._dynamo, about 1.5 s."""

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
    """As w2s.probe.train_probe, with a torch loss; the probe it returns predicts in numpy."""
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    weights = torch.ones(len(X)) if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float32))
    initial, orders = start(len(X), X.shape[1], config, seed)
    params = [torch.tensor(p, requires_grad=True) for p in initial]
    optimizer = Adam(params, config.learning_rate)
    schedule = [torch.as_tensor(batch) for order in orders for batch in batches(order, config.batch_size)]
    for step, batch in enumerate(schedule):
        per_example = loss(forward(params, X[batch]), targets[batch], step / len(schedule))
        w = weights[batch]
        objective = (w * per_example).sum() / w.sum().clamp_min(1e-12)
        objective = objective + config.l2 * sum((p ** 2).sum() for p in params[::2])
        objective.backward()
        optimizer.step()
    return Probe([p.detach().numpy() for p in params])
