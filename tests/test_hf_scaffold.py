"""The `hf` kind's scaffold (lab/scaffold/template_hf) on a tiny random-weight causal LM, fully offline.

The methods run as the scorer runs them: `python method.py --data DIR --out PREDICTIONS --seed N`
from a copy of the template folder alone, one CPU thread each.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import importlib
import json
import math
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.scaffold import BASELINES_HF, TEMPLATE_HF
from lab.task.predictions import read_predictions

from tiny_hf import (BINARY_LABEL_WORDS, BINARY_TEMPLATE, PAIRWISE_LABEL_WORDS, PAIRWISE_TEMPLATE, all_words,
                     make_tiny_model, tiny_jsonl_datasets)

from lab.scaffold.template_hf.w2s_hf import losses
from lab.scaffold.template_hf.w2s_hf.data import load_view, prompt, swapped, write_predictions
from lab.scaffold.template_hf.w2s_hf.model import Classifier

SHAPES = {"binary": (BINARY_TEMPLATE, BINARY_LABEL_WORDS), "pairwise": (PAIRWISE_TEMPLATE, PAIRWISE_LABEL_WORDS)}
TRAIN = {"epochs": 1, "lr": 3e-3, "batch_size": 4, "max_length": 32, "lora_r": 4, "lora_alpha": 8,
         "lora_dropout": 0.0, "grad_accum": 2}
# Each entry point of the template and the shape of the data folder it runs on.
ENTRIES = {"method.py": "binary", **{f"methods/{b}.py": s for b, s in zip(BASELINES_HF, ["pairwise", "binary", "pairwise"])},
           "readme_example.py": "pairwise"}  # the method shown in the template's README.md


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as in the sandbox: on a tiny model (and a busy machine) more threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("hf") / "model", all_words())


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict:
    return tiny_jsonl_datasets(tmp_path_factory.mktemp("hf") / "datasets", n=48)


def make_data_folder(folder: Path, shape: str, model_dir: Path, datasets: dict, n_train: int, n_test: int,
                     train: dict = TRAIN) -> tuple[Path, list[str]]:
    """A data folder in the contract's layout, with a noisy teacher (a quarter of its labels flipped)."""
    folder.mkdir(parents=True)
    rng = random.Random(1)
    rows = []
    for row in read_rows(datasets[shape]["train"])[:n_train]:
        label = row.pop("label") ^ int(rng.random() < 0.25)
        rows.append({**row, "weak_soft": 0.8 if label else 0.2})
    test = [{k: v for k, v in r.items() if k != "label"} for r in read_rows(datasets[shape]["test"])[:n_test]]
    for name, part in (("train", rows), ("test", test)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    template, label_words = SHAPES[shape]
    meta = {"kind": "hf", "shape": shape, "template": template, "label_words": label_words,
            "strong_model": str(model_dir), "train": dict(train)}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return folder, [r["id"] for r in test]


# Runs several entry points in one interpreter, each as `__main__` with the contract's arguments,
# so that importing torch, transformers and peft (about 9 s of CPU) is paid once for the baselines.
RUN_SEVERAL = """
import json, runpy, sys, traceback
status = {}
for entry, data, out in zip(*[iter(sys.argv[1:])] * 3):
    sys.argv = [entry, "--data", data, "--out", out, "--seed", "0"]
    try:
        runpy.run_path(entry, run_name="__main__")
        status[entry] = 0
    except BaseException:
        traceback.print_exc()
        status[entry] = 1
print(json.dumps(status))
"""


@pytest.fixture(scope="module")
def method_runs(tiny_model, datasets, tmp_path_factory) -> dict:
    """Every entry point run from a copy of the template alone: method.py in its own interpreter, exactly
    as the scorer runs it, and the baselines together in a second one, both at the same time."""
    root = tmp_path_factory.mktemp("runs")
    repo = root / "repo"
    shutil.copytree(TEMPLATE_HF, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    readme = (TEMPLATE_HF / "README.md").read_text()
    (repo / "readme_example.py").write_text(readme.split("```python\n", 1)[1].split("```", 1)[0])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTHONPATH", None)  # the copy must stand alone, as in a research repository
    folders = {shape: make_data_folder(root / f"data-{shape}", shape, tiny_model, datasets, n_train=16, n_test=8)
               for shape in set(ENTRIES.values())}
    runs = {entry: {"data": folders[shape][0], "ids": folders[shape][1],
                    "out": root / f"out-{entry.replace('/', '-')}.jsonl"} for entry, shape in ENTRIES.items()}
    single = [sys.executable, "method.py", "--data", str(runs["method.py"]["data"]),
              "--out", str(runs["method.py"]["out"]), "--seed", "0"]
    several = [sys.executable, "-c", RUN_SEVERAL]
    for entry, run in runs.items():
        if entry != "method.py":
            several += [entry, str(run["data"]), str(run["out"])]
    start = time.monotonic()
    procs = [subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in (single, several)]
    (_, err_single), (out_several, err_several) = [p.communicate(timeout=300) for p in procs]
    runs["method.py"].update(rc=procs[0].returncode, stderr=err_single)
    status = json.loads(out_several.strip().splitlines()[-1]) if procs[1].returncode == 0 else {}
    for entry, run in runs.items():
        if entry != "method.py":
            run.update(rc=status.get(entry, procs[1].returncode or 1), stderr=err_several)
    runs["_wall_s"] = time.monotonic() - start
    return runs


def test_template_is_a_package_and_declared():
    module = importlib.import_module("lab.scaffold.template_hf.w2s_hf.model")
    assert hasattr(module, "Classifier") and hasattr(module, "train_and_predict")
    assert (TEMPLATE_HF / "method.py").is_file() and (TEMPLATE_HF / "README.md").is_file()
    assert BASELINES_HF == ("vanilla", "confident", "logconf")
    for name in BASELINES_HF:
        assert (TEMPLATE_HF / "methods" / f"{name}.py").is_file()


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_entry_points_write_valid_predictions(method_runs, entry):
    run = method_runs[entry]
    assert run["rc"] == 0, run["stderr"][-3000:]
    labels = read_predictions(run["out"], run["ids"], max_bytes=1 << 20)  # the scorer's own reader
    assert sorted(labels) == sorted(run["ids"]) and set(labels.values()) <= {0, 1}
    for row in read_rows(run["out"]):
        assert 0.0 <= row["p1"] <= 1.0 and row["label"] == int(row["p1"] > 0.5)


def test_data_view_prompts_and_predictions(tiny_model, datasets, tmp_path):
    folder, test_ids = make_data_folder(tmp_path / "data", "pairwise", tiny_model, datasets, n_train=6, n_test=4)
    view = load_view(folder)
    assert view.shape == "pairwise" and view.test_ids == test_ids and view.weak_soft.shape == (6,)
    row = view.train[0]
    assert view.train_prompts[0] == PAIRWISE_TEMPLATE.format(prompt=row["prompt"], first=row["first"],
                                                            second=row["second"])
    flipped = swapped(row)
    assert (flipped["first"], flipped["second"]) == (row["second"], row["first"])
    assert flipped["weak_soft"] == pytest.approx(1 - row["weak_soft"])
    out = tmp_path / "pred.jsonl"
    write_predictions(out, test_ids, [0.9, 0.1, 0.5, 1.2])
    assert [r["label"] for r in read_rows(out)] == [1, 0, 0, 1] and read_rows(out)[3]["p1"] == 1.0
    with pytest.raises(ValueError, match="NaN"):
        write_predictions(out, test_ids, [0.5, math.nan, 0.5, 0.5])
    (folder / "meta.json").write_text(json.dumps({**view.meta, "shape": "binary"}))
    with pytest.raises(ValueError, match="missing"):
        load_view(folder)


def test_losses():
    logits = torch.tensor([[0.2, 1.0], [1.5, -0.5], [0.0, 0.3], [2.0, 2.5]])
    targets = torch.tensor([0.9, 0.2, 0.6, 0.4])
    expected = torch.nn.functional.cross_entropy(logits, torch.stack([1 - targets, targets], 1))
    assert losses.soft_ce(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)
    hard = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0, 1, 0]))
    assert losses.hard_ce(logits, targets).item() == pytest.approx(hard.item(), rel=1e-6)
    # the auxiliary weight starts at 0 (plain soft CE) and ramps up to alpha by `warmup`
    for make in (losses.confident, losses.logconf):
        assert make(0.5, 0.2)(logits, targets, progress=0.0).item() == pytest.approx(expected.item(), rel=1e-6)
        assert make(0.5, 0.2)(logits, targets, progress=0.2).item() == pytest.approx(
            make(0.5, 0.2)(logits, targets, progress=0.9).item(), rel=1e-6)
    own = torch.tensor([1.0, 0.0, 1.0, 1.0])  # argmax of the logits
    mixed = torch.nn.functional.cross_entropy(logits, torch.stack([1 - (0.5 * targets + 0.5 * own),
                                                                   0.5 * targets + 0.5 * own], 1))
    assert losses.confident(0.5, 0.2)(logits, targets, progress=1.0).item() == pytest.approx(mixed.item(), rel=1e-6)
    # logconf hardens with the teacher's class balance (half positive here), not at 0.5
    assert losses.hardened(torch.tensor([0.9, 0.8, 0.7, 0.6]), 0.5).tolist() == [1.0, 1.0, 0.0, 0.0]
    weights = torch.tensor([1.0, 0.0, 0.0, 0.0])
    first = torch.nn.functional.cross_entropy(logits[:1], torch.stack([1 - targets[:1], targets[:1]], 1))
    assert losses.soft_ce(logits, targets, weights=weights).item() == pytest.approx(first.item(), rel=1e-6)
    assert losses.get_loss("logconf") is not losses.get_loss("logconf")  # a fresh closure each time
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get_loss("nope")


