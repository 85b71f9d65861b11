"""Every method of the scaffold scores where it lies, with `lab score --method lab/scaffold/template/...`: the
person's first try of a baseline, before any research repository. A link in a template, or a library module
missing beside the methods, shows here as a rejected run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import make_lab, run_lab
from lab.scaffold import TEMPLATE, TEMPLATE_HF

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


@pytest.mark.parametrize("method", sorted((TEMPLATE_HF / "methods").glob("*.py")), ids=lambda p: p.name)
def test_each_hf_method_in_place_brings_its_whole_library(tmp_path, method):
    """The hf scaffold's methods need a GPU-sized task to run (tests/test_tiny_example.py scores one end to end);
    what scoring in place takes with each is checked here: every module of w2s_hf, as a file."""
    from lab.sandbox import make_sandbox
    from lab.scorer.methods import from_path

    tree = from_path(method, tmp_path / "clean", make_sandbox("none", warn=lambda line: None))
    package = tree.root / Path(tree.entry).parents[1] / "w2s_hf"
    for module in (TEMPLATE_HF / "w2s_hf").glob("*.py"):
        assert (package / module.name).read_bytes() == module.read_bytes(), module.name
