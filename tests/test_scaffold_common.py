"""The modules both scaffolds share live once, in lab/scaffold/common/, and each research repository's first
commit holds them as ordinary files of its own."""
from __future__ import annotations

import pytest

from lab.scaffold import COMMON, TEMPLATE, TEMPLATE_HF
from lab.scaffold import repo as research

PACKAGES = {TEMPLATE: "w2s", TEMPLATE_HF: "w2s_hf"}
SHARED = sorted(p for p in COMMON.iterdir() if p.suffix == ".py")


def test_there_is_something_to_share():
    assert {p.name for p in SHARED} >= {"select.py", "predictions.py"}


@pytest.mark.parametrize("template", PACKAGES, ids=PACKAGES.values())
def test_each_template_links_every_shared_module(template):
    for shared in SHARED:
        linked = template / PACKAGES[template] / shared.name
        assert linked.is_symlink() and linked.resolve() == shared.resolve(), linked


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
