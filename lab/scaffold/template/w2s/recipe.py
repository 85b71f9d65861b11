"""A method as data: a JSON-able dict (a recipe) composed from the building blocks of w2s/.

    {"layers": [4, 5, 6], "loss": "sce", "elicit_weight": 0.3, "transductive_rounds": 1}

Every key is optional (DEFAULTS fills the rest), so a recipe names only what differs from the
vanilla baseline. `method.py` of a recipe is three lines:

    import json, sys; from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from w2s.recipe import run_recipe
    run_recipe(json.loads((Path(__file__).resolve().parent / "recipe.json").read_text()))

The pipeline, in order (each step off at its default):
1. features: the chosen `layers`, standardised (w2s/data.py).
2. targets: the teacher's soft labels, mixed with the strong model's zero-shot guess
   (`elicit_weight`, class descriptions `elicit_descriptions`: "general" (the default) and "sentiment"
   speak of any text, "reviews", "phrases" and "mixed" of reviews; compared at `elicit_layers`,
   `elicit_sharpness`, `elicit_combine` "mean" of probabilities or "logit" sum) and with an
   unsupervised direction of the features (`pc_weight`: the principal component that agrees most
   with the teacher). Unsupervised scores become probabilities with a class `prior`: the share of
   the teacher's hard labels ("hard") or the mean of its probabilities ("soft").
3. examples: keep the `keep` most confident targets (class-balanced), weight by confidence
   (`weight_power`).
4. self-training: `self_train_rounds` of relabelling with a cross-fitted probe ("hard": adopt the
   `self_train_keep` most confident predictions; "soft": mix them in with weight `self_train_beta`).
5. the probe: `hidden`, `epochs`, `lr`, `l2`, `batch_size`, trained with `loss`
   (ce, smooth, logconf, bootstrap, gce, sce and its parameter), averaged over `ensemble` seeds.
6. transductive rounds: pseudo-label the `transductive_keep` most confident test texts (the
   zero-shot guess on them voting with weight `transductive_elicit`) and retrain on train + those
   (`transductive_rounds`).
7. the decision threshold: 0.5 ("half") or the class prior ("prior").

Deterministic for a seed; nothing is written but the predictions.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

# Relative imports, and the modules that train only inside the functions that use them: the lab
# loads this module under a name of its own to read recipes (complete, canonical, describe), where
# their `w2s.` imports would not resolve.
from . import defaults, select

if TYPE_CHECKING:
    from .data import Task
    from .probe import ProbeConfig

DESCRIPTIONS = {
    # No reviews or films in them: a method also runs on texts of other kinds than the dev task's (on this
    # testbed they also do best on the dev task itself).
    "general": {0: ["a negative text", "something bad happened, I am upset", "I hate this, it is awful"],
                1: ["a positive text", "something good happened, I am happy", "I love this, it is great"]},
    "reviews": defaults.CLASS_DESCRIPTIONS,
    "phrases": {0: ["I hated it", "a waste of time", "dull and boring", "awful, terrible, the worst",
                    "disappointing and bad"],
                1: ["I loved it", "a masterpiece", "brilliant and moving", "wonderful, great, the best",
                    "delightful and good"]},
    "sentiment": {0: ["negative sentiment", "sad, angry, disappointed"],
                  1: ["positive sentiment", "happy, pleased, excited"]},
}
DESCRIPTIONS["mixed"] = {c: DESCRIPTIONS["reviews"][c] + DESCRIPTIONS["phrases"][c] for c in (0, 1)}

LOSSES = ("ce", "smooth", "logconf", "bootstrap", "gce", "sce")
# The parameters each loss reads; only these matter for a recipe with that loss.
LOSS_PARAMS = {"ce": (), "smooth": ("smoothing",), "logconf": ("logconf_alpha", "logconf_warmup"),
               "bootstrap": ("bootstrap_beta",), "gce": ("gce_q",), "sce": ("sce_beta",)}

DEFAULTS: dict = {
    "layers": list(defaults.LAYERS),
    "hidden": defaults.HIDDEN, "epochs": defaults.EPOCHS, "lr": defaults.LEARNING_RATE, "l2": defaults.L2,
    "batch_size": defaults.BATCH_SIZE,
    "loss": "ce", "smoothing": defaults.SMOOTHING, "logconf_alpha": defaults.LOGCONF_ALPHA,
    "logconf_warmup": defaults.LOGCONF_WARMUP, "bootstrap_beta": 0.8, "gce_q": 0.5, "sce_beta": 0.5,
    "elicit_weight": 0.0, "elicit_descriptions": "general", "elicit_layers": [6], "elicit_sharpness": 2.0,
    "elicit_combine": "mean",
    "pc_weight": 0.0,
    "keep": 1.0, "weight_power": 0.0,
    "self_train_rounds": 0, "self_train_keep": defaults.BOOTSTRAP_KEEP, "self_train_mode": "hard",
    "self_train_beta": 0.5,
    "transductive_rounds": 0, "transductive_keep": 0.5, "transductive_elicit": 0.0,
    "ensemble": 1,
    "threshold": "half",
    "prior": "hard",
}
# Keys that only matter when another key is on: dropped from the canonical form otherwise.
_DEPENDS = {
    "elicit_descriptions": ("elicit_weight",), "elicit_layers": ("elicit_weight",),
    "elicit_sharpness": ("elicit_weight",), "elicit_combine": ("elicit_weight",),
    "self_train_keep": ("self_train_rounds",), "self_train_mode": ("self_train_rounds",),
    "self_train_beta": ("self_train_rounds",), "transductive_keep": ("transductive_rounds",),
    "transductive_elicit": ("transductive_rounds", "elicit_weight"),
}


class RecipeError(ValueError):
    """A recipe with an unknown key or a value out of range."""


def _check(r: dict) -> None:
    unknown = sorted(set(r) - set(DEFAULTS))
    if unknown:
        raise RecipeError(f"unknown recipe keys {unknown} (expected some of: {', '.join(DEFAULTS)})")
    if not r["layers"] or any(not 0 <= int(x) <= 6 for x in r["layers"]):
        raise RecipeError(f"layers must be a non-empty list of 0..6, got {r['layers']}")
    if any(not 0 <= int(x) <= 6 for x in r["elicit_layers"]) or not r["elicit_layers"]:
        raise RecipeError(f"elicit_layers must be a non-empty list of 0..6, got {r['elicit_layers']}")
    if r["loss"] not in LOSSES:
        raise RecipeError(f"unknown loss {r['loss']!r} (expected one of: {', '.join(LOSSES)})")
    if r["elicit_descriptions"] not in DESCRIPTIONS:
        raise RecipeError(f"unknown elicit_descriptions {r['elicit_descriptions']!r} "
                          f"(expected one of: {', '.join(DESCRIPTIONS)})")
    for key in ("elicit_weight", "pc_weight", "keep", "self_train_keep", "self_train_beta", "transductive_keep",
                "transductive_elicit"):
        if not 0.0 <= float(r[key]) <= 1.0:
            raise RecipeError(f"{key} must lie in [0, 1], got {r[key]}")
    if float(r["keep"]) <= 0 or float(r["transductive_keep"]) <= 0:
        raise RecipeError("keep and transductive_keep must be above 0")
    if r["elicit_combine"] not in ("mean", "logit") or r["self_train_mode"] not in ("hard", "soft") \
            or r["threshold"] not in ("half", "prior") or r["prior"] not in ("hard", "soft"):
        raise RecipeError("elicit_combine is mean|logit, self_train_mode hard|soft, threshold half|prior, "
                          "prior hard|soft")
    if int(r["ensemble"]) < 1 or int(r["epochs"]) < 1:
        raise RecipeError("ensemble and epochs must be at least 1")


_INTS = ("hidden", "epochs", "batch_size", "self_train_rounds", "transductive_rounds", "ensemble")


def complete(recipe: dict) -> dict:
    """The recipe with every key, defaults filled in, checked, numbers of one type (5 and 5.0 are one recipe)."""
    r = {**DEFAULTS, **(recipe or {})}
    _check(r)
    for key, value in r.items():
        if key in ("layers", "elicit_layers"):
            r[key] = sorted({int(x) for x in value})
        elif key in _INTS:
            r[key] = int(value)
        elif isinstance(DEFAULTS[key], float):
            r[key] = float(value)
    return r


def canonical(recipe: dict) -> dict:
    """Only the keys that differ from the defaults and matter: two recipes that run the same method
    have the same canonical form (parameters of an unused loss or of a step that is off drop out)."""
    r = complete(recipe)
    out = {}
    for key, value in r.items():
        if value == DEFAULTS[key]:
            continue
        if not all(r[on] for on in _DEPENDS.get(key, ())):
            continue
        if key == "prior" and not (r["elicit_weight"] or r["pc_weight"] or r["threshold"] == "prior"):
            continue
        if any(key in params for params in LOSS_PARAMS.values()) and key not in LOSS_PARAMS[r["loss"]]:
            continue
        out[key] = value
    return out


def key(recipe: dict) -> str:
    """A stable text identity of what a recipe runs."""
    return json.dumps(canonical(recipe), sort_keys=True, separators=(",", ":"))


def describe(recipe: dict) -> str:
    """A few words for people: "sce beta=0.5, elicit 0.3, layers 4-6"."""
    c, r = canonical(recipe), complete(recipe)
    parts = []
    if r["loss"] != "ce":
        params = ", ".join(f"{_SHORT[p]}={r[p]:g}" for p in LOSS_PARAMS[r["loss"]])
        parts.append(f"{r['loss']} {params}".strip())
    if r["elicit_weight"]:
        extra = [] if r["elicit_descriptions"] == DEFAULTS["elicit_descriptions"] else [r["elicit_descriptions"]]
        extra += [] if r["elicit_layers"] == [6] else [f"at {_span(r['elicit_layers'])}"]
        extra += [] if r["elicit_combine"] == "mean" else ["logit"]
        extra += [] if r["elicit_sharpness"] == 2.0 else [f"sharp {r['elicit_sharpness']:g}"]
        parts.append(f"elicit {r['elicit_weight']:g}" + (f" ({', '.join(extra)})" if extra else ""))
    if r["pc_weight"]:
        parts.append(f"pc {r['pc_weight']:g}")
    if r["keep"] < 1:
        parts.append(f"keep {r['keep']:g}")
    if r["weight_power"]:
        parts.append(f"reweight {r['weight_power']:g}")
    if r["self_train_rounds"]:
        how = (f"keep {r['self_train_keep']:g}" if r["self_train_mode"] == "hard"
               else f"beta {r['self_train_beta']:g}")
        parts.append(f"self-train {r['self_train_rounds']}x {r['self_train_mode']} {how}")
    if r["transductive_rounds"]:
        parts.append(f"transductive {r['transductive_rounds']}x keep {r['transductive_keep']:g}"
                     + (f" zs {r['transductive_elicit']:g}" if r["elicit_weight"] and r["transductive_elicit"] else ""))
    if r["ensemble"] > 1:
        parts.append(f"ensemble {r['ensemble']}")
    for k in ("hidden", "epochs", "lr", "l2", "batch_size"):
        if k in c:
            parts.append(f"{k} {c[k]:g}")
    if r["threshold"] != "half":
        parts.append("prior threshold")
    if "prior" in c:
        parts.append(f"{c['prior']} prior")
    parts.append(f"layers {_span(r['layers'])}")
    return ", ".join(parts) if c else "vanilla (layers 4-6)"


_SHORT = {"smoothing": "eps", "logconf_alpha": "alpha", "logconf_warmup": "warmup", "bootstrap_beta": "beta",
          "gce_q": "q", "sce_beta": "beta"}


def _span(layers) -> str:
    layers = sorted(layers)
    if len(layers) > 2 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(str(x) for x in layers)


# ---- the pieces --------------------------------------------------------------------------------
def make_loss(r: dict):
    from . import losses

    name = r["loss"]
    if name == "ce":
        return losses.soft_cross_entropy
    if name == "smooth":
        return losses.label_smoothing(float(r["smoothing"]))
    if name == "logconf":
        return losses.logconf(float(r["logconf_alpha"]), float(r["logconf_warmup"]))
    if name == "bootstrap":
        return losses.bootstrapping(float(r["bootstrap_beta"]))
    if name == "gce":
        return losses.generalized_cross_entropy(float(r["gce_q"]))
    return losses.symmetric_cross_entropy(1.0, float(r["sce_beta"]))


def embed_descriptions_all_layers(descriptions: dict, max_tokens: int = 64) -> np.ndarray:
    """(n_descriptions, 7, 384) mean-pooled hidden states of every layer, negatives first."""
    from .encoder import hidden_states

    return hidden_states(list(descriptions[0]) + list(descriptions[1]), max_tokens)


def zero_shot_scores(task: Task, r: dict, description_states: np.ndarray | None = None):
    """Zero-shot scores (train, test): at each of `elicit_layers`, cos(text, positive) - cos(text, negative)
    after centring on the texts' mean, standardised and summed over the layers. No labels involved."""
    from .strong import unit

    descriptions = DESCRIPTIONS[r["elicit_descriptions"]]
    if description_states is None:
        description_states = embed_descriptions_all_layers(descriptions)
    n_negative = len(descriptions[0])
    train, test = np.zeros(len(task.features_train)), np.zeros(len(task.features_test))
    for layer in r["elicit_layers"]:
        mean = np.concatenate([task.features_train[:, layer], task.features_test[:, layer]]).mean(0)
        d = unit(description_states[:, layer] - mean)
        classes = unit(np.stack([d[:n_negative].mean(0), d[n_negative:].mean(0)]))
        s_train = unit(task.features_train[:, layer] - mean) @ classes.T
        s_test = unit(task.features_test[:, layer] - mean) @ classes.T
        s_train, s_test = s_train[:, 1] - s_train[:, 0], s_test[:, 1] - s_test[:, 0]
        scale = s_train.std() + 1e-12
        train, test = train + s_train / scale, test + s_test / scale
    return train, test


