"""The lab's TUI: watch every agent live, read their work, review flags, and steer, from one terminal.

Reads go through `Source` in a thread of their own once a second; the active screen gets plain data to show.
A screen asks for an action by posting one of its messages (`ForumScreen.Vote`, `AgentKeys.Pause`...); the app
handles each with `@on`, through the core's `Steering` (the same as the command line's) in worker threads too, so
a busy database never freezes the screen. The agent screen, help and the dialogs import when first opened, as they
would cost the first frame. Quitting the TUI leaves the lab running.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from textual import on
from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.css.query import NoMatches

from lab.agents.steering import Steering
from lab.errors import LabError
from lab.inert import inert
from lab.store import open_db
from lab.tui.palette import LabCommands
from lab.tui.screens.agent_keys import AGENT_BINDINGS, AgentKeys
from lab.tui.screens.dashboard import DashboardScreen
from lab.tui.screens.forum import ForumScreen
from lab.tui.screens.live import LiveScreen
from lab.tui.screens.review import ReviewScreen
from lab.tui.source import Dashboard, Source

if TYPE_CHECKING:
    from lab.config import Config


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
        outcome: tuple[T | None, Exception | None]
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


def _targets(agent: str | None) -> list[str] | None:
    return [agent] if agent else None


def _who(targets: list[str] | None) -> str:
    return "every agent" if not targets or len(targets) > 3 else ", ".join(targets)


class LabApp(App):
    CSS_PATH = "lab.tcss"
    TITLE = "lab"
    COMMANDS = App.COMMANDS | {LabCommands}
    MODES = {"dashboard": DashboardScreen, "forum": ForumScreen, "review": ReviewScreen}
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

    def __init__(self, cfg: Config, config_path: str | Path = "lab.toml", source: Source | None = None,
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
        if isinstance(self.screen, ForumScreen):
            self.screen.open_thread(post_id)

    def open_review(self, submission_id: int) -> None:
        self.switch_mode("review")
        if isinstance(self.screen, ReviewScreen):
            self.screen.select(submission_id)

    @on(LiveScreen.OpenAgent)
    def _open_agent_asked(self, asked: LiveScreen.OpenAgent) -> None:
        self.open_agent(asked.agent)

    @on(LiveScreen.OpenThread)
    def _open_thread_asked(self, asked: LiveScreen.OpenThread) -> None:
        self.open_thread(asked.post_id)

    @on(LiveScreen.OpenReview)
    def _open_review_asked(self, asked: LiveScreen.OpenReview) -> None:
        self.open_review(asked.submission_id)

    def action_help(self) -> None:
        from lab.tui.screens.agent import AgentScreen
        from lab.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen([("everywhere", self.BINDINGS), ("agents (dashboard and agent screen)",
                                                                       AGENT_BINDINGS),
                                      ("dashboard", DashboardScreen.BINDINGS), ("agent screen", AgentScreen.BINDINGS),
                                      ("forum", ForumScreen.BINDINGS), ("review", ReviewScreen.BINDINGS)]))

    # ---- steering: each message a screen posts, done by the core's Steering in a worker thread --------
    def _steer(self, act: Callable[[], T], done: str, failed: str, then: Callable[[T], None] | None = None) -> None:
        """`act()` off the UI thread; then say `done` and run `then(result)` on the UI thread, or say why it failed
        under the title `failed`."""
        def work() -> None:
            with self._steer_lock:
                try:
                    result = act()
                except LabError as exc:
                    self.call_from_thread(self.notify, inert(str(exc)), title=failed, severity="error", markup=False)
                    return
            self.call_from_thread(self.notify, done)
            if then is not None:
                self.call_from_thread(then, result)
            self.call_from_thread(self.poll_now)

        self.run_worker(work, thread=True, group="steer")

    @on(AgentKeys.SendMessage)
    def _send_message(self, asked: AgentKeys.SendMessage) -> None:
        targets = _targets(asked.agent)
        self._steer(partial(self.steering.message, targets, asked.text),
                    f"message waiting for {_who(targets)}; read at the next step", "message failed")

    @on(AgentKeys.Pause)
    def _pause(self, asked: AgentKeys.Pause) -> None:
        targets = _targets(asked.agent)
        self._steer(partial(self.steering.pause, targets), f"pause sent to {_who(targets)}", "pause failed")

    @on(AgentKeys.Resume)
    def _resume(self, asked: AgentKeys.Resume) -> None:
        targets = _targets(asked.agent)
        self._steer(partial(self.steering.resume, targets), f"resume sent to {_who(targets)}", "resume failed")

    @on(AgentKeys.Restart)
    def _restart(self, asked: AgentKeys.Restart) -> None:
        self._steer(partial(self.steering.restart, asked.agent), f"{asked.agent} is restarting", "restart failed")

    @on(AgentKeys.StopAgent)
    def _stop_agent(self, asked: AgentKeys.StopAgent) -> None:
        self._steer(partial(self.steering.stop_agent, asked.agent), f"{asked.agent} is stopping", "stop agent failed")

    @on(AgentKeys.StartAgent)
    def _start_agent(self, asked: AgentKeys.StartAgent) -> None:
        self._steer(partial(self.steering.start_agent, asked.agent), f"{asked.agent} is starting",
                    "start agent failed")

    @on(ReviewScreen.Disqualify)
    def _disqualify(self, asked: ReviewScreen.Disqualify) -> None:
        self._steer(partial(self.steering.disqualify, asked.submission_id, asked.reason),
                    f"submission {asked.submission_id} disqualified", "disqualify failed")

    @on(ReviewScreen.ClearFlag)
    def _clear_flag(self, asked: ReviewScreen.ClearFlag) -> None:
        self._steer(partial(self.steering.clear_flag, asked.flag_id, asked.reason), f"flag {asked.flag_id} cleared",
                    "clear flag failed")

    @on(ForumScreen.Post)
    def _post(self, asked: ForumScreen.Post) -> None:
        self._steer(partial(self.steering.post, asked.title, asked.body), "posted to the forum", "post failed",
                    then=self.open_thread)

    @on(ForumScreen.Comment)
    def _comment(self, asked: ForumScreen.Comment) -> None:
        self._steer(partial(self.steering.comment, asked.post_id, asked.body), f"commented on #{asked.post_id}",
                    "comment failed")

    @on(ForumScreen.Vote)
    def _vote(self, asked: ForumScreen.Vote) -> None:
        self._steer(partial(self.steering.vote, asked.post_id, asked.value),
                    f"voted {asked.value:+d} on #{asked.post_id}", "vote failed")

    def action_message_all(self) -> None:
        from lab.tui.screens.dialogs import message_prompt

        def answered(got: dict | None) -> None:
            if got:
                self.post_message(AgentKeys.SendMessage(None, got["text"]))

        self.push_screen(message_prompt(None), answered)

    # ---- the whole lab -----------------------------------------------------------------------------
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
        from lab.tui.screens.dialogs import ConfirmScreen

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
        self.push_screen(ConfirmScreen(question, "Stop the lab"), answered)


def run_tui(cfg: Config, config_path: str | Path = "lab.toml", refresh_s: float = 1.0) -> None:
    LabApp(cfg, config_path, refresh_s=refresh_s).run()
