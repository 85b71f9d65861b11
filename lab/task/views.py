"""A testbed's derived views: a dataset's view again with other train rows (true labels, or another teacher's),
the rest of it linked. Both kinds of testbed make them (lab.task.testbed, lab.task.hf.testbed)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lab.task import files

LINKED = ("test.jsonl", "meta.json", "README.md", "features/train.npy", "features/test.npy")


def derived_view(source: Path, dest: Path, train_rows: Iterable[dict]) -> Path:
    """A view like `source` but with other train rows (true or shuffled labels); the rest is linked."""
    files.write_jsonl(dest / "train.jsonl", train_rows)
    for name in LINKED:
        if (source / name).exists():     # the hf kind's views have no features
            files.link_or_copy(source / name, dest / name)
    return dest