def scores_to_logits(scores: np.ndarray, positive_fraction: float, sharpness: float) -> np.ndarray:
    """Scores -> log-odds: the top `positive_fraction` of scores positive (the teacher's class balance)."""
    threshold = np.quantile(scores, 1 - positive_fraction)
    return sharpness * (scores - threshold) / (scores.std() + 1e-12)


def principal_direction_scores(task: Task, r: dict) -> np.ndarray:
    """An unsupervised direction: of the top 10 principal components of the standardised layer-6 features
    (train + test), the one that correlates most with the teacher, oriented to agree with it. Train scores."""
    from .data import standardize

    X_train, X_test = standardize(task.features_train[:, 6], task.features_test[:, 6])
    both = np.concatenate([X_train, X_test])
    mean = both.mean(0)
    _, _, vt = np.linalg.svd(both - mean, full_matrices=False)
    projections = (X_train - mean) @ vt[:10].T
    corr = np.array([np.corrcoef(projections[:, k], task.weak_soft)[0, 1] for k in range(projections.shape[1])])
    k = int(np.nanargmax(np.abs(corr)))
    return projections[:, k] * np.sign(corr[k])


def class_prior(task: Task, r: dict) -> float:
    """The share of positives the method assumes: of the teacher's hard labels ("hard"), or the mean of its
    probabilities ("soft"; a calibrated teacher's expected share, less tilted by its threshold)."""
    share = (task.weak_soft > 0.5).mean() if r["prior"] == "hard" else task.weak_soft.mean()
    return float(np.clip(share, 0.05, 0.95))


