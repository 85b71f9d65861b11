"""The supervisor's and runners' logs: timestamped lines, rotation by size, and stdout and stderr following it.

A real child process is started as the supervisor starts a runner (stdout and stderr on its log file), and logs
through lab.logfiles with a small size limit.
"""
from __future__ import annotations

import re
import subprocess
import sys

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")

CHILD = """
import logging, sys
from pathlib import Path
from lab.logfiles import log_to

path = Path(sys.argv[1])
log_to(path, max_bytes=2000, backups=2)
log_to(path, max_bytes=2000, backups=2)   # a second call adds no second handler
log = logging.getLogger("lab.runner")
for i in range(100):
    log.info("line %d of the agent's work", i)
logging.getLogger("httpx").info("HTTP Request: POST https://api.example/v1/messages")   # not ours: dropped
logging.getLogger("lab.agents.backends.claude").warning("claude API try 1 of 8 failed (overloaded)")
print("a print after the rotations", flush=True)
raise RuntimeError("the crash the supervisor reports")
"""


def test_logs_are_timestamped_rotate_and_keep_the_crash_in_the_current_file(tmp_path):
    log = tmp_path / "logs" / "agent-1.log"
    log.parent.mkdir()
    with open(log, "ab") as out:
        done = subprocess.run([sys.executable, "-c", CHILD, str(log)], stdout=out, stderr=subprocess.STDOUT,
                              timeout=120)
    assert done.returncode == 1
    rotated = sorted(p.name for p in log.parent.iterdir())
    assert rotated == ["agent-1.log", "agent-1.log.1", "agent-1.log.2"]     # two backups kept, older ones dropped
    for path in log.parent.iterdir():
        assert path.stat().st_size <= 2000 + 200
    current = log.read_text().splitlines()
    logged = [ln for ln in current if "of the agent's work" in ln or "claude API" in ln]
    assert logged and all(STAMP.match(ln) for ln in logged)
    assert any("claude API try 1 of 8 failed" in ln for ln in current)
    assert not any("HTTP Request" in ln for p in log.parent.iterdir() for ln in p.read_text().splitlines())
    # the print and the traceback went to the current file, not to a rotated one
    assert "a print after the rotations" in current
    assert current[-1] == "RuntimeError: the crash the supervisor reports"
    # no line is logged twice
    numbered = [ln for p in log.parent.iterdir() for ln in p.read_text().splitlines() if "line 99 " in ln]
    assert len(numbered) == 1


def test_a_process_whose_stdout_is_elsewhere_keeps_it(tmp_path):
    log = tmp_path / "agent-2.log"
    child = ("import logging, sys; from lab.logfiles import log_to; log_to(sys.argv[1], max_bytes=300, backups=1)\n"
             "for i in range(30): logging.getLogger('lab.x').info('entry %d', i)\nprint('to my own stdout')")
    done = subprocess.run([sys.executable, "-c", child, str(log)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "to my own stdout\n"
    assert "entry 29" in log.read_text()
