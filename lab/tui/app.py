"""The lab's TUI: watch every agent live, read their work, review flags, and steer, from one terminal.

Reads go through `Source` in a thread of their own once a second; the active screen gets plain data to show.
Actions go through the core's `Steering` (the same as the command line's) in worker threads too, so a
busy database never freezes the screen. Quitting the TUI leaves the lab running.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.css.query import NoMatches

from lab.agents.steering import Steering
from lab.errors import LabError
from lab.inert import inert
from lab.store import open_db
from lab.tui.palette import LabCommands
from lab.tui.screens.dashboard import DashboardScreen
from lab.tui.screens.live import LiveScreen
from lab.tui.source import Dashboard, Source

DONE = {
    "message": lambda targets, *_: f"message waiting for {_who(targets)}; read at the next step",
    "pause": lambda targets, *_: f"pause sent to {_who(targets)}",
    "resume": lambda targets, *_: f"resume sent to {_who(targets)}",
    "restart": lambda name: f"{name} is restarting",
    "stop_agent": lambda name: f"{name} is stopping",
    "start_agent": lambda name: f"{name} is starting",
    "disqualify": lambda sid, reason: f"submission {sid} disqualified",
    "clear_flag": lambda fid, reason: f"flag {fid} cleared",
    "post": lambda title, body: "posted to the forum",
    "comment": lambda post_id, body: f"commented on #{post_id}",
    "vote": lambda post_id, value: f"voted {value:+d} on #{post_id}",
}


T = TypeVar("T")


async def in_daemon_thread(read: Callable[[], T]) -> T:
    """`read()` in a thread of its own that quitting does not wait for: a read still in flight when the person
    presses q (seconds, on a machine that agents keep busy) is abandoned, since nobody will see its result.
    Textual's thread workers run in the loop's executor, which the app's exit waits on."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def settle(outcome: tuple) -> None:
        if not done.cancelled():
            done.set_result(outcome)

    def run() -> None:
        try:
            outcome = (read(), None)
        except Exception as exc:   # handed to the awaiting task, which decides
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:       # the app has quit and its loop is closed
            pass

    threading.Thread(target=run, name="lab-read", daemon=True).start()
    value, error = await done
    if error is not None:
        raise error
    return value


def _who(targets: list[str] | None) -> str:
    return "every agent" if not targets or len(targets) > 3 else ", ".join(targets)


# The screens past the dashboard import when first opened: their Markdown and syntax highlighting would cost the
# first frame about a quarter of a second.
def _forum_screen():
    from lab.tui.screens.forum import ForumScreen

    return ForumScreen()


def _review_screen():
    from lab.tui.screens.review import ReviewScreen

    return ReviewScreen()


def _dialogs():
    from lab.tui.screens import dialogs

    return dialogs