def _sigmoid(x):
    return 1 / (1 + np.exp(-np.clip(x, -30, 30)))


def targets_for(task: Task, r: dict, zero_shot_train: np.ndarray | None = None) -> np.ndarray:
    """The training targets, P(label = 1): the teacher mixed with elicitation, if any.
    zero_shot_train: the train half of zero_shot_scores(task, r), needed when elicit_weight > 0."""
    weak = task.weak_soft.astype(np.float64)
    prior = class_prior(task, r)
    sources = []  # (weight, log-odds)
    if r["elicit_weight"] > 0:
        scores = zero_shot_train
        sources.append((float(r["elicit_weight"]), scores_to_logits(scores, prior, float(r["elicit_sharpness"]))))
    if r["pc_weight"] > 0:
        sources.append((float(r["pc_weight"]), scores_to_logits(principal_direction_scores(task, r), prior, 2.0)))
    if not sources:
        return weak.astype(np.float32)
    if r["elicit_combine"] == "logit":
        clipped = np.clip(weak, 1e-4, 1 - 1e-4)
        logit = np.log(clipped / (1 - clipped))
        for w, z in sources:
            logit = logit + (w / max(1e-6, 1 - w)) * z
        return _sigmoid(logit).astype(np.float32)
    total = sum(w for w, _ in sources)
    scale = 1.0 / total if total > 1 else 1.0  # weights summing past 1 leave the teacher out
    mixed = sum(w * scale * _sigmoid(z) for w, z in sources)
    return ((1 - total * scale) * weak + mixed).astype(np.float32)


