"""The embedded testbed on disk: the agents' view of the dev dataset and the private store beside it.

    <state>/data/<dev>/            what agents may read (train with the teacher's soft labels, test
                                   without labels, strong features, meta.json, README.md)
    <state>/private/<set>/         labels.json, baselines.json, teachers.json (both teachers' soft labels on the
                                   test split), view/ (every set but the public dev one), ground_truth_view/ (the
                                   train split with true labels, for the ceiling), teacher_b_view/ (the sets of the
                                   teacher check: the train split labelled by the second teacher)
    <state>/private/testbed.json   manifest: the task fingerprint and a hash of every file
    <state>/cache/features/        strong features by content, reused across rebuilds of the views

The sets (lab.config.derived.TaskDatasets.scored): the public dev set, its private replica `<dev>_private` (other
texts of the same source), and the held-out sets. Every teacher is the same weak model trained the same way on labelled
texts of its own, none shared: the public dev set's teacher is the one agents learn from; each set no agent has seen
(the replica, the held-out sets) has a first teacher, whose labels rank submissions there, and a second one, whose
labels the teacher check's runs get. Both of those are teachers no agent has seen, drawn alike, so that nothing in a
run's labels says which of the two it is in (the public teacher would be: a method knows its statistics).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lab.config.schema import SplitSizes
from lab.errors import TestbedError
from lab.state_layout import StateLayout
from lab.task import files
from lab.task.datasets import DATASETS, Example, make_splits
from lab.task.features import STRONG_MODEL, embed_all_layers
from lab.task.packages import describe_changes, installed_versions
from lab.task.teacher import WEAK_MODEL, Teacher
from lab.task.views import derived_view

if TYPE_CHECKING:
    from lab.config import Config, TaskSection
    from lab.settings import TaskSettings

VIEW_README = """\
# Task data (read-only)

Binary sentiment classification (1 = positive). You never see ground truth for these files.

- `train.jsonl`: {{"id", "text", "weak_soft"}}: weak_soft is the weak teacher's probability that the
  label is 1. The teacher ({weak}) was trained on a few hundred labelled texts you do not have.
- `test.jsonl`: {{"id", "text"}}: predict a label for every id.
- `features/train.npy`, `features/test.npy`: float32, shape (n, layers, dim): the attention-masked
  mean of every layer's hidden states (embedding output first) of the strong model, {strong};
  row i belongs to line i of the matching JSONL file.
- `meta.json`: sizes and the feature layout.

