"""Every bench that has a `--smoke` form runs it here: the path a person tries first on a machine without the
bench's hardware keeps working as the lab changes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKED = sorted(p for p in (ROOT / "bench").glob("*.py") if '"--smoke"' in p.read_text())


def test_there_is_a_bench_to_smoke():
    assert "bench_hf_submission.py" in {p.name for p in SMOKED}


@pytest.mark.parametrize("bench", SMOKED, ids=[p.stem for p in SMOKED])
def test_the_smoke_form_runs(bench, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, str(bench), "--smoke"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
