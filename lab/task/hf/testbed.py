"""`lab init` for the `hf` task kind: the agents' views of the person's JSONL datasets and the weak teacher.

The layout is the embedded testbed's (see lab/task/testbed.py), so the scorer, the ceiling and the
integrity checks work unchanged. Per dataset, the weak model is fine-tuned on the labelled split with
LoRA as a classifier over the label words, once per seed, by the scaffold's own `Classifier` (the
code the agents start from, so teacher and students are trained the same way); its probabilities,
averaged over the seeds, are the teacher's soft labels on the train split. Each seed's adapter is
checkpointed every epoch and its probabilities cached when done, so an interrupted init resumes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lab.errors import TestbedError
from lab.task import files
from lab.task.hf.jsonl import Row, agent_row, read_splits
from lab.task.hf.models import resolve_model
from lab.task.testbed import derived_view

VIEW_README = """\
# Task data (read-only)

{shape_text} You never see ground truth for these files.

- `train.jsonl`: {{"id", {fields}, "weak_soft"}}: weak_soft is the weak teacher's probability that the
  label is 1. The teacher ({weak}, fine-tuned with LoRA on a labelled split you do not have) is
  averaged over {seeds} seeds.
- `test.jsonl`: {{"id", {fields}}}: predict a label for every id.
- `meta.json`: the prompt template, the label words (index 0 and 1), the strong model's folder
  (read-only; load it with `local_files_only=True`) and the training settings the baselines use.

Write predictions as JSONL, one {{"id": ..., "label": 0 or 1, "p1": optional probability}} per test id.
"""
SHAPE_TEXT = {"binary": "Binary judgement: label 1 means `choice` is a correct answer to `question`.",
              "pairwise": "Pairwise preference: label 1 means `second` is the better response to `prompt`, "
                          "0 means `first` is."}


def _classifier():
    from lab.scaffold.template_hf.w2s_hf import model

    return model


def _prompts(rows: list[Row], spec) -> list[str]:
    return [spec.prompt_template.format(**row.fields) for row in rows]


def _teacher_seed(cache: Path, weak_dir: Path, spec, training, sources: dict[str, Path], seed: int) -> Path:
    """One seed's weak teacher: its P(label 1) on the train and test splits, in the cache file whose path it
    returns (once finished, kept). It reads its splits by path: on a cluster it runs as a task pinned to the
    head, and the labels it trains on never travel as arguments."""
    done = cache / f"weak-seed{seed}.npz"
    splits = read_splits(sources, spec.shape)
    if done.is_file():
        try:
            cached = np.load(done)
            if cached["train"].shape == (len(splits.train),) and cached["test"].shape == (len(splits.test),):
                return done
        except (OSError, KeyError, ValueError):
            pass     # a corrupt cache entry is recomputed
    t = training
    labelled = splits.labelled
    classifier = _classifier().Classifier(weak_dir, spec.words, lora_r=t.lora_r, lora_alpha=t.lora_alpha,
                                          lora_dropout=t.lora_dropout, max_length=t.max_length, seed=seed)
    classifier.fit(_prompts(labelled, spec), np.array([r.label for r in labelled], dtype=np.float32),
                   epochs=t.epochs, lr=t.lr, batch_size=t.batch_size, grad_accum=t.grad_accum, seed=seed,
                   checkpoint_dir=cache / f"weak-seed{seed}")
    p_train = classifier.predict_proba(_prompts(splits.train, spec), t.batch_size)
    p_test = classifier.predict_proba(_prompts(splits.test, spec), t.batch_size)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".weak-seed{seed}.npz"
    np.savez(tmp, train=p_train, test=p_test)
    tmp.replace(done)
    return done


def source_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(files.sha256(path).encode())
    return digest.hexdigest()[:16]


def build(cfg, testbed, force: bool = False, engine=None) -> list[Path]:
    """Write every dataset's views, labels and weak baseline; returns the files written (for the manifest).
    Each teacher seed runs through `engine` (on a cluster: on the head's node, with a GPU share)."""
    call = engine.call_here if engine is not None else (lambda fn, *args, gpu=False: fn(*args))
    task, hf = cfg.task, cfg.task.hf
    strong_dir = resolve_model(hf.strong, cfg.root)
    weak_dir = resolve_model(hf.weak, cfg.root)
    written: list[Path] = []
    seeds = list(range(task.seeds))
    for dataset in task.datasets:
        spec = hf.datasets[dataset]
        sources = {split: (cfg.root / getattr(spec, split)).resolve() for split in ("labelled", "train", "test")}
        splits = read_splits(sources, spec.shape)
        cache = testbed.state / "cache" / "hf" / dataset / source_digest(list(sources.values()))
        if force:
            for old in cache.glob("weak-seed*.npz"):
                old.unlink()
        p_train, p_test = [], []
        for seed in tqdm(seeds, desc=f"weak teacher {dataset}", unit="seed"):
            finished = np.load(call(_teacher_seed, cache, weak_dir, spec, hf.weak_training, sources, seed, gpu=True))
            p_train.append(finished["train"])
            p_test.append(finished["test"])
        weak_train, weak_test = np.mean(p_train, axis=0), np.mean(p_test, axis=0)
        truth_test = np.array([r.label for r in splits.test])
        weak_acc = float(np.mean((weak_test > 0.5) == truth_test))
        weak_accs = [float(np.mean((p > 0.5) == truth_test)) for p in p_test]

        view = testbed.view(dataset)
        fields = ", ".join(f'"{f}"' for f in splits.train[0].fields) if splits.train else ""
        written += [view / "train.jsonl", view / "test.jsonl", view / "meta.json", view / "README.md"]
        files.write_jsonl(written[-4], (agent_row(r, round(float(p), 6)) for r, p in zip(splits.train, weak_train)))
        files.write_jsonl(written[-3], (agent_row(r) for r in splits.test))
        files.write_json(written[-2], {
            "kind": "hf", "shape": spec.shape, "template": spec.prompt_template, "label_words": spec.words,
            "strong_model": str(strong_dir), "train": hf.strong_training.model_dump(),
            "n_train": len(splits.train), "n_test": len(splits.test)})
        files.write_text(written[-1], VIEW_README.format(shape_text=SHAPE_TEXT[spec.shape], fields=fields,
                                                         weak=hf.weak, seeds=len(seeds)))
        truth = derived_view(view, testbed.ground_truth_view(dataset),
                             (agent_row(r, float(r.label)) for r in splits.train))
        written.append(truth / "train.jsonl")
        private = testbed.private_dir(dataset)
        files.write_json(private / "labels.json", {
            "teacher": {r.id: r.label for r in splits.labelled}, "train": {r.id: r.label for r in splits.train},
            "test": {r.id: r.label for r in splits.test}})
        files.write_json(private / "baselines.json", {
            "weak_acc": weak_acc, "weak_accs": weak_accs, "weak_model": hf.weak, "strong_model": hf.strong,
            "sizes": {"teacher": len(splits.labelled), "train": len(splits.train), "test": len(splits.test)},
            "sources": {k: str(v) for k, v in sources.items()},
            "note": "the teacher's labels are its probabilities averaged over the seeds; weak_acc is that "
                    "average's accuracy, weak_accs each seed's"})
        written += [private / "labels.json", private / "baselines.json"]
        if len(set(truth_test)) < 2:
            raise TestbedError(f"the test split of {dataset} has one label only; PGR needs both")
    return written
