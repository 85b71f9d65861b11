"""Modal dialogs: confirm an action that loses work, ask for a line of text, write a post."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no; escape and n say no."""
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, yes: str = "Yes"):
        super().__init__()
        self.question, self.yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen[dict | None]):
    """One line of text, with an optional choice (a Select) above it; enter submits, escape cancels."""
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", choices: list[tuple[str, str]] | None = None,
                 value: str = ""):
        super().__init__()
        self.title_text, self.placeholder, self.choices, self.value = title, placeholder, choices, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="question")
            if self.choices:
                yield Select(self.choices, value=self.choices[0][1], allow_blank=False, id="choice")
            yield Input(value=self.value, placeholder=self.placeholder, id="text")
            yield Label("enter to send, escape to cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#text", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.notify("type something first (escape cancels)", severity="warning")
            return
        result = {"text": text}
        if self.choices:
            result["choice"] = str(self.query_one("#choice", Select).value)
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)


def message_prompt(agent: str | None) -> PromptScreen:
    """What to tell `agent` (None: every agent)."""
    return PromptScreen(f"Message to {agent or 'every agent'} (read at its next step)", "what to tell them")


class PostScreen(ModalScreen[dict | None]):
    """A forum post as the person: a title and a body; ctrl+s posts, escape cancels."""
    BINDINGS = [Binding("ctrl+s", "send", "Post"), Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tall"):
            yield Label("New forum post, as the person (every agent reads it)", classes="question")
            yield Input(placeholder="title", id="title")
            yield TextArea(id="body")
            with Horizontal(classes="buttons"):
                yield Button("Post (ctrl+s)", variant="primary", id="post")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#body", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_send() if event.button.id == "post" else self.dismiss(None)

    def action_send(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        if not title:
            self.notify("a post needs a title", severity="warning")
            return
        self.dismiss({"title": title, "body": self.query_one("#body", TextArea).text})

    def action_cancel(self) -> None:
        self.dismiss(None)