def probe_config(r: dict) -> ProbeConfig:
    from .probe import ProbeConfig

    return ProbeConfig(hidden=int(r["hidden"]), epochs=int(r["epochs"]), batch_size=int(r["batch_size"]),
                       learning_rate=float(r["lr"]), l2=float(r["l2"]))


def _fit_predict(X, y, weights, X_out, r, seed):
    """Mean P(label = 1) on X_out over `ensemble` probes with different seeds."""
    from .probe import train_probe

    config, loss = probe_config(r), make_loss(r)
    out = [train_probe(X, y, loss=loss, weights=weights, config=config, seed=seed * 1000 + i).predict_proba(X_out)
           for i in range(int(r["ensemble"]))]
    return np.mean(out, 0)


def cross_fitted(X, y, weights, r, seed, folds: int = 2) -> np.ndarray:
    """P(label = 1) for every training row from probes that did not see it."""
    parts = np.array_split(np.random.default_rng(seed).permutation(len(X)), folds)
    out = np.empty(len(X))
    for i, held in enumerate(parts):
        rest = np.concatenate([parts[j] for j in range(folds) if j != i])
        w = None if weights is None else weights[rest]
        out[held] = _fit_predict(X[rest], y[rest], w, X[held], {**r, "ensemble": 1}, seed)
    return out