def test_label_words_and_padding(tiny_model):
    with pytest.raises(ValueError, match="first tokens differ"):
        Classifier(tiny_model, [" Yes", " Yes"], lora_r=2, lora_alpha=4, lora_dropout=0.0, max_length=32)
    clf = Classifier(tiny_model, BINARY_LABEL_WORDS, lora_r=2, lora_alpha=4, lora_dropout=0.0, max_length=32)
    assert clf.device.type == "cpu" and clf.dtype == torch.float32
    prompts = ["Question : name a fruit ? Answer : apple Correct ?", "Answer : saw Correct ?", "?",
               "Question : name a fruit ? Answer : hammer hammer hammer Correct ?"]
    batched = clf.predict_proba(prompts, batch_size=4)
    alone = np.concatenate([clf.predict_proba([p], batch_size=1) for p in prompts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)  # left padding does not change a prompt's answer
    assert len(set(np.round(batched, 6))) > 1
    # LoRA's B starts at zero: before training the classifier is the base model's zero-shot answer
    np.testing.assert_allclose(clf.predict_proba(prompts, adapter=False), batched, atol=1e-6)


def test_gpu_settings_without_a_gpu(monkeypatch):
    """Device, dtype and the lab's memory fraction, with CUDA faked (this machine has no GPU)."""
    from lab.scaffold.template_hf.w2s_hf import model

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, *a: calls.append(f))
    assert model.default_device().type == "cuda"
    assert model.default_dtype(torch.device("cuda")) == torch.bfloat16
    assert model.default_dtype(torch.device("cpu")) == torch.float32
    model.limit_gpu_memory()
    monkeypatch.setenv("LAB_GPU_MEMORY_FRACTION", "0.25")
    model.limit_gpu_memory()
    assert calls == [0.25]


