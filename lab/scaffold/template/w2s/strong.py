"""Unsupervised elicitation: ask the strong model itself, with no labels from anyone.

A text's layer-6 mean-pooled features are its all-MiniLM-L6-v2 sentence embedding. Comparing it
by cosine similarity with embeddings of short class descriptions ("a positive review") gives a
zero-shot guess at the label. Embedding new texts runs the model (w2s/encoder.py, numpy).
"""
import numpy as np

from w2s import defaults, encoder

LAST_LAYER = 6


def embed_texts(texts: list[str], max_tokens: int = 256) -> np.ndarray:
    """Mean-pooled last-layer embeddings of texts, shape (n, 384), the way the features were made."""
    return encoder.hidden_states(texts, max_tokens)[:, LAST_LAYER]


def unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def class_embeddings(descriptions=defaults.CLASS_DESCRIPTIONS) -> np.ndarray:
    """(2, dim) unit vectors: row 0 the negative class, row 1 the positive class, each the mean of its descriptions."""
    vectors = unit(embed_texts(descriptions[0] + descriptions[1]))
    n_negative = len(descriptions[0])
    return unit(np.stack([vectors[:n_negative].mean(0), vectors[n_negative:].mean(0)]))


def zero_shot_scores(features: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """cos(text, positive class) - cos(text, negative class), one score per text.

    features: raw (n, layers, dim) features as in Task.features_train, or (n, dim) embeddings.
    classes: from class_embeddings().
    """
    embeddings = features[:, LAST_LAYER, :] if features.ndim == 3 else features
    similarity = unit(np.asarray(embeddings, dtype=np.float32)) @ classes.T
    return similarity[:, 1] - similarity[:, 0]


def scores_to_proba(scores: np.ndarray, positive_fraction: float = 0.5, sharpness: float = 2.0) -> np.ndarray:
    """Turn scores into P(label = 1): the top `positive_fraction` of scores land above 0.5.

    Cosine differences have an arbitrary offset, so the threshold comes from a class prior
    (for example the teacher's share of positive labels) rather than from 0.
    """
    threshold = np.quantile(scores, 1 - positive_fraction)
    z = (scores - threshold) / (scores.std() + 1e-12)
    return 1 / (1 + np.exp(-sharpness * z))
