"""The `lab` commands a person types beside busy agents stay light: heavy libraries stay off their import path.

Each case runs the real command in a fresh interpreter, in-process (so its sys.modules can be read after), in a
real lab folder. Timings are bench/bench_responsive.py's business; this checks the behaviour behind them.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

# what a read-only command must never import (pydantic stays: lab.toml's schema needs it, but not `--help`)
HEAVY = ["pandas", "numpy", "pyarrow", "torch", "transformers", "sklearn", "textual", "anthropic", "matplotlib"]

PROBE = """
import json, sys
args, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["lab", *args]
from lab.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "loaded": sorted(m for m in watched if m in sys.modules)}),
      file=sys.stderr)
"""


def loaded_by(args: list[str], cwd, also: list[str] = ()) -> tuple[int, list[str]]:
    """Runs `lab ARGS` in a fresh interpreter; returns its exit code and which of HEAVY (and `also`) it imported."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps([*HEAVY, *also])], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["loaded"]


@pytest.fixture
def lab_folder(tmp_path):
    """A lab with a database and a forum post, made through the real command line."""
    from conftest import run_lab, write_config

    write_config(tmp_path)
    run_lab("forum", "post", "a finding worth reading", cwd=tmp_path, check=True)
    return tmp_path


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["status", "--help"]])
def test_help_and_version_import_neither_heavy_libraries_nor_pydantic(tmp_path, args):
    code, loaded = loaded_by(args, tmp_path, also=["pydantic", "sqlite_utils"])
    assert code in (0, None) and loaded == []


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["forum"], ["forum", "read", "1"], ["score"],
                                  ["score", "--json"], ["log"], ["show", "HEAD"], ["agent", "agent-1"],
                                  ["agent", "agent-1", "--transcript"], ["agent", "agent-1", "--log", "--json"]],
                         ids=" ".join)
def test_read_only_commands_import_no_heavy_library(lab_folder, args):
    code, loaded = loaded_by(args, lab_folder)
    # this lab has no research repository (no `lab init`): `log` and `show` say so, after the same imports
    assert code in ((2,) if args[0] in ("log", "show") else (0, None))
    assert loaded == []


def test_the_store_keeps_pandas_out_but_lets_a_caller_load_it(tmp_path):
    """sqlite_utils imports pandas as it loads; the store hides it then, and pandas still imports after."""
    probe = ("import sys; import lab.store; assert 'pandas' not in sys.modules and 'numpy' not in sys.modules; "
             "import pandas, numpy; print(pandas.DataFrame({'a': [1]}).shape)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 1)"
