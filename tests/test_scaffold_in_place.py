"""Every method of the scaffold scores where it lies, with `lab score --method lab/scaffold/template/...`: the
person's first try of a baseline, before any research repository. A link in a template, or a library module
missing beside the methods, shows here as a rejected run."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import make_lab, run_lab
from lab.scaffold import TEMPLATE

METHODS = [TEMPLATE, *sorted((TEMPLATE / "methods").glob("*.py"))]     # the folder: its method.py


@pytest.fixture(scope="module")
def own_lab(lab_dir, tmp_path_factory):
    """The session's testbed in a lab of its own: these submissions stay off the other tests' leaderboard."""
    return make_lab(lab_dir, tmp_path_factory.mktemp("in-place"), turns=[])


@pytest.mark.parametrize("method", METHODS, ids=[p.relative_to(TEMPLATE).as_posix() if p != TEMPLATE else "template" for p in METHODS])
def test_each_scaffold_method_scores_in_place(own_lab, method):
    result = run_lab("score", "--method", str(method), "--json", cwd=own_lab)
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["failed"] == {}
    assert {d["role"] for d in scored["datasets"].values()} == {"dev", "private", "heldout"}
    assert scored["commit"] is None       # the working tree, not a commit of the research repository



def test_outside_a_work_tree_a_method_brings_the_library_beside_its_method_py(tmp_path):
    """Where git cannot list the files (a copied folder, a linked worktree), the folder holding method.py travels."""
    from lab.sandbox import make_sandbox
    from lab.scorer.methods import from_path

    copy = tmp_path / "mine"
    shutil.copytree(TEMPLATE, copy, symlinks=True)
    (tmp_path / "elsewhere.txt").write_text("not part of the method\n")
    tree = from_path(copy / "methods" / "vanilla.py", tmp_path / "clean", make_sandbox("none", warn=lambda line: None))
    assert tree.entry == "methods/vanilla.py"
    assert (tree.root / "w2s" / "select.py").read_text() == (TEMPLATE / "w2s" / "select.py").read_text()
    assert not (tree.root / "elsewhere.txt").exists()