def test_clean_labels_beat_chance(tiny_model, datasets):
    template = BINARY_TEMPLATE
    train, test = read_rows(datasets["binary"]["train"]), read_rows(datasets["binary"]["test"])
    clf = Classifier(tiny_model, BINARY_LABEL_WORDS, lora_r=8, lora_alpha=16, lora_dropout=0.0, max_length=32)
    clf.fit([template.format_map(r) for r in train], [r["label"] for r in train], epochs=3, lr=3e-3, batch_size=8,
            seed=0, progress=False)
    p1 = clf.predict_proba([template.format_map(r) for r in test])
    accuracy = np.mean((p1 > 0.5) == np.array([r["label"] for r in test]))
    assert accuracy >= 0.75, accuracy  # chance is about 0.5


CALLS = {"n": 0}


def counting_ce(logits, targets, progress=0.0, weights=None):
    CALLS["n"] += 1
    return losses.soft_ce(logits, targets, weights=weights)


def test_checkpoint_resume(tiny_model, datasets, tmp_path):
    rows = read_rows(datasets["binary"]["train"])[:16]
    prompts, targets = [prompt(r, {"template": BINARY_TEMPLATE}) for r in rows], [r["label"] for r in rows]
    probe = prompts[:8]
    kwargs = dict(lr=3e-3, batch_size=4, grad_accum=2, seed=3, loss=counting_ce, progress=False)

    def fresh():
        return Classifier(tiny_model, BINARY_LABEL_WORDS, lora_r=4, lora_alpha=8, lora_dropout=0.1, max_length=32,
                          seed=3)

    straight = fresh().fit(prompts, targets, epochs=2, **kwargs).predict_proba(probe)

    ckpt = tmp_path / "ckpt"
    CALLS["n"] = 0
    fresh().fit(prompts, targets, epochs=1, checkpoint_dir=ckpt, **kwargs)
    assert Classifier.saved_epochs(ckpt) == [1] and CALLS["n"] == 4  # 16 prompts / batch 4
    resumed = fresh()
    resumed.fit(prompts, targets, epochs=2, checkpoint_dir=ckpt, **kwargs)
    assert resumed.resumed_from == 1 and CALLS["n"] == 8  # only epoch 2 ran
    assert Classifier.saved_epochs(ckpt) == [2]
    np.testing.assert_allclose(resumed.predict_proba(probe), straight, atol=1e-5)

    done = fresh()
    done.fit(prompts, targets, epochs=2, checkpoint_dir=ckpt, **kwargs)
    assert done.resumed_from == 2 and CALLS["n"] == 8  # nothing left to train
    np.testing.assert_allclose(done.predict_proba(probe), straight, atol=1e-5)

    other = fresh()
    with pytest.warns(UserWarning, match="another run"):
        other.fit(prompts, [1 - t for t in targets], epochs=1, checkpoint_dir=ckpt, **kwargs)
    assert not hasattr(other, "resumed_from") and Classifier.saved_epochs(ckpt) == [1]
