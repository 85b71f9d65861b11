"""The modules both scaffolds share (select.py, predictions.py, ...) have one source, lab/scaffold/common/, and a
copy in each template's package, so that each template is an importable package in place and its copy in a
research repository stands alone. No links: scoring a path from a work tree copies regular files only.

    python -m lab.scaffold.copies      (or `make scaffold`) writes the copies again after an edit in common/;
    tests/test_scaffold_common.py fails while any copy differs from its source.
"""
from __future__ import annotations

import os
from pathlib import Path

from lab.scaffold import COMMON, TEMPLATE, TEMPLATE_HF

PACKAGES = (TEMPLATE / "w2s", TEMPLATE_HF / "w2s_hf")


def copies(common: Path = COMMON, packages: tuple[Path, ...] = PACKAGES) -> list[tuple[Path, Path]]:
    """(source, copy) for every shared module and every template package."""
    sources = sorted(p for p in common.iterdir() if p.suffix == ".py" and p.is_file())
    return [(source, package / source.name) for package in packages for source in sources]


def _stale(pairs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    return [(source, copy) for source, copy in pairs
            if copy.is_symlink() or not copy.is_file() or copy.read_bytes() != source.read_bytes()]


def stale(common: Path = COMMON, packages: tuple[Path, ...] = PACKAGES) -> list[Path]:
    """The copies that are missing, are links, or differ from their source."""
    return [copy for _, copy in _stale(copies(common, packages))]


def refresh(common: Path = COMMON, packages: tuple[Path, ...] = PACKAGES) -> list[Path]:
    """Write every stale copy from its source (a link is replaced by a file); the copies written."""
    written = _stale(copies(common, packages))
    for source, copy in written:
        fresh = copy.with_name(f".{copy.name}.{os.getpid()}")
        fresh.write_bytes(source.read_bytes())
        os.replace(fresh, copy)
    return [copy for _, copy in written]


if __name__ == "__main__":
    for path in refresh():
        print(f"copied {path.relative_to(COMMON.parent)}")