Write predictions as JSONL, one {{"id": ..., "label": 0 or 1, "p1": optional probability}} per test id.
"""


TESTBED_VERSION = 4  # bump when the way a testbed is built changes: prepared ones then rebuild


def task_fingerprint(task: TaskSection) -> str:
    """A hash of what decides the testbed's contents (sizes as resolved, defaults included, and for the embedded kind
    the installed versions of the packages its data and models come from).

    For the `hf` kind the JSONL files are named, not hashed: `lab init --force` rebuilds after editing them.
    """
    # an embedded task's dump leaves out the absent hf section, so testbeds prepared before it existed stay valid
    data = {**task.model_dump(exclude={"min_gap"} | ({"hf"} if task.hf is None else set())),
            "version": TESTBED_VERSION}
    if task.kind == "embedded":
        data["sizes"] = {d: task.sizes_of(d).model_dump() for d in task.datasets}
        data["packages"] = installed_versions()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _packages_of(task: TaskSettings) -> dict[str, str]:
    return installed_versions() if task.kind == "embedded" else {}


@dataclass(frozen=True)
class Baseline:
    dataset: str
    weak_acc: float
    ceiling_acc: float | None
    ceiling_accs: list[float]
    seeds: list[int]
    ceiling_commit: str | None = None   # the scaffold commit whose vanilla method fixed the ceiling

    @property
    def ceiling(self) -> float:
        """The ceiling accuracy, which is fixed (lab.scorer.ceiling) before anything is scored."""
        assert self.ceiling_acc is not None, f"the ceiling of {self.dataset} is not fixed yet"
        return self.ceiling_acc

    @property
    def gap(self) -> float:
        return self.ceiling - self.weak_acc


class Testbed:
    """Paths and private facts of a prepared testbed; `load` checks that it is whole."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, state_dir: Path, task: TaskSection):
        self.state = Path(state_dir)
        self.layout = StateLayout(self.state)
        self.task = task

    # ---- paths -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.layout.testbed_manifest

    def private_dir(self, dataset: str) -> Path:
        return self.layout.private / dataset

    def view(self, dataset: str) -> Path:
        """The folder a method reads for this dataset (the agents' own view for the dev task)."""
        if dataset == self.task.dev:
            return self.layout.data / dataset
        return self.private_dir(dataset) / "view"

    def ground_truth_view(self, dataset: str) -> Path:
        return self.private_dir(dataset) / "ground_truth_view"

    def teacher_b_view(self, dataset: str) -> Path:
        """The set's view with the second teacher's soft labels on its train split (the teacher check's)."""
        return self.private_dir(dataset) / "teacher_b_view"

    # ---- private facts -----------------------------------------------------------------------
    def labels(self, dataset: str, split: str = "test") -> dict[str, int]:
        return json.loads((self.private_dir(dataset) / "labels.json").read_text())[split]

    def teachers(self, dataset: str) -> dict[str, dict[str, float]]:
        """Both teachers' soft labels on the set's test split: {"a": {id: p}, "b": {id: p}}."""
        return json.loads((self.private_dir(dataset) / "teachers.json").read_text())

    def test_ids(self, dataset: str) -> list[str]:
        return [row["id"] for row in files.read_jsonl(self.view(dataset) / "test.jsonl")]

    def train_rows(self, dataset: str) -> list[dict]:
        return files.read_jsonl(self.view(dataset) / "train.jsonl")

    def baseline(self, dataset: str) -> Baseline:
        data = json.loads((self.private_dir(dataset) / "baselines.json").read_text())
        return Baseline(dataset, data["weak_acc"], data.get("ceiling_acc"), data.get("ceiling_accs", []),
                        data.get("seeds", []), data.get("ceiling_commit"))

    def sizes(self, dataset: str) -> SplitSizes:
        """The dataset's teacher, train and test sizes, as prepared."""
        data = json.loads((self.private_dir(dataset) / "baselines.json").read_text())
        return SplitSizes.model_construct(**data["sizes"])

    def set_ceiling(self, dataset: str, seeds: list[int], accs: list[float], commit: str) -> Baseline:
        path = self.private_dir(dataset) / "baselines.json"
        data = json.loads(path.read_text())
        data.update(ceiling_acc=float(np.mean(accs)), ceiling_accs=accs, seeds=seeds, ceiling_commit=commit)
        files.write_json(path, data)
        self._record_hash(path)
        return self.baseline(dataset)

    # ---- integrity ---------------------------------------------------------------------------
    def _manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise TestbedError(f"the testbed is not prepared in {self.state} (run `lab init`)") from None
        except json.JSONDecodeError:
            raise TestbedError(f"{self.manifest_path} is corrupt (run `lab init --force`)") from None

    def _record_hash(self, path: Path) -> None:
        manifest = self._manifest()
        manifest["files"][str(path.relative_to(self.state))] = files.sha256(path)
        files.write_json(self.manifest_path, manifest)

    def is_current(self) -> bool:
        try:
            manifest = self._manifest()
        except TestbedError:
            return False
        return manifest.get("fingerprint") == task_fingerprint(self.task)

    def verify(self, deep: bool = True) -> None:
        """Raise TestbedError naming the first missing, changed or stale file."""
        manifest = self._manifest()
        if manifest.get("fingerprint") != task_fingerprint(self.task):
            changed = describe_changes(manifest.get("packages", {}), _packages_of(self.task))
            if changed:
                raise TestbedError(f"the testbed was built from other versions of its data and model packages "
                                   f"({changed}; run `lab init` to rebuild it)")
            raise TestbedError("the testbed was prepared for another [task] configuration (run `lab init`)")
        for rel, digest in manifest["files"].items():
            path = self.state / rel
            if not path.is_file():
                raise TestbedError(f"testbed file {path} is missing (run `lab init --force`)")
            if deep and files.sha256(path) != digest:
                raise TestbedError(f"testbed file {path} was changed or is corrupt (run `lab init --force`)")

    @classmethod
    def load(cls, cfg: Config, deep: bool = True) -> "Testbed":
        testbed = cls(cfg.state_dir, cfg.task)
        testbed.verify(deep=deep)
        return testbed


