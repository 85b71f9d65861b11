"""examples/tiny end to end on CPU, as its lab.toml tells a person: make the tiny models and data offline, `lab init`,
`lab score --baselines`, and one submission (the hf scaffold's method, scored in place)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import have_bwrap, run_lab
from lab.scaffold import BASELINES_HF, TEMPLATE_HF

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny"


def test_the_tiny_example_runs_init_the_baselines_and_one_submission(tmp_path):
    os.environ["HF_HUB_OFFLINE"] = "1"
    folder = tmp_path / "tiny"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("models", "data", ".lab", "sandboxes"))
    if not have_bwrap() and not os.environ.get("CI"):
        config = folder / "lab.toml"
        config.write_text(config.read_text().replace('sandbox = "bwrap"', 'sandbox = "none"'))
    subprocess.run([sys.executable, str(EXAMPLE / "make_tiny.py"), str(folder)], check=True, capture_output=True,
                   timeout=300)
    run_lab("init", cwd=folder, check=True, timeout=600)

    baselines = json.loads(run_lab("score", "--baselines", "--json", cwd=folder, check=True, timeout=900).stdout)
    assert sorted(baselines["baselines"]) == sorted(f"methods/{name}.py" for name in BASELINES_HF)
    assert all(scored["failed"] == {} for scored in baselines["baselines"].values())

    one = json.loads(run_lab("score", "--method", str(TEMPLATE_HF), "--json", cwd=folder, check=True,
                             timeout=600).stdout)
    assert one["failed"] == {} and one["commit"] is None
    assert {d["role"] for d in one["datasets"].values()} == {"dev", "private", "heldout"}
