"""Steering one agent from the keyboard, on any screen that has a selected agent."""
from __future__ import annotations

from textual.binding import Binding

AGENT_BINDINGS = [
    Binding("m", "message", "Message"),
    Binding("p", "pause", "Pause"),
    Binding("r", "resume", "Resume"),
    Binding("R", "restart", "Restart"),
    Binding("x", "stop_agent", "Stop agent"),
    Binding("s", "start_agent", "Start agent"),
]


class AgentKeys:
    """Mixed into a screen that defines `selected_agent()`; the app does the steering."""

    def selected_agent(self) -> str | None:
        raise NotImplementedError

    def _with_agent(self, then) -> None:
        name = self.selected_agent()
        if name is None:
            self.app.notify("select an agent first", severity="warning")
            return
        then(name)

    def action_message(self) -> None:
        self._with_agent(self.app.ask_message)

    def action_pause(self) -> None:
        self._with_agent(lambda n: self.app.steer("pause", [n]))

    def action_resume(self) -> None:
        self._with_agent(lambda n: self.app.steer("resume", [n]))

    def action_restart(self) -> None:
        self._with_agent(lambda n: self.app.confirm_then(
            f"Restart {n}? Its running tool call is stopped; it resumes from its notebook.", "restart", n))

    def action_stop_agent(self) -> None:
        self._with_agent(lambda n: self.app.confirm_then(
            f"Stop {n}? Its running tool call is stopped after the grace period.", "stop_agent", n))

    def action_start_agent(self) -> None:
        self._with_agent(lambda n: self.app.steer("start_agent", n))
