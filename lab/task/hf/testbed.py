"""`lab init` for the `hf` task kind: the agents' views of the person's JSONL datasets and the weak teachers.

The layout is the embedded testbed's (see lab/task/testbed.py), so the scorer, the ceiling and the
integrity checks work unchanged. Per dataset, the weak model is fine-tuned on a part of the labelled split with
LoRA as a classifier over the label words, once per seed, by the scaffold's own `Classifier` (the
code the agents start from, so teacher and students are trained the same way); its probabilities,
averaged over the seeds, are that teacher's soft labels. The labelled split is carved into one part per teacher: a
held-out dataset has two (the teacher that ranks on it, and the teacher check's second one), the dev dataset three (the
public teacher agents learn from, and those two for its private replica). Each seed's adapter is checkpointed every
epoch and its probabilities cached when done, so an interrupted init resumes.

The dev dataset's train and test files are carved in two: one half is the public dev set agents see, the other its
private replica, which ranks submissions. Parts are drawn by a hash of each row's id and the split seed, so they are
the same at every init.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from lab.errors import TestbedError
from lab.task import files
from lab.task.hf.jsonl import Row, agent_row, read_splits
from lab.task.hf.models import resolve_model
from lab.task.views import derived_view

if TYPE_CHECKING:
    from lab.config import Config
    from lab.task.testbed import Testbed

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


MIN_ROWS = 8    # rows in each part a dataset's files are carved into


def parts(rows: list[Row], count: int, seed: int) -> list[list[Row]]:
    """Rows carved into `count` parts by a hash of their ids (the same parts at every init), each in file order."""
    order = sorted(rows, key=lambda r: hashlib.sha256(f"{seed}:{r.id}".encode()).digest())
    part_of = {r.id: i * count // len(order) for i, r in enumerate(order)}
    return [[r for r in rows if part_of[r.id] == k] for k in range(count)]


def teachers_of(carved: bool) -> tuple[str, ...]:
    """The teachers of a dataset, one per part of its labelled split: p (the public one), a (the one that ranks on
    the private replica or the held-out set), b (the teacher check's)."""
    return ("p", "a", "b") if carved else ("a", "b")


def _teacher_seed(cache: Path, weak_dir: Path, spec, training, sources: dict[str, Path], seed: int,
                  which: str = "a", carved: bool = False, split_seed: int = 0) -> Path:
    """One seed of a weak teacher (`which`, of teachers_of(carved): each trained on its own part of the labelled
    split): its P(label 1) on the train and test splits, in the cache file whose path it returns (once finished,
    kept). It reads its splits by path: on a cluster it runs as a task pinned to the head, and the labels it trains
    on never travel as arguments."""
    done = cache / f"weak-{which}-of-{len(teachers_of(carved))}-seed{seed}.npz"
    splits = read_splits(sources, spec.shape)
    if done.is_file():
        try:
            cached = np.load(done)
            if cached["train"].shape == (len(splits.train),) and cached["test"].shape == (len(splits.test),):
                return done
        except (OSError, KeyError, ValueError):
            pass     # a corrupt cache entry is recomputed
    t = training
    names = teachers_of(carved)
    labelled = parts(splits.labelled, len(names), split_seed)[names.index(which)]
    classifier = _classifier().Classifier(weak_dir, spec.words, lora_r=t.lora_r, lora_alpha=t.lora_alpha,
                                          lora_dropout=t.lora_dropout, max_length=t.max_length, seed=seed)
    classifier.fit(_prompts(labelled, spec), np.array([r.label for r in labelled], dtype=np.float32),
                   epochs=t.epochs, lr=t.lr, batch_size=t.batch_size, grad_accum=t.grad_accum, seed=seed,
                   checkpoint_dir=cache / f"weak-{which}-of-{len(names)}-seed{seed}")
    p_train = classifier.predict_proba(_prompts(splits.train, spec), t.batch_size)
    p_test = classifier.predict_proba(_prompts(splits.test, spec), t.batch_size)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{done.name}"
    np.savez(tmp, train=p_train, test=p_test)
    tmp.replace(done)
    return done


def source_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(files.sha256(path).encode())
    return digest.hexdigest()[:16]


def build(cfg: Config, testbed: Testbed, force: bool = False, engine=None) -> list[Path]:
    """Write every set's views, labels and weak baseline; returns the files written (for the manifest). Each
    teacher seed runs through `engine` (on a cluster: on the head's node, with a GPU share)."""
    call = engine.call_here if engine is not None else (lambda fn, *args, gpu=False: fn(*args))
    task, hf = cfg.task, cfg.task.hf
    assert hf is not None     # task.kind = "hf" needs [task.hf] (lab.config)
    strong_dir = resolve_model(hf.strong, cfg.root)
    weak_dir = resolve_model(hf.weak, cfg.root)
    written: list[Path] = []
    seeds = list(range(task.seeds))
    for dataset in task.datasets:
        spec = hf.datasets[dataset]
        sources = {split: (cfg.root / getattr(spec, split)).resolve() for split in ("labelled", "train", "test")}
        splits = read_splits(sources, spec.shape)
        carved = dataset == task.dev
        _check_sizes(dataset, splits, carved)
        cache = testbed.layout.hf_cache / dataset / source_digest(list(sources.values()))
        if force:
            for old in cache.glob("weak-*.npz"):
                old.unlink()
        names = teachers_of(carved)
        probs = {}
        for which in names:
            p_train, p_test = [], []
            for seed in tqdm(seeds, desc=f"weak teacher {which} of {dataset}", unit="seed"):
                finished = np.load(call(_teacher_seed, cache, weak_dir, spec, hf.weak_training, sources, seed, which,
                                        carved, task.split_seed, gpu=True))
                p_train.append(finished["train"])
                p_test.append(finished["test"])
            probs[which] = _by_id(splits.train, np.mean(p_train, axis=0)) | _by_id(splits.test, np.mean(p_test, axis=0))
        labelled = dict(zip(names, parts(splits.labelled, len(names), task.split_seed)))
        # (set, its texts, the teacher whose labels it carries and ranks by)
        sets = [(dataset, splits.train, splits.test, "a")]
        if carved:
            (train, replica_train), (test, replica_test) = (parts(splits.train, 2, task.split_seed),
                                                            parts(splits.test, 2, task.split_seed))
            sets = [(dataset, train, test, "p"), (task.private, replica_train, replica_test, "a")]
        for name, train, test, ranked in sets:
            written += _write_set(testbed, name, spec, hf, strong_dir, train, test, labelled[ranked],
                                  {"a": probs[ranked], "b": probs["b"]}, len(seeds), checked=name in task.checked)
    return written


def _by_id(rows: list[Row], probs: np.ndarray) -> dict[str, float]:
    return {r.id: float(p) for r, p in zip(rows, probs)}


def _check_sizes(dataset: str, splits, carved: bool) -> None:
    """Enough rows for every part: the teachers' parts of the labelled split, and for the dev dataset the public and
    private halves of its train and test splits."""
    teachers = len(teachers_of(carved))
    needs = [("labelled", splits.labelled, teachers, f"{teachers} teachers' parts")]
    needs += [(split, rows, 2, "a public half and a private replica's half")
              for split, rows in (("train", splits.train), ("test", splits.test)) if carved]
    for split, rows, count, why in needs:
        if len(rows) < count * MIN_ROWS:
            raise TestbedError(f"dataset {dataset}: its {split} split has {len(rows)} rows, "
                               f"{count * MIN_ROWS - len(rows)} short of the {count * MIN_ROWS} that {why} of at "
                               f"least {MIN_ROWS} need")


def _write_set(testbed, name: str, spec, hf, strong_dir: Path, train: list[Row], test: list[Row],
               teacher_rows: list[Row], probs: dict[str, dict[str, float]], seeds: int, checked: bool) -> list[Path]:
    """One set's view (the first teacher's), labels, both teachers' test predictions, weak baseline, ground-truth
    view, and for a set of the teacher check the second teacher's view."""
    truth_test = np.array([r.label for r in test])
    if len(set(truth_test)) < 2:
        raise TestbedError(f"the test split of {name} has one label only; PGR needs both")
    weak_test = {w: np.array([probs[w][r.id] for r in test]) for w in ("a", "b")}
    view = testbed.view(name)
    fields = ", ".join(f'"{f}"' for f in train[0].fields) if train else ""
    written = [view / "train.jsonl", view / "test.jsonl", view / "meta.json", view / "README.md"]
    files.write_jsonl(written[0], (agent_row(r, round(probs["a"][r.id], 6)) for r in train))
    files.write_jsonl(written[1], (agent_row(r) for r in test))
    files.write_json(written[2], {
        "kind": "hf", "shape": spec.shape, "template": spec.prompt_template, "label_words": spec.words,
        "strong_model": str(strong_dir), "train": hf.strong_training.model_dump(),
        "n_train": len(train), "n_test": len(test)})
    files.write_text(written[3], VIEW_README.format(shape_text=SHAPE_TEXT[spec.shape], fields=fields,
                                                    weak=hf.weak, seeds=seeds))
    truth = derived_view(view, testbed.ground_truth_view(name), (agent_row(r, float(r.label)) for r in train))
    written.append(truth / "train.jsonl")
    if checked:
        second = derived_view(view, testbed.teacher_b_view(name),
                              (agent_row(r, round(probs["b"][r.id], 6)) for r in train))
        written.append(second / "train.jsonl")
    private = testbed.private_dir(name)
    files.write_json(private / "labels.json", {
        "teacher": {r.id: r.label for r in teacher_rows}, "train": {r.id: r.label for r in train},
        "test": {r.id: r.label for r in test}})
    files.write_json(private / "teachers.json", {w: {r.id: round(probs[w][r.id], 6) for r in test} for w in ("a", "b")})
    files.write_json(private / "baselines.json", {
        "weak_acc": float(np.mean((weak_test["a"] > 0.5) == truth_test)),
        "second_teacher_acc": float(np.mean((weak_test["b"] > 0.5) == truth_test)),
        "weak_model": hf.weak, "strong_model": hf.strong,
        "sizes": {"teacher": len(teacher_rows), "train": len(train), "test": len(test)},
        "note": "each teacher's labels are its probabilities averaged over the seeds; weak_acc is the first "
                "teacher's accuracy, second_teacher_acc the second's"})
    return written + [private / "labels.json", private / "teachers.json", private / "baselines.json"]
