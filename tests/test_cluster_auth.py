"""The lab says, in one line, when it uses a Ray cluster that runs without token authentication (anyone who reaches
its ports could run code on every node), and nothing when the cluster asks for Ray's token. Each case is a real
one-node Ray cluster started on loopback in a process of its own, with RAY_AUTH_MODE as the person would set it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.scorer.engines.ray_engine import unauthenticated_warning

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]

CONNECT = """\
import os, sys
from pathlib import Path
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
import ray
ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
         logging_level="ERROR", configure_logging=True)
from lab import config
from lab.scorer import engines
state = sys.argv[1]
cfg = config.parse({"lab": {"sandbox": "none", "state_dir": state}, "cluster": {"engine": "ray"}}, root=Path(state))
engine = engines.shared(cfg)
print("engine", engine.name)
ray.shutdown()
"""


def lab_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "token authentication" in line]


@pytest.mark.parametrize("mode, warned", [("disabled", True), ("token", False)])
def test_the_lab_warns_once_on_a_cluster_without_token_auth(tmp_path, mode, warned):
    env = {**os.environ, "RAY_AUTH_MODE": mode, "HOME": str(tmp_path),     # Ray keeps its token in ~/.ray
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", CONNECT, str(tmp_path / ".lab")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "engine ray" in result.stdout, result.stderr
    lines = lab_lines(result.stderr)
    if warned:
        assert len(lines) == 1 and lines[0].startswith("warning: the Ray cluster at auto runs without token "
                                                       "authentication"), result.stderr
        assert "RAY_AUTH_MODE=token" in lines[0] and "docs/cluster.md" in lines[0]
    else:
        assert lines == [], result.stderr


def test_the_warning_is_one_line_and_only_without_a_token():
    line = unauthenticated_warning("10.0.0.5:6379", token_in_use=False)
    assert line is not None and "\n" not in line and "10.0.0.5:6379" in line
    assert unauthenticated_warning("10.0.0.5:6379", token_in_use=True) is None
