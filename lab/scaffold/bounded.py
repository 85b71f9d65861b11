"""A git process on the host that cannot run away, whatever the repository holds: it is stopped past a cap on the
bytes it prints and past a wall-clock limit, and it runs under a memory limit; the result says which stopped it.

An agent's commit can be a compression bomb: kilobytes in the repository that inflate to gigabytes of message or
patch. git reads a whole object into memory before it prints any of it, so a cap on output alone does not bound
memory. The limit on the data segment (RLIMIT_DATA: heap and private mappings, not the pack files git maps) does;
it is set at exec time by the shell's `ulimit`, with no Python code between fork and exec (lab/sandbox/launch.py
says why that matters in a threaded process).
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

CHUNK = 1 << 16
STDERR_KEPT = 4096
# `ulimit -d` takes KiB; a limit that cannot be set stops the command before git runs
LIMITED = 'ulimit -d "$1" || exit 125; shift; exec "$@"'


@dataclass(frozen=True)
class Capped:
    """What a bounded process printed (at most its cap) and how it ended."""

    out: bytes
    returncode: int | None          # None: stopped by the lab
    stopped: str | None             # "output" (printed past its cap) or "time" (ran past its limit)
    stderr: str                     # the end of what it printed there
    max_bytes: int
    timeout_s: float
    memory_mb: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def cut(self) -> bool:
        return self.stopped == "output"

    def out_of_memory(self) -> bool:
        return self.returncode not in (0, None) and ("Out of memory" in self.stderr or "mmap failed" in self.stderr
                                                     or "Cannot allocate memory" in self.stderr)

    def why(self) -> str:
        """Why it did not finish, in words; '' when it did."""
        if self.stopped == "output":
            return f"git was stopped after {self.max_bytes:,} bytes of output"
        if self.stopped == "time":
            return f"git was stopped after {self.timeout_s:g} s"
        if self.out_of_memory():
            return f"git was stopped at its limit of {self.memory_mb} MB of memory"
        if self.returncode:
            last = (self.stderr.strip().splitlines() or ["(no message)"])[-1]
            return f"git failed: {last[:300]}"
        return ""


def run_capped(argv: list[str], env: dict[str, str], cwd, *, max_bytes: int, timeout_s: float, memory_mb: int,
               input: bytes | None = None) -> Capped:
    """Run argv with at most memory_mb of data segment; read at most max_bytes of its output, then kill it (and
    its process group); kill it too at timeout_s. Input is written as the process reads it."""
    proc = subprocess.Popen(["bash", "-c", LIMITED, "bash", str(memory_mb << 10), *argv], env=env, cwd=cwd,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None    # the pipes asked for
    out, err = bytearray(), bytearray()
    stopped = None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ, out)
        selector.register(stderr, selectors.EVENT_READ, err)
        pending = memoryview(input) if input is not None else None
        if pending is not None:
            assert stdin is not None    # a pipe where there is input
            os.set_blocking(stdin.fileno(), False)
            if pending.nbytes:
                selector.register(stdin, selectors.EVENT_WRITE, None)
            else:
                stdin.close()
        while selector.get_map() and stopped is None:
            left = deadline - time.monotonic()
            if left <= 0:
                stopped = "time"
                break
            for key, _ in selector.select(min(left, 1.0)):
                if key.data is None:                       # stdin: as much as the pipe takes now
                    assert stdin is not None and pending is not None
                    try:
                        pending = pending[os.write(key.fd, pending[:CHUNK]):]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending.nbytes:
                        selector.unregister(stdin)
                        stdin.close()
                    continue
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                if key.data is err:
                    err += chunk
                    del err[:-STDERR_KEPT]
                    continue
                out += chunk
                if len(out) > max_bytes:
                    del out[max_bytes:]
                    stopped = "output"
                    break
    if stopped is not None:
        _kill(proc)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()
    returncode = proc.wait()
    return Capped(bytes(out), None if stopped else returncode, stopped, err.decode(errors="replace"),
                  max_bytes, timeout_s, memory_mb)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
