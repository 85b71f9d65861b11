"""The embedded scaffold's numpy building blocks against torch and transformers: the probe, every loss, the
GELU, the strong model's encoder; and that a recipe runs as a method without importing torch at all."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lab.scaffold import TEMPLATE

sys.path.insert(0, str(TEMPLATE))
from w2s import activations, encoder, losses, probe, torch_probe  # noqa: E402


# The losses as they were written in torch (autograd gives their gradients), the reference for w2s/losses.py.
def soft_ce(logits, targets, progress=0.0):
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def torch_logconf(alpha, warmup):
    def loss(logits, targets, progress=0.0):
        a = alpha * min(1.0, progress / warmup)
        probs = torch.sigmoid(logits).detach()
        strong = (probs > torch.quantile(probs, 1 - targets.mean().clamp(0.01, 0.99))).float()
        return soft_ce(logits, (1 - a) * targets + a * strong)
    return loss


def torch_bootstrapping(beta):
    def loss(logits, targets, progress=0.0):
        return soft_ce(logits, beta * targets + (1 - beta) * (torch.sigmoid(logits).detach() > 0.5).float())
    return loss


def torch_gce(q):
    def loss(logits, targets, progress=0.0):
        p = torch.sigmoid(logits).clamp(1e-6, 1 - 1e-6)
        return (targets * (1 - p ** q) + (1 - targets) * (1 - (1 - p) ** q)) / q
    return loss


def torch_sce(alpha, beta, floor=1e-4):
    def loss(logits, targets, progress=0.0):
        p, t = torch.sigmoid(logits), targets.clamp(floor, 1 - floor)
        return alpha * soft_ce(logits, targets) - beta * (p * torch.log(t) + (1 - p) * torch.log(1 - t))
    return loss


LOSSES = {
    "ce": (losses.soft_cross_entropy, soft_ce),
    "smooth": (losses.label_smoothing(0.2), lambda z, t, progress=0.0: soft_ce(z, t * 0.8 + 0.1)),
    "logconf": (losses.logconf(0.5, 0.2), torch_logconf(0.5, 0.2)),
    "bootstrap": (losses.bootstrapping(0.8), torch_bootstrapping(0.8)),
    "gce": (losses.generalized_cross_entropy(0.5), torch_gce(0.5)),
    "sce": (losses.symmetric_cross_entropy(1.0, 0.5), torch_sce(1.0, 0.5)),
}


def noisy_task(n=600, dim=48, seed=0):
    """Features and soft labels from a noisy linear teacher."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    soft = 1 / (1 + np.exp(-(X @ rng.normal(size=dim) / 3 + rng.normal(size=n))))
    return X, soft.astype(np.float32)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_and_its_gradient_equal_torch_autograd(name):
    numpy_loss, torch_loss = LOSSES[name]
    rng = np.random.default_rng(1)
    logits = (rng.normal(size=256) * 4).astype(np.float32)
    targets = rng.uniform(size=256).astype(np.float32)
    z = torch.tensor(logits, requires_grad=True)
    expected = torch_loss(z, torch.tensor(targets), 0.5)
    expected.sum().backward()
    values, gradients = numpy_loss(logits, targets, 0.5)
    np.testing.assert_allclose(values, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradients, z.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("hidden", [0, 16])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_numpy_probe_equals_the_torch_probe(name, hidden):
    numpy_loss, torch_loss = LOSSES[name]
    X, soft = noisy_task()
    weights = np.random.default_rng(2).uniform(0.5, 1.5, len(X)).astype(np.float32)
    config = probe.ProbeConfig(hidden=hidden, epochs=4, batch_size=64, l2=0.01 if hidden else 0.5)
    ours = probe.train_probe(X, soft, loss=numpy_loss, weights=weights, config=config, seed=5).predict_proba(X)
    theirs = torch_probe.train_probe(X, soft, loss=torch_loss, weights=weights, config=config, seed=5).predict_proba(X)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ((ours > 0.5) == (theirs > 0.5)).mean() > 0.99


def test_the_probe_is_deterministic_for_a_seed_and_learns():
    X, soft = noisy_task()
    config = probe.ProbeConfig(epochs=20, batch_size=64, l2=0.01)
    first, again = (probe.train_probe(X, soft, config=config, seed=3).predict_proba(X) for _ in range(2))
    other = probe.train_probe(X, soft, config=config, seed=4).predict_proba(X)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert ((first > 0.5) == (soft > 0.5)).mean() > 0.75      # the teacher's own noise caps it near 0.87
    full_batch = probe.ProbeConfig(batch_size=0, epochs=100, learning_rate=0.05, l2=0.01)
    assert ((probe.train_probe(X, soft, config=full_batch).predict_proba(X) > 0.5) == (soft > 0.5)).mean() > 0.75


def test_gelu_is_torch_gelu_and_never_overflows():
    x = np.linspace(-60, 60, 20001, dtype=np.float32)
    t = torch.tensor(x, requires_grad=True)
    F.gelu(t).sum().backward()
    np.testing.assert_allclose(activations.gelu(x), F.gelu(t).detach().numpy(), atol=2e-6)
    np.testing.assert_allclose(activations.gelu_derivative(x), t.grad.numpy(), atol=2e-6)
    assert max(abs(float(activations.erf(np.float64(v))) - math.erf(v)) for v in np.linspace(-5, 5, 101)) < 2e-7
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.isfinite(activations.sigmoid(np.array([-1e4, 0, 1e4], np.float32))).all()


def test_the_encoder_gives_the_hidden_states_of_transformers():
    from lab.task.features import embed_all_layers

    texts = ["a positive review", "An utterly charming, funny film; the best of the year!", "dull"]
    ours = encoder.hidden_states(texts, max_tokens=64)
    theirs = embed_all_layers(texts, max_tokens=64)   # how the data folder's features are made
    assert ours.shape == theirs.shape == (3, 7, 384)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # texts go through the model a few at a time, each text's attention its own: the same states
    np.testing.assert_allclose(encoder.hidden_states(texts, max_tokens=64, texts_at_once=2), ours, atol=1e-5)
    np.testing.assert_allclose(encoder.hidden_states(texts[1:2], max_tokens=64)[0], ours[1], atol=1e-5)


def tiny_data_folder(folder: Path, n_train=300, n_test=100) -> Path:
    """A data folder of the embedded layout with random features (7 layers of 384)."""
    rng = np.random.default_rng(0)
    (folder / "features").mkdir(parents=True)
    np.save(folder / "features" / "train.npy", rng.normal(size=(n_train, 7, 384)).astype(np.float32))
    np.save(folder / "features" / "test.npy", rng.normal(size=(n_test, 7, 384)).astype(np.float32))
    (folder / "train.jsonl").write_text("".join(json.dumps({"id": f"r{i}", "text": "a film", "weak_soft": float(p)})
                                                + "\n" for i, p in enumerate(rng.uniform(size=n_train))))
    (folder / "test.jsonl").write_text("".join(json.dumps({"id": f"t{i}", "text": "a film"}) + "\n"
                                               for i in range(n_test)))
    (folder / "meta.json").write_text(json.dumps({"layers": 7, "dim": 384}))
    return folder


IMPORTS_AFTER = """
import runpy, sys
sys.argv = ["method.py", "--data", sys.argv[1], "--out", sys.argv[2], "--seed", "1"]
runpy.run_path("method.py", run_name="__main__")
print(sorted(m for m in ("torch", "transformers", "scipy", "sklearn") if m in sys.modules))
"""


@pytest.mark.parametrize("recipe", [
    {"loss": "logconf", "hidden": 16, "keep": 0.8, "weight_power": 1, "self_train_rounds": 1, "epochs": 2},
    {"elicit_weight": 0.3, "elicit_layers": [5, 6], "transductive_rounds": 1, "transductive_elicit": 0.2},
], ids=["probe", "elicit"])
def test_a_recipe_runs_as_a_method_without_torch(tmp_path, recipe):
    from lab.agents.backends import recipes

    folder = tmp_path / "repo"
    shutil.copytree(TEMPLATE, folder)
    (folder / "recipe.json").write_text(recipes.recipe_json(recipe))
    (folder / "method.py").write_text(recipes.METHOD_PY)
    data, out = tiny_data_folder(tmp_path / "data"), tmp_path / "p.jsonl"
    done = subprocess.run([sys.executable, "-c", IMPORTS_AFTER, str(data), str(out)], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert len(out.read_text().splitlines()) == 100
