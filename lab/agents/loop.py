"""The agent loop: take the person's commands, ask the backend for a turn, run its tool calls, record.

Everything that ends a run cleanly is an exception: a budget reached, a stop, a stuck agent, a
script that ran out. Anything else (a backend that gave up, a bug) propagates and the runner
exits with an error, so that the supervisor restarts the agent from its saved state. A full state
disk is neither: the loop's own records wait for space (lab.disk_full), and a tool call it failed
is a tool error the agent reads, not one that counts toward being stuck; nor does any other fault of the
lab's own (lab.errors.LAB_FAULTS).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from lab.agents import budget
from lab.agents.budget import BudgetReached
from lab.agents.tools import Toolbox
from lab.agents.turns import AgentFinished, Backend, Message, ToolResult, Turn, Usage
from lab.disk_full import patiently
from lab.errors import INTERRUPTED, LabError, is_lab_fault
from lab.sandbox.workspace import WorktreeMissing
from lab.store import agents, commands, events

if TYPE_CHECKING:
    import sqlite_utils

    from lab.settings import Settings

POLL_S = 0.5
T = TypeVar("T")
LOG = logging.getLogger("lab.runner")


class StopRequested(LabError):
    """The agent was asked to stop (by the person, the supervisor, or the supervisor's death)."""


class Stuck(LabError):
    """The agent repeated the same failing tool call too many times in a row."""


class AgentLoop:
    def __init__(self, name: str, cfg: Settings, db: sqlite_utils.Database, backend: Backend, toolbox: Toolbox):
        self.name, self.cfg, self.db, self.backend, self.toolbox = name, cfg, db, backend, toolbox
        self.stop_reason: str | None = None
        self.parent = os.getppid()
        self.last_tick = time.monotonic()
        self.failures: tuple[str, int] = ("", 0)    # the last failing call and how often in a row

    def keep(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A record of the loop's own, written once the state disk has space (given up when the agent stops)."""
        return patiently(write, *args, give_up=lambda: self.stop_reason is not None, log=LOG, **kwargs)

    # ---- the loop ------------------------------------------------------------------------------
    def run(self) -> tuple[str, str]:
        """Run until something ends it; returns the final (state, reason), also recorded."""
        self.keep(agents.set_state, self.db, self.name, "running", None, pid=os.getpid(), started=time.time(),
                  heartbeat=time.time())
        self.note("state", "running")
        try:
            while True:
                inbox = self.before_step()
                turn = self.step(inbox)
                self.record_turn(turn)
                results = self.run_calls(turn)
                self.backend.observe(results)
                self.keep(agents.save_backend_state, self.db, self.name, self.backend.state())
                if self.cfg.agents.step_pause_s:
                    time.sleep(self.cfg.agents.step_pause_s)
        except BudgetReached as exc:
            return self.finish("budget", str(exc))
        except Stuck as exc:
            return self.finish("stuck", str(exc))
        except (StopRequested, AgentFinished) as exc:
            return self.finish("stopped", str(exc))
        except WorktreeMissing as exc:
            return self.finish("failed", str(exc))

    def before_step(self) -> list[Message]:
        """Account time, check budgets and stops, and collect the person's commands (blocking while paused)."""
        inbox, paused = [], False
        while True:
            self.tick()
            self.check_stop()
            budget.check(self.db, self.cfg, self.name)
            for command in self.keep(commands.take, self.db, self.name):
                if command["kind"] == "message":
                    inbox.append(Message(command["author"], command["body"]))
                    self.note("message", f"{command['author']}: {command['body']}", {"author": command["author"]})
                elif command["kind"] in ("pause", "resume"):
                    paused = command["kind"] == "pause"
                    self.keep(agents.set_state, self.db, self.name, "paused" if paused else "running",
                              f"{command['kind']}d by {command['author']}")
                    self.note("state", "paused" if paused else "running")
            if not paused:
                return inbox
            time.sleep(POLL_S)

    def step(self, inbox: list[Message]) -> Turn:
        try:
            return self.backend.step(inbox)
        except BaseException as exc:
            spent = getattr(exc, "spent", None)   # a failed step's calls may have cost money all the same
            if spent:
                self.record_usage(spent)
            for message in inbox:  # not read yet: they wait for the restarted agent
                commands.send(self.db, [self.name], "message", message.text, author=message.author)
            raise

    def run_calls(self, turn: Turn) -> list[ToolResult]:
        results = []
        for call in turn.calls:
            if self.stop_reason:
                results.append(ToolResult(call.id, call.name, "not run: the agent was stopped", is_error=True,
                                          data={"kind": INTERRUPTED}))
                continue
            self.note("tool_call", f"{call.name} {_brief(call.arguments)}", {"id": call.id, "name": call.name,
                                                                              "arguments": call.arguments})
            result = self.toolbox.execute(call)
            if result.is_error and self.stop_reason:    # what failed may be the stop's doing: not the agent's
                result = replace(result, data={**(result.data or {}), "kind": INTERRUPTED})
            self.note("tool_result", f"{call.name}: {'error: ' if result.is_error else ''}"
                      f"{result.output.strip().splitlines()[0] if result.output.strip() else '(no output)'}",
                      {"id": call.id, "name": call.name, "output": result.output[:8000], "is_error": result.is_error})
            results.append(result)
            self.watch_repeats(call, result)
        return results

    # ---- limits --------------------------------------------------------------------------------
    def tick(self) -> None:
        now = time.monotonic()
        self.keep(agents.tick, self.db, self.name, now - self.last_tick)
        self.last_tick = now

    def request_stop(self, reason: str, grace_s: float | None = None) -> None:
        """From a signal handler: finish the running tool call within the grace period (agents.grace_s unless
        given), then stop."""
        if self.stop_reason:
            return
        self.stop_reason = reason
        timer = threading.Timer(self.cfg.agents.grace_s if grace_s is None else grace_s, self.toolbox.cancel.set)
        timer.daemon = True
        timer.start()

    def check_stop(self) -> None:
        if os.getppid() != self.parent and not self.stop_reason:
            self.stop_reason = "the supervisor is gone; `lab start` resumes the agent"
        if self.stop_reason:
            raise StopRequested(self.stop_reason)

    def watch_repeats(self, call, result: ToolResult) -> None:
        if is_lab_fault((result.data or {}).get("kind")):
            return    # the lab's failing (its disk, its scorer), not the agent's: it may ask again
        key = call.name + json.dumps(call.arguments, sort_keys=True)
        if not result.is_error:
            self.failures = ("", 0)
            return
        count = self.failures[1] + 1 if self.failures[0] == key else 1
        self.failures = (key, count)
        if count >= self.cfg.agents.repeat_limit:
            raise Stuck(f"the same failing call {count} times in a row: {call.name} {_brief(call.arguments)} -> "
                        f"{result.output.strip().splitlines()[0][:200] if result.output.strip() else 'error'}")

    # ---- records -------------------------------------------------------------------------------
    def record_turn(self, turn: Turn) -> None:
        if turn.usage:
            self.record_usage(turn.usage)
        if turn.step:
            self.keep(agents.update, self.db, self.name, step=turn.step[:200])
        self.note("turn", turn.text.strip().splitlines()[0] if turn.text.strip() else turn.step, turn.to_dict())

    def record_usage(self, u: Usage) -> None:
        self.keep(agents.record_model_call, self.db, self.name, model=u.model, input_tokens=u.input_tokens,
                  output_tokens=u.output_tokens, cache_write_tokens=u.cache_write_tokens,
                  cache_read_tokens=u.cache_read_tokens, dollars=u.dollars, duration_s=u.duration_s,
                  retries=u.retries)

    def note(self, kind: str, summary: str, data: dict | None = None) -> None:
        self.keep(events.record, self.db, self.name, kind, summary, data)

    def finish(self, state: str, reason: str) -> tuple[str, str]:
        self.keep(agents.save_backend_state, self.db, self.name, self.backend.state())
        self.keep(agents.set_state, self.db, self.name, state, reason, pid=None)
        self.note("state", f"{state}: {reason}")
        return state, reason


def _brief(arguments: dict) -> str:
    text = " ".join(f"{k}={v!r}" if not isinstance(v, str) or len(v) < 80 else f"{k}=<{len(v)} chars>"
                    for k, v in arguments.items())
    return text[:200]
