"""Everything a person does to the lab, from the TUI or the command line, each action recorded.

Messages, pause and resume wait in the commands table until each agent takes them at its next step;
starting, stopping and restarting one agent go to the supervisor. Review decisions (disqualify,
clear a flag) and the person's forum posts go straight to the store. Each action is also written to
the `actions` table, with where it came from, so the lab's history says who did what and when.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.agents import control
from lab.errors import LabError
from lab.store import actions, commands, forum, submissions

if TYPE_CHECKING:
    import sqlite_utils

    from lab.agents.backends import Choice
    from lab.config import Config
    from lab.sandbox import Sandbox


DONE_TO_AGENT = {"restart_agent": "restarted", "stop_agent": "stopped", "start_agent": "started"}


class BadAction(LabError):
    """An action with missing or malformed input (an empty message, a disqualification without a reason)."""


class Steering:
    def __init__(self, cfg: Config, db: sqlite_utils.Database, via: str = "cli"):
        self.cfg, self.db, self.via = cfg, db, via

    def _record(self, kind: str, target: str = "", **detail: Any) -> None:
        actions.record(self.db, kind, target, detail, via=self.via)

    def _agents(self, names: list[str] | None) -> list[str]:
        return control.check_names(self.cfg, list(names)) if names else self.cfg.agents.names

    # ---- agents, through the commands table ------------------------------------------------------
    def message(self, names: list[str] | None, text: str) -> list[str]:
        if not text.strip():
            raise BadAction("a message needs some text")
        targets = self._agents(names)
        commands.send(self.db, targets, "message", text.strip())
        self._record("message", ",".join(targets), text=text.strip())
        return targets

    def pause(self, names: list[str] | None) -> list[str]:
        targets = self._agents(names)
        commands.send(self.db, targets, "pause")
        self._record("pause", ",".join(targets))
        return targets

    def resume(self, names: list[str] | None) -> list[str]:
        targets = self._agents(names)
        commands.send(self.db, targets, "resume")
        self._record("resume", ",".join(targets))
        return targets

    # ---- one agent's process, through the supervisor ----------------------------------------------
    def _supervise(self, kind: str, name: str) -> None:
        control.check_names(self.cfg, [name])
        if not control.running(self.cfg):
            raise control.LabNotRunning(f"the lab is not running, so {name} cannot be "
                                        f"{DONE_TO_AGENT[kind]} (start the lab first)")
        commands.send(self.db, [commands.SUPERVISOR], kind, name)
        self._record(kind, name)

    def restart(self, name: str) -> None:
        self._supervise("restart_agent", name)

    def stop_agent(self, name: str) -> None:
        self._supervise("stop_agent", name)

    def start_agent(self, name: str) -> None:
        self._supervise("start_agent", name)

    # ---- the whole lab -------------------------------------------------------------------------
    def start_lab(self, config_path: str, sandbox: Sandbox, names: list[str] | None = None,
                  choice: Choice | None = None) -> control.Started:
        """`choice`: the backend `lab start` chose and the person agreed to (control.start_lab)."""
        started = control.start_lab(self.cfg, config_path, sandbox, names, choice)
        if not started.already_running:
            self._record("start_lab", ",".join(names or []), pid=started.running.pid)
        return started

    def stop_lab(self) -> list[int]:
        killed = control.stop_lab(self.cfg, self.db)
        self._record("stop_lab", killed=len(killed))
        return killed

    # ---- review --------------------------------------------------------------------------------
    def disqualify(self, submission_id: int, reason: str) -> None:
        if not reason.strip():
            raise BadAction("a disqualification needs a reason")
        submissions.disqualify(self.db, submission_id, reason.strip())
        self._record("disqualify", str(submission_id), reason=reason.strip())

    def clear_flag(self, flag_id: int, reason: str) -> None:
        if not reason.strip():
            raise BadAction("clearing a flag needs a reason")
        submissions.clear_flag(self.db, flag_id, reason.strip())
        self._record("clear_flag", str(flag_id), reason=reason.strip())

    # ---- the forum, as the person ---------------------------------------------------------------
    def post(self, title: str, body: str = "") -> int:
        post_id = forum.post(self.db, "person", "person", title, body)
        self._record("post", str(post_id), title=title.strip())
        return post_id

    def comment(self, post_id: int, body: str) -> int:
        comment_id = forum.comment(self.db, post_id, "person", body)
        self._record("comment", str(post_id), body=body)
        return comment_id

    def vote(self, post_id: int, value: int) -> None:
        forum.vote(self.db, post_id, "person", value)
        self._record("vote", str(post_id), value=value)
