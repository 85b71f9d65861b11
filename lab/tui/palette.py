"""The lab's entries in Textual's command palette (ctrl+p): screens, agents, and steering the whole lab."""
from __future__ import annotations

from functools import partial
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Provider

from lab.tui.screens.agent_keys import AgentKeys

if TYPE_CHECKING:
    from lab.tui.app import LabApp


class LabCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("LabApp", self.app)
        found: list[tuple[str, Callable[[], object], str]] = [
            ("Dashboard", partial(app.switch_mode, "dashboard"), "agents, leaderboard, chart, posts, load"),
            ("Forum", partial(app.switch_mode, "forum"), "threads, search, post as the person"),
            ("Review flagged submissions", partial(app.switch_mode, "review"), "evidence, diffs, disqualify"),
            ("Message every agent", app.action_message_all, "each reads it at its next step"),
            ("Pause every agent", lambda: app.post_message(AgentKeys.Pause(None)), "at their next step"),
            ("Resume every agent", lambda: app.post_message(AgentKeys.Resume(None)), ""),
            ("Start the lab", app.action_start_lab, "the supervisor, the scorer and every agent"),
            ("Stop the lab", app.action_stop_lab, "asks first"),
            ("Help: keys", app.action_help, "every binding"),
        ]
        for name in app.cfg.agents.names:
            found.append((f"Open {name}", partial(app.open_agent, name), "transcript, notebook, commits, submissions"))
        return found

    async def discover(self):
        for name, command, help_text in self._commands():
            yield DiscoveryHit(name, command, help=help_text)

    async def search(self, query: str):
        matcher = self.matcher(query)
        for name, command, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)