# ---- building ----------------------------------------------------------------------------------
def _features(cache: Path, dataset: str, examples: list[Example], task: TaskSettings, force: bool) -> np.ndarray:
    # the packages' versions too: a new release may change a text under the same id, or the strong model's weights
    key = hashlib.sha256(
        json.dumps([STRONG_MODEL, installed_versions(), task.max_tokens, [e.id for e in examples]]).encode()
    ).hexdigest()[:16]
    path = cache / f"{dataset}-{key}.npy"
    if path.exists() and not force:
        try:
            array = np.load(path)
            if array.shape[0] == len(examples):
                return array
        except (ValueError, OSError):
            pass  # a corrupt cache entry is recomputed below
    array = embed_all_layers([e.text for e in examples], task.max_tokens, task.batch_size,
                             desc=f"strong features {dataset}")
    files.write_npy(path, array)
    return array


def _write_view(folder: Path, train: list[Example], weak_soft, test: list[Example],
                train_x: np.ndarray, test_x: np.ndarray, task: TaskSettings) -> list[Path]:
    written = [folder / "train.jsonl", folder / "test.jsonl", folder / "features" / "train.npy",
               folder / "features" / "test.npy", folder / "meta.json", folder / "README.md"]
    files.write_jsonl(written[0], ({"id": e.id, "text": e.text, "weak_soft": round(float(p), 6)}
                                   for e, p in zip(train, weak_soft)))
    files.write_jsonl(written[1], ({"id": e.id, "text": e.text} for e in test))
    files.write_npy(written[2], train_x)
    files.write_npy(written[3], test_x)
    files.write_json(written[4], {"strong_model": STRONG_MODEL, "layers": int(train_x.shape[1]),
                                  "dim": int(train_x.shape[2]), "max_tokens": task.max_tokens,
                                  "n_train": len(train), "n_test": len(test)})
    files.write_text(written[5], VIEW_README.format(weak=WEAK_MODEL, strong=STRONG_MODEL))
    return written


def build(cfg: Config, force: bool = False, engine=None) -> Testbed:
    """Prepare every dataset's views, labels and weak baseline; ceilings are fixed afterwards. `engine` (a
    lab.scorer.engines.Engine) runs the hf kind's teacher seeds; without one they run in this process."""
    task = cfg.task
    testbed = Testbed(cfg.state_dir, task)
    testbed.manifest_path.unlink(missing_ok=True)  # the manifest is written last: it marks a whole build
    if task.kind == "hf":
        from lab.task.hf import testbed as hf_testbed

        written = hf_testbed.build(cfg, testbed, force, engine)
    else:
        written = _build_embedded(cfg, testbed, force)
    files.write_json(testbed.manifest_path, {
        "fingerprint": task_fingerprint(task),
        "packages": _packages_of(task),
        "files": {str(p.relative_to(testbed.state)): files.sha256(p) for p in written},
    })
    return testbed


