"""The runners' zygote: one process that has imported everything an agent's runner needs, and forks runners.

A runner started as `python -m lab.agents.runner` spent about 0.7 s of CPU on its imports before its first step:
nine of them on two cores took 4-5 s to start, and as long again after a supervisor restart. The supervisor
instead starts this process once (`python -m lab.agents.zygote --config FILE --backend B --config-fd N`, its child,
with a pipe each way); it imports the runner and the agents' backend, then forks a runner on each request, which
starts with its imports done. The supervisor hands it its own validated config on descriptor N
(lab.config.handover), and each runner inherits it: none of them reads lab.toml, and a runner started again after
lab.toml was edited still holds its supervisor's settings.

A forked runner is set up as `python -m lab.agents.runner` was: a session of its own (so an autogroup of its own,
lowered below the person's tools), stdin from /dev/null, stdout and stderr on its log, the environment the
supervisor gives it, fresh random state, and its command line rewritten to the runner's (lab.proctitle), which
people and the benches read in `ps`. It gets SIGTERM when its parent, the zygote, dies; the zygote gets SIGKILL
when the supervisor dies, and leaves when its request pipe closes: so a killed supervisor still stops every
runner, each saving its state first.

The protocol, one JSON object a line. The supervisor writes {"argv": [runner arguments], "env": {...},
"log": path, "title": [command line]}; the zygote answers {"pid": N}, or {"error": why}, and, whenever a
runner ends, {"exited": N, "code": C} (C as subprocess reports it: negative for a signal). The supervisor's
side is `Zygote`, which hands out `Forked` processes that answer poll() and wait() as a Popen does.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import traceback
from typing import IO

from lab.agents import pidfiles
from lab.config import handover
from lab.config.backends import BACKENDS
from lab.config.schema import Config
from lab.errors import LabError
from lab.sandbox.base import die_with_parent
from lab.threads import DAEMON_ENV

REPLY_TIMEOUT_S = 120      # the first request waits for the zygote's imports (about a second)
LOST_CODE = -signal.SIGTERM  # a runner whose zygote died: its parent's death sent it SIGTERM


class ZygoteFailed(LabError):
    """The zygote could not start a runner (it died, or did not answer)."""


# ---- the zygote's side ------------------------------------------------------------------------------------------
def _write(fd: int, message: dict) -> None:
    data = json.dumps(message).encode() + b"\n"
    while data:
        data = data[os.write(fd, data):]


def _reap(replies: int) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _write(replies, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _become_runner(request: dict, zygote: int, private_fds: list[int], cfg: Config) -> None:
    """In the forked child: set up as the runner's own process, run it, and leave. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in private_fds:
            os.close(fd)
        os.setsid()
        die_with_parent(signal.SIGTERM)
        if os.getppid() != zygote:     # the zygote died before the line above: so would this runner
            os._exit(1)
        from lab.sandbox.cgroups import lower_own_autogroup

        lower_own_autogroup()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.clear()
        os.environ.update(request["env"])
        random.seed()
        from lab.proctitle import set_cmdline

        set_cmdline(request["title"])
        from lab.agents import runner

        runner.run(request["argv"], cfg)
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def serve(requests: int, replies: int, cfg: Config) -> None:
    """Fork a runner holding `cfg` for each request line, and report each runner's end, until the request pipe
    closes."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)    # a handler, so that SIGCHLD writes to the wakeup pipe
    me, buffer = os.getpid(), b""
    private = [requests, replies, wake_read, wake_write]
    while True:
        readable = select.select([requests, wake_read], [], [])[0]
        if wake_read in readable:
            os.read(wake_read, 4096)
        _reap(replies)
        if requests not in readable:
            continue
        data = os.read(requests, 65536)
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                request = json.loads(line)
                pid = os.fork()
            except (ValueError, OSError) as exc:
                _write(replies, {"error": f"{type(exc).__name__}: {exc}"})
                continue
            if pid == 0:
                _become_runner(request, me, private, cfg)
            _write(replies, {"pid": pid})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the lab's lab.toml (named for people reading `ps`)")
    parser.add_argument("--config-fd", type=int, required=True,
                        help="the supervisor's validated config (lab.config.handover)")
    parser.add_argument("--backend", required=True, choices=sorted(BACKENDS))
    parser.add_argument("--parent", type=int, help="die (SIGKILL) with this process, the supervisor")
    args = parser.parse_args(argv)
    if args.parent is not None:    # here, not in a preexec_fn: the supervisor is threaded when it starts us
        die_with_parent(signal.SIGKILL, args.parent)
    cfg = handover.read(args.config_fd)
    pidfiles.write_own(cfg.state.run.zygote_pid)
    # the pipes move off stdin and stdout, so that nothing printed by accident reaches the supervisor as a reply
    requests, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    import importlib

    import lab.agents.runner  # noqa: F401  (what every runner needs, loaded once, here)

    try:
        importlib.import_module(BACKENDS[args.backend][0])
    except ImportError:
        pass     # a runner that needs it fails as it would have without the zygote, and says why in its log
    serve(requests, replies, cfg)


# ---- the supervisor's side ----------------------------------------------------------------------------------------
class Forked:
    """A runner the zygote forked: poll() and wait() as subprocess.Popen has them."""

    def __init__(self, pid: int, zygote: "Zygote"):
        self.pid, self.zygote = pid, zygote
        self.returncode: int | None = None
        self.generation = zygote.generation
        self.pidfd: int | None
        try:
            self.pidfd = os.pidfd_open(pid)   # says when it ended even where the zygote is gone
        except OSError:
            self.pidfd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.zygote.pump()
            self.returncode = self.zygote.codes.pop(self.pid, None)
            if self.returncode is None and self._orphaned() and self._ended():
                self.returncode = LOST_CODE
            if self.returncode is not None and self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
        return self.returncode

    def _orphaned(self) -> bool:
        """Whether the zygote that forked it is gone (a new one may have started since)."""
        return self.zygote.gone or self.zygote.generation != self.generation

    def _ended(self) -> bool:
        if self.pidfd is None:
            return True
        return bool(select.select([self.pidfd], [], [], 0)[0])

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"runner {self.pid}", timeout)
            watched: list[int | Zygote] = \
                [self.pidfd] if self._orphaned() and self.pidfd is not None else [self.zygote]
            select.select(watched, [], [], 0.5 if left is None else min(left, 0.5))
        return code


class Zygote:
    """The supervisor's handle on its zygote: starts it (again, where it died) and asks it for runners."""

    def __init__(self, cfg: Config, config_path: str, backend: str, dies_with_parent: bool = True,
                 tick=lambda: None):
        self.cfg = cfg                      # handed to each zygote started: its runners hold the supervisor's config
        self.argv = [sys.executable, "-m", "lab.agents.zygote", "--config", config_path, "--backend", backend]
        if dies_with_parent:   # the zygote gets SIGKILL when the supervisor dies, and so its runners SIGTERM
            self.argv += ["--parent", str(os.getpid())]
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        self.codes: dict[int, int] = {}     # ended runners not yet polled
        self.gone = True
        self.generation = 0                 # how many zygotes were started: a runner belongs to one
        self.tick = tick                    # called while a request waits for its answer (a heartbeat)

    def start(self) -> None:
        """Start the zygote; it imports as it starts, and answers its first request when that is done."""
        self.close()
        env = {**os.environ, **DAEMON_ENV}   # numpy's BLAS loads here with no thread pool: the zygote forks
        handed = handover.write(self.cfg)
        try:
            self.proc = subprocess.Popen([*self.argv, "--config-fd", str(handed)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, pass_fds=(handed,))
        finally:
            os.close(handed)
        os.set_blocking(self.fileno(), False)
        self.buffer, self.gone = b"", False
        self.generation += 1

    def pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        """The request and reply pipes of the zygote started last."""
        if self.proc is None or self.proc.stdin is None or self.proc.stdout is None:
            raise ZygoteFailed("the runners' zygote was never started")
        return self.proc.stdin, self.proc.stdout

    def fileno(self) -> int:
        """Readable when the zygote has news (a runner ended) or has gone: for the supervisor's select."""
        return self.pipes()[1].fileno()

    def spawn(self, argv: list[str], env: dict[str, str], log: str, title: list[str]) -> Forked:
        if self.gone:
            self.start()
        request = json.dumps({"argv": argv, "env": env, "log": log, "title": title}).encode() + b"\n"
        requests = self.pipes()[0]
        try:
            requests.write(request)
            requests.flush()
        except (BrokenPipeError, ValueError):
            self._lost()
            raise ZygoteFailed("the runners' zygote ended before it could start a runner") from None
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            self.tick()
            for reply in self.pump(wait_s=min(1.0, max(0.0, deadline - time.monotonic()))):
                if "pid" in reply:
                    return Forked(reply["pid"], self)
                raise ZygoteFailed(f"the runners' zygote could not fork: {reply['error']}")
            if self.gone:
                code = self.proc.poll() if self.proc is not None else None
                raise ZygoteFailed(f"the runners' zygote ended (exit code {code}) before it started a "
                                   "runner: see the supervisor's log")
            if time.monotonic() >= deadline:
                raise ZygoteFailed(f"the runners' zygote did not answer within {REPLY_TIMEOUT_S} s")

    def pump(self, wait_s: float = 0.0) -> list[dict]:
        """Read what the zygote said (waiting up to wait_s for something): keep the exit codes, return the rest."""
        if self.gone:
            return []
        if wait_s and not select.select([self], [], [], wait_s)[0]:
            return []
        try:
            data = os.read(self.fileno(), 65536)
        except BlockingIOError:
            return []
        if not data:
            self._lost()
            return []
        self.buffer += data
        others = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "exited" in message:
                self.codes[message["exited"]] = message["code"]
            else:
                others.append(message)
        return others

    def _lost(self) -> None:
        """The zygote died (killed, or a bug): its runners got SIGTERM from its death and stop by themselves."""
        self.gone = True
        if self.proc is not None:
            self.proc.wait()

    def close(self) -> None:
        """Let the zygote go (it leaves when its request pipe closes)."""
        if self.proc is None:
            return
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.gone = True


if __name__ == "__main__":
    main()
