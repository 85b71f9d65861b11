"""Steering one agent from the keyboard, on any screen that has a selected agent."""
from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding
from textual.message import Message

from lab.tui.screens.live import LiveScreen

AGENT_BINDINGS = [
    Binding("m", "message", "Message"),
    Binding("p", "pause", "Pause"),
    Binding("r", "resume", "Resume"),
    Binding("R", "restart", "Restart"),
    Binding("x", "stop_agent", "Stop agent"),
    Binding("s", "start_agent", "Start agent"),
]


class AgentKeys(LiveScreen):
    """A live screen that defines `selected_agent()`; its keys post these messages, and the app does the steering.
    The dialogs import when first asked for, not with the dashboard."""

    class SendMessage(Message):
        """Tell `agent` (None: every agent) `text`, read at its next step."""
        def __init__(self, agent: str | None, text: str) -> None:
            super().__init__()
            self.agent, self.text = agent, text

    class Pause(Message):
        """Pause `agent` (None: every agent) at its next step."""
        def __init__(self, agent: str | None) -> None:
            super().__init__()
            self.agent = agent

    class Resume(Message):
        """Resume `agent` (None: every agent)."""
        def __init__(self, agent: str | None) -> None:
            super().__init__()
            self.agent = agent

    class Restart(Message):
        """Restart `agent`: the supervisor stops its process and starts it again."""
        def __init__(self, agent: str) -> None:
            super().__init__()
            self.agent = agent

    class StopAgent(Message):
        """Stop `agent`'s process, through the supervisor."""
        def __init__(self, agent: str) -> None:
            super().__init__()
            self.agent = agent

    class StartAgent(Message):
        """Start `agent`'s process again, through the supervisor."""
        def __init__(self, agent: str) -> None:
            super().__init__()
            self.agent = agent

    def selected_agent(self) -> str | None:
        raise NotImplementedError

    def _with_agent(self, then: Callable[[str], object]) -> None:
        name = self.selected_agent()
        if name is None:
            self.notify("select an agent first", severity="warning")
            return
        then(name)

    def action_message(self) -> None:
        from lab.tui.screens.dialogs import message_prompt

        self._with_agent(lambda n: self.ask(message_prompt(n), lambda got: self.SendMessage(n, got["text"])))

    def action_pause(self) -> None:
        self._with_agent(lambda n: self.post_message(self.Pause(n)))

    def action_resume(self) -> None:
        self._with_agent(lambda n: self.post_message(self.Resume(n)))

    def action_restart(self) -> None:
        self._with_agent(lambda n: self._confirm(
            f"Restart {n}? Its running tool call is stopped; it resumes from its notebook.", self.Restart(n)))

    def action_stop_agent(self) -> None:
        self._with_agent(lambda n: self._confirm(
            f"Stop {n}? Its running tool call is stopped after the grace period.", self.StopAgent(n)))

    def action_start_agent(self) -> None:
        self._with_agent(lambda n: self.post_message(self.StartAgent(n)))

    def _confirm(self, question: str, request: Message) -> None:
        from lab.tui.screens.dialogs import ConfirmScreen

        self.ask(ConfirmScreen(question), lambda _: request)