def predict(task: Task, recipe: dict, seed: int, description_states=None) -> np.ndarray:
    """P(label = 1) on the task's test texts, by the recipe."""
    r = complete(recipe)
    X_train, X_test = task.features(r["layers"])
    prior = class_prior(task, r)
    zs_train = zs_test = None
    if r["elicit_weight"] > 0:
        zs_train, zs_test = zero_shot_scores(task, r, description_states)
    base = targets_for(task, r, zs_train)

    targets = base.copy()
    for round_ in range(int(r["self_train_rounds"])):
        strong = cross_fitted(X_train, targets, None, r, seed + 7919 * (round_ + 1))
        if r["self_train_mode"] == "soft":
            beta = float(r["self_train_beta"])
            targets = ((1 - beta) * base + beta * strong).astype(np.float32)
        else:
            relabel = select.most_confident(strong, float(r["self_train_keep"]))
            targets = base.copy()
            targets[relabel] = select.hard_labels(strong[relabel])

    keep = np.arange(len(targets)) if r["keep"] >= 1 else select.most_confident(targets, float(r["keep"]))
    X, y = X_train[keep], targets[keep]
    weights = select.confidence_weights(y, float(r["weight_power"])) if r["weight_power"] else None
    p_test = _fit_predict(X, y, weights, X_test, r, seed)

    for _ in range(int(r["transductive_rounds"])):
        pseudo = p_test
        if zs_test is not None and r["transductive_elicit"] > 0:
            # the zero-shot guess on the test texts votes on their pseudo-labels too
            w = float(r["transductive_elicit"])
            pseudo = (1 - w) * p_test + w * _sigmoid(scores_to_logits(zs_test, prior, float(r["elicit_sharpness"])))
        chosen = select.most_confident(pseudo, float(r["transductive_keep"]))
        X_both = np.concatenate([X, X_test[chosen]])
        y_both = np.concatenate([y, select.hard_labels(pseudo[chosen])]).astype(np.float32)
        w_both = None if weights is None else np.concatenate([weights, np.ones(len(chosen), np.float32)])
        p_test = _fit_predict(X_both, y_both, w_both, X_test, r, seed)

    if r["threshold"] == "prior":
        # shift so that the teacher's share of positives lands above 0.5; ranks are kept
        cut = np.quantile(p_test, 1 - prior)
        logit = np.log(np.clip(p_test, 1e-6, 1 - 1e-6) / np.clip(1 - p_test, 1e-6, 1))
        p_test = _sigmoid(logit - np.log(max(cut, 1e-6) / max(1 - cut, 1e-6)))
    return p_test


def run_recipe(recipe: dict, description: str | None = None) -> None:
    """The method contract for a recipe: parse --data/--out/--seed, predict, write the predictions."""
    from .io import run

    complete(recipe)  # fail before loading anything
    run(lambda task, seed: predict(task, recipe, seed), description or describe(recipe))