class LabApp(App):
    CSS_PATH = "lab.tcss"
    TITLE = "lab"
    COMMANDS = App.COMMANDS | {LabCommands}
    MODES = {"dashboard": DashboardScreen, "forum": _forum_screen, "review": _review_screen}
    DEFAULT_MODE = "dashboard"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        Binding("d", "switch_mode('dashboard')", "Dashboard"),
        Binding("f", "switch_mode('forum')", "Forum"),
        Binding("v", "switch_mode('review')", "Review"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit (lab runs on)"),
        Binding("M", "message_all", "Message all"),
        Binding("S", "start_lab", "Start lab", show=False),
        Binding("X", "stop_lab", "Stop lab", show=False),
    ]

    def __init__(self, cfg, config_path: str | Path = "lab.toml", source: Source | None = None,
                 refresh_s: float = 1.0):
        super().__init__()
        self.cfg, self.config_path, self.refresh_s = cfg, str(config_path), refresh_s
        self.source = source or Source(cfg)
        self.steering = Steering(cfg, open_db(cfg.state.db), via="tui")
        self._steer_lock = threading.Lock()
        self._read_error: str | None = None
        self._generation = self._in_flight = 0

    def on_mount(self) -> None:
        self.set_interval(self.refresh_s, self._tick)

    # ---- live data -------------------------------------------------------------------------------
    def _tick(self) -> None:
        if not self._in_flight:    # a slow read is not piled on; the next tick tries again
            self.poll_now()

    def poll_now(self) -> None:
        """Read the active screen's data now; only the newest read is shown, so none shows stale data."""
        try:
            screen = self.screen
        except ScreenStackError:    # a tick while the app closes: its screens are already gone
            return
        if not isinstance(screen, LiveScreen):
            return
        self._generation += 1
        self._in_flight += 1
        generation = self._generation
        self.run_worker(self._poll(screen, generation), group="poll")

    async def _poll(self, screen: LiveScreen, generation: int) -> None:
        def read() -> tuple:
            data = screen.fetch(self.source)
            return data, data.header if isinstance(data, Dashboard) else self.source.header()

        try:
            data, header = await in_daemon_thread(read)
        except Exception as exc:   # a locked or damaged database must not take the screen down: say so once
            self._failed(inert(f"could not read the lab: {exc}"))
            return
        self._show(screen, generation, data, header)

    def _failed(self, message: str) -> None:
        self._in_flight -= 1
        if message != self._read_error:
            self._read_error = message
            self.notify(message, severity="error", timeout=10, markup=False)

    def _show(self, screen: LiveScreen, generation: int, data, header: str) -> None:
        self._in_flight -= 1
        self._read_error = None
        if generation == self._generation and screen.is_attached:
            try:
                screen.show(data)
            except NoMatches:   # read while the screen was still composing: the next tick draws it
                return
            self.sub_title = header

    # ---- navigation ------------------------------------------------------------------------------
    def open_agent(self, name: str) -> None:
        from lab.tui.screens.agent import AgentScreen

        self.switch_mode("dashboard")
        self.push_screen(AgentScreen(name))

    def open_thread(self, post_id: int) -> None:
        self.switch_mode("forum")
        self.screen.open_thread(post_id)

    def open_review(self, submission_id: int) -> None:
        self.switch_mode("review")
        self.screen.select(submission_id)

    def action_help(self) -> None:
        from lab.tui.screens.agent import AgentScreen
        from lab.tui.screens.agent_keys import AGENT_BINDINGS
        from lab.tui.screens.forum import ForumScreen
        from lab.tui.screens.help import HelpScreen
        from lab.tui.screens.review import ReviewScreen

        self.push_screen(HelpScreen([("everywhere", self.BINDINGS), ("agents (dashboard and agent screen)",
                                                                       AGENT_BINDINGS),
                                      ("dashboard", DashboardScreen.BINDINGS), ("agent screen", AgentScreen.BINDINGS),
                                      ("forum", ForumScreen.BINDINGS), ("review", ReviewScreen.BINDINGS)]))

    # ---- steering: the core's Steering, in a worker thread, each outcome a notification -----------
    def steer(self, kind: str, *args, then=None) -> None:
        """Do a Steering action off the UI thread; `then(result)` runs on the UI thread after it succeeds."""
        def work() -> None:
            with self._steer_lock:
                try:
                    result = getattr(self.steering, kind)(*args)
                except LabError as exc:
                    self.call_from_thread(self.notify, inert(str(exc)), title=f"{kind.replace('_', ' ')} failed",
                                          severity="error", markup=False)
                    return
            self.call_from_thread(self.notify, DONE[kind](*args))
            if then is not None:
                self.call_from_thread(then, result)
            self.call_from_thread(self.poll_now)

        self.run_worker(work, thread=True, group="steer")

    def confirm_then(self, question: str, kind: str, *args) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.steer(kind, *args)

        self.push_screen(_dialogs().ConfirmScreen(question), answered)

    def ask_message(self, name: str | None) -> None:
        who = name or "every agent"
        self.push_screen(_dialogs().PromptScreen(f"Message to {who} (read at its next step)", "what to tell them"),
                         lambda got: got and self.steer("message", [name] if name else None, got["text"]))

    def action_message_all(self) -> None:
        self.ask_message(None)

    def ask_post(self) -> None:
        self.push_screen(_dialogs().PostScreen(),
                         lambda got: got and self.steer("post", got["title"], got["body"], then=self.open_thread))

    def ask_comment(self, post_id: int) -> None:
        self.push_screen(_dialogs().PromptScreen(f"Comment on #{post_id}, as the person", "your comment"),
                         lambda got: got and self.steer("comment", post_id, got["text"]))

    def ask_disqualify(self, submission_id: int) -> None:
        self.push_screen(_dialogs().PromptScreen(f"Disqualify submission {submission_id}: why? (it leaves the "
                                                 "leaderboard, kept with the reason)", "the reason"),
                         lambda got: got and self.steer("disqualify", submission_id, got["text"]))

    def ask_clear_flag(self, submission_id: int, flags: list[tuple[str, str]]) -> None:
        self.push_screen(_dialogs().PromptScreen(f"Clear a flag of submission {submission_id}: which, and why?",
                                                 "the reason", choices=flags),
                         lambda got: got and self.steer("clear_flag", int(got["choice"]), got["text"]))

    def action_start_lab(self) -> None:
        def work() -> None:
            from lab.sandbox import make_sandbox

            self.call_from_thread(self.notify, "starting the lab...")
            with self._steer_lock:
                try:
                    sandbox = make_sandbox(self.cfg.lab.sandbox, warn=lambda line: self.call_from_thread(
                        self.notify, line, severity="warning"))
                    started = self.steering.start_lab(self.config_path, sandbox)
                except LabError as exc:
                    self.call_from_thread(self.notify, inert(str(exc)), title="start failed", severity="error",
                                          markup=False)
                    return
            self.call_from_thread(self.notify, "the lab is already running" if started.already_running else
                                  f"lab started: {started.count} agents ({started.backend_why})")

        self.run_worker(work, thread=True, group="lab")

    def action_stop_lab(self) -> None:
        def answered(yes: bool | None) -> None:
            if not yes:
                return

            def work() -> None:
                self.call_from_thread(self.notify, "stopping the lab...")
                with self._steer_lock:
                    killed = self.steering.stop_lab()
                self.call_from_thread(self.notify, "lab stopped" + (f"; killed {len(killed)} stray process(es)"
                                                                    if killed else ""))

            self.run_worker(work, thread=True, group="lab")

        question = ("Stop the whole lab? Every agent's running tool call is stopped after the grace period; "
                    "`lab start` or S resumes them.")
        self.push_screen(_dialogs().ConfirmScreen(question, "Stop the lab"), answered)


def run_tui(cfg, config_path: str | Path = "lab.toml", refresh_s: float = 1.0) -> None:
    LabApp(cfg, config_path, refresh_s=refresh_s).run()
