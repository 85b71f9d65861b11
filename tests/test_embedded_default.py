"""The embedded default end to end, as the README runs it: a real gap, and vanilla near its known PGR.

Takes about ten minutes on 2 cores, so it runs where LAB_FULL=1 (CI sets it).
"""
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import run_lab
from lab.scaffold import BASELINES

pytestmark = pytest.mark.skipif(not os.environ.get("LAB_FULL"), reason="set LAB_FULL=1 for the full testbed")


def test_default_testbed_leaves_a_gap_and_scores_the_baselines(tmp_path):
    shutil.copy(Path(__file__).parents[1] / "lab.toml", tmp_path / "lab.toml")
    init = run_lab("init", cwd=tmp_path, check=True, timeout=3000)
    assert "rotten_tomatoes  dev" in init.stdout
    result = run_lab("score", "--baselines", "--json", cwd=tmp_path, check=True, timeout=3000)
    baselines = json.loads(result.stdout)["baselines"]
    assert sorted(baselines) == sorted(f"methods/{name}.py" for name in BASELINES)
    dev = baselines["methods/vanilla.py"]["datasets"]["rotten_tomatoes"]
    assert dev["ceiling_acc"] - dev["weak_acc"] >= 0.10
    assert 0.0 < dev["pgr"] < 0.45
    for entry, result in baselines.items():
        assert set(result["datasets"]) == {"rotten_tomatoes", "imdb", "tweets"}
        # every baseline learns from the teacher, elicit included (the teacher adds about 0.24 of its 0.67)
        assert "ignores_teacher" not in [f["kind"] for f in result["flags"]], (entry, result["teacher_dependence"])
