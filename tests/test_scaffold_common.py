"""The modules both scaffolds share have one source, lab/scaffold/common/, copied into each template (no links),
and each research repository's first commit holds them as ordinary files of its own."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.scaffold import COMMON, TEMPLATE, TEMPLATE_HF, copies
from lab.scaffold import repo as research

PACKAGES = {TEMPLATE: "w2s", TEMPLATE_HF: "w2s_hf"}
SHARED = sorted(p for p in COMMON.iterdir() if p.suffix == ".py")


def test_there_is_something_to_share():
    assert {p.name for p in SHARED} >= {"select.py", "predictions.py"}


def test_the_scaffold_holds_no_link():
    """Scoring a path copies a work tree's regular files only: a link in a template breaks its methods in place."""
    scaffold = COMMON.parent
    links = [str(Path(folder, name).relative_to(scaffold)) for folder, dirs, files in os.walk(scaffold)
             for name in dirs + files if Path(folder, name).is_symlink()]
    assert links == []


@pytest.mark.parametrize("template", PACKAGES, ids=PACKAGES.values())
def test_each_template_holds_a_copy_of_every_shared_module(template):
    for shared in SHARED:
        copy = template / PACKAGES[template] / shared.name
        assert copy.is_file() and not copy.is_symlink(), copy
        assert copy.read_bytes() == shared.read_bytes(), f"{copy} differs from {shared}: run `make scaffold`"


def test_no_copy_has_drifted_from_its_source():
    assert copies.stale() == [], "run `make scaffold` (python -m lab.scaffold.copies) after editing lab/scaffold/common/"


def test_refresh_writes_a_drifted_copy_again(tmp_path):
    common, package = tmp_path / "common", tmp_path / "template" / "w2s"
    common.mkdir()
    package.mkdir(parents=True)
    (common / "select.py").write_text("fresh = 1\n")
    (package / "select.py").write_text("edited in the copy = 1\n")
    (package / "predictions.py").symlink_to(common / "select.py")
    (common / "predictions.py").write_text("out = 2\n")
    drifted = [package / "predictions.py", package / "select.py"]
    assert copies.stale(common, (package,)) == drifted
    assert copies.refresh(common, (package,)) == drifted
    assert (package / "select.py").read_text() == "fresh = 1\n" and copies.stale(common, (package,)) == []
    assert not (package / "predictions.py").is_symlink()


@pytest.mark.parametrize("template", PACKAGES, ids=PACKAGES.values())
def test_the_first_commit_holds_the_shared_modules_as_files(tmp_path, template):
    repo, created = research.create(tmp_path, template)
    assert created
    modes = {}
    for line in repo.text("ls-tree", "-r", "main").splitlines():
        meta, path = line.split("\t", 1)
        modes[path] = meta.split()[0]
    assert "120000" not in modes.values()      # no link: the repository stands alone
    for shared in SHARED:
        path = f"{PACKAGES[template]}/{shared.name}"
        assert modes[path] == "100644"
        assert repo.text("show", f"main:{path}") == shared.read_text()


def test_the_first_commit_is_the_same_wherever_the_repository_is_made_again(tmp_path):
    """The ceilings are fixed for the scaffold's commit: a research repository made again (a copied testbed, a
    removed repository) has the same one, so they are not run again; another scaffold has another."""
    for name in "abc":
        (tmp_path / name).mkdir()
    first = research.root_commit(research.create(tmp_path / "a")[0])
    again = research.root_commit(research.create(tmp_path / "b")[0])
    other = research.root_commit(research.create(tmp_path / "c", TEMPLATE_HF)[0])
    assert first == again and other != first