def _build_embedded(cfg: Config, testbed: Testbed, force: bool) -> list[Path]:
    task = cfg.task
    cache = testbed.layout.features_cache
    written: list[Path] = []
    for dataset in task.datasets:
        sizes = task.sizes_of(dataset)
        carved = dataset == task.dev
        wanted = {"teacher": sizes.teacher, "teacher_b": sizes.teacher}
        wanted |= {"teacher_private": sizes.teacher} if carved else {}
        wanted |= {"train": sizes.train, "test": sizes.test}
        wanted |= {"replica_train": sizes.train, "replica_test": sizes.test} if carved else {}
        try:
            frame = DATASETS[dataset].read()
            splits = make_splits(dataset, frame, wanted, task.split_seed)
        except (ValueError, ModuleNotFoundError) as exc:
            raise TestbedError(f"cannot prepare dataset {dataset}: {exc}") from None
        teacher = {name: Teacher([e.text for e in splits[name]], [e.label for e in splits[name]], task.split_seed)
                   for name in wanted if name.startswith("teacher")}
        # (set, its texts, the teacher that labels it and ranks on it, the teacher split it learned from)
        sets = [(dataset, splits["train"], splits["test"], "teacher")]
        if carved:
            sets.append((task.private, splits["replica_train"], splits["replica_test"], "teacher_private"))
        for name, train, test, ranked in sets:
            features = _features(cache, dataset, train + test, task, force)
            checked = name in task.checked
            written += _write_set(testbed, name, train, test, features, teacher[ranked],
                                  teacher["teacher_b"] if checked else None, splits[ranked], task)
    return written


def _write_set(testbed: Testbed, name: str, train: list[Example], test: list[Example], features: np.ndarray,
               first: Teacher, second: Teacher | None, teacher_split: list[Example], task) -> list[Path]:
    """One set's view (its first teacher's), labels, its teachers' test predictions, weak baseline, ground-truth
    view, and for a set of the teacher check the second teacher's view."""
    train_x, test_x = features[: len(train)], features[len(train):]
    train_texts, test_texts = [e.text for e in train], [e.text for e in test]
    soft = {"a": first.soft_labels(train_texts)}
    tested = {"a": first.soft_labels(test_texts)}
    if second is not None:
        soft["b"], tested["b"] = second.soft_labels(train_texts), second.soft_labels(test_texts)
    truth = np.array([e.label for e in test])
    view = testbed.view(name)
    written = _write_view(view, train, soft["a"], test, train_x, test_x, task)
    ground = derived_view(view, testbed.ground_truth_view(name),
                          ({"id": e.id, "text": e.text, "weak_soft": float(e.label)} for e in train))
    written.append(ground / "train.jsonl")
    if second is not None:
        b_view = derived_view(view, testbed.teacher_b_view(name), ({"id": e.id, "text": e.text,
                                                                    "weak_soft": round(float(p), 6)}
                                                                   for e, p in zip(train, soft["b"])))
        written.append(b_view / "train.jsonl")
    private = testbed.private_dir(name)
    files.write_json(private / "labels.json", {"teacher": {e.id: e.label for e in teacher_split},
                                               "train": {e.id: e.label for e in train},
                                               "test": {e.id: e.label for e in test}})
    files.write_json(private / "teachers.json", {w: {e.id: round(float(p), 6) for e, p in zip(test, ps)}
                                                 for w, ps in tested.items()})
    files.write_json(private / "baselines.json", {
        "weak_acc": float(np.mean((tested["a"] > 0.5) == truth)),
        **({"second_teacher_acc": float(np.mean((tested["b"] > 0.5) == truth))} if second is not None else {}),
        "weak_model": WEAK_MODEL, "strong_model": STRONG_MODEL,
        "sizes": {"teacher": len(teacher_split), "train": len(train), "test": len(test)},
        "note": "the teacher is deterministic, so its accuracy is the same for every seed"})
    return written + [private / "labels.json", private / "teachers.json", private / "baselines.json"]
