"""The TUI's actions as typed messages: each message a screen posts reaches the store through the app's Steering,
on a real SQLite file seeded through the store, and the app handles every message any screen defines."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from tui_helpers import NOW, make_app, run, seeded_lab, until

from lab.store import actions, commands, forum, open_db, submissions


@pytest.fixture
def lab(tmp_path):
    cfg = seeded_lab(tmp_path)
    db = open_db(cfg.state_dir / "lab.db")
    yield cfg, db
    db.conn.close()


def test_the_app_handles_every_message_a_screen_defines():
    from textual.message import Message
    from textual.screen import Screen

    import lab.tui.screens
    from lab.tui.app import LabApp

    defined = set()
    for module in pkgutil.iter_modules(lab.tui.screens.__path__):
        for screen in vars(importlib.import_module(f"lab.tui.screens.{module.name}")).values():
            if inspect.isclass(screen) and issubclass(screen, Screen):
                defined |= {m for m in vars(screen).values() if inspect.isclass(m) and issubclass(m, Message)}
    handled = set(LabApp._decorated_handlers)     # what `@on` registered
    assert defined
    assert defined <= handled, sorted(m.__qualname__ for m in defined - handled)


def test_each_message_steers_the_lab_and_says_so(lab):
    from lab.tui.screens.agent import AgentScreen
    from lab.tui.screens.agent_keys import AgentKeys
    from lab.tui.screens.forum import ForumScreen
    from lab.tui.screens.live import LiveScreen
    from lab.tui.screens.review import ReviewScreen
    from lab.tui.widgets.agents_table import AgentsTable

    cfg, db = lab
    flagged = [s for s in submissions.flagged(db) if s.open_flags and not s.disqualified]
    to_disqualify, to_clear = flagged[0].id, flagged[1].open_flags[0].id
    post_id = forum.recent(db, 1)[0]["id"]

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.screen.query_one(AgentsTable).row_count == 3)

            def said(text: str, title: str = "") -> bool:
                return any(text in n.message and n.title == title for n in app._notifications)

            async def ask(message, done, title: str = "") -> None:
                app.screen.post_message(message)     # as a screen does; it bubbles up to the app
                await until(pilot, lambda: said(done, title), what=f"{done!r} after {type(message).__qualname__}")

            await ask(AgentKeys.SendMessage("agent-2", "look at held-out"),
                      "message waiting for agent-2; read at the next step")
            await ask(AgentKeys.Pause("agent-2"), "pause sent to agent-2")
            await ask(AgentKeys.Resume(None), "resume sent to every agent")
            assert [c["kind"] for c in commands.history(db, "agent-2", limit=3)] == ["resume", "pause", "message"]
            assert len([c for c in commands.history(db, limit=50) if c["kind"] == "resume"]) == cfg.agents.count
            # the lab is not running: the supervisor's actions say why they cannot be done, and send nothing
            await ask(AgentKeys.Restart("agent-1"), "agent-1 cannot be restarted", "restart failed")
            await ask(AgentKeys.StopAgent("agent-1"), "agent-1 cannot be stopped", "stop agent failed")
            await ask(AgentKeys.StartAgent("agent-1"), "agent-1 cannot be started", "start agent failed")
            assert not commands.history(db, commands.SUPERVISOR)

            await ask(ReviewScreen.Disqualify(to_disqualify, "reads the dev labels"),
                      f"submission {to_disqualify} disqualified")
            assert submissions.get(db, to_disqualify).disqualified_reason == "reads the dev labels"
            await ask(ReviewScreen.ClearFlag(to_clear, "checked the code: fine"), f"flag {to_clear} cleared")
            await ask(ReviewScreen.Disqualify(to_disqualify, "  "), "a disqualification needs a reason",
                      "disqualify failed")

            await ask(ForumScreen.Vote(post_id, -1), f"voted -1 on #{post_id}")
            assert {"voter": "person", "value": -1}.items() <= forum.read(db, post_id)["votes"][-1].items()
            await ask(ForumScreen.Comment(post_id, "agreed"), f"commented on #{post_id}")
            assert forum.read(db, post_id)["comment_list"][-1]["body"] == "agreed"
            await ask(ForumScreen.Post("Person: read the held-out gap", "before you submit"), "posted to the forum")
            mine = forum.recent(db, 1, author="person")[0]
            assert (mine["title"], mine["body"]) == ("Person: read the held-out gap", "before you submit")
            await until(pilot, lambda: isinstance(app.screen, ForumScreen) and app.screen.open_post == mine["id"],
                        what="the new post opened")

            recorded = [(a["kind"], a["target"], a["via"]) for a in actions.history(db, 1000) if a["created"] > NOW]
            assert recorded[::-1] == [
                ("message", "agent-2", "tui"), ("pause", "agent-2", "tui"),
                ("resume", ",".join(cfg.agents.names), "tui"), ("disqualify", str(to_disqualify), "tui"),
                ("clear_flag", str(to_clear), "tui"), ("vote", str(post_id), "tui"),
                ("comment", str(post_id), "tui"), ("post", str(mine["id"]), "tui")]

            app.screen.post_message(LiveScreen.OpenReview(to_disqualify))
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.selected == to_disqualify)
            app.screen.post_message(LiveScreen.OpenThread(post_id))
            await until(pilot, lambda: isinstance(app.screen, ForumScreen) and app.screen.open_post == post_id)
            app.screen.post_message(LiveScreen.OpenAgent("agent-3"))
            await until(pilot, lambda: isinstance(app.screen, AgentScreen) and app.screen.agent_name == "agent-3"
                        and app.screen.last_event > 0, what="agent-3's transcript")

    run(scenario)


def test_a_screen_opened_for_the_first_time_shows_the_row_asked_for(lab):
    """Enter on a leaderboard row or a post of the dashboard opens the review or the forum on that row, not on the
    first one, though the screen's table has no rows yet when it is asked."""
    from lab.tui.screens.forum import ForumScreen
    from lab.tui.screens.live import LiveScreen
    from lab.tui.screens.review import ReviewScreen
    from lab.tui.widgets.agents_table import AgentsTable

    cfg, db = lab
    wanted = [s.id for s in submissions.flagged(db)][-1]
    post_id = forum.recent(db, 50)[-1]["id"]
    assert wanted != submissions.flagged(db)[0].id and post_id != forum.recent(db, 50)[0]["id"]

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.screen.query_one(AgentsTable).row_count == 3)
            app.screen.post_message(LiveScreen.OpenReview(wanted))
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.shown is not None
                        and app.screen.shown.submission.id == wanted, what="the review on the asked-for row")
            await pilot.pause(1.5)       # and still there after the next polls
            assert app.screen.selected == wanted and app.screen.shown.submission.id == wanted
            app.screen.post_message(LiveScreen.OpenThread(post_id))
            await until(pilot, lambda: isinstance(app.screen, ForumScreen) and app.screen.open_post == post_id
                        and app.screen.query_one("#threads").selected_key == str(post_id), what="the thread asked for")
            await pilot.pause(1.5)
            assert app.screen.open_post == post_id

    run(scenario)


def test_the_palette_pauses_every_agent(lab):
    from textual.command import CommandPalette

    from lab.tui.widgets.agents_table import AgentsTable

    cfg, db = lab

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(100, 40)) as pilot:
            await until(pilot, lambda: app.screen.query_one(AgentsTable).row_count == 3)
            await pilot.press("ctrl+p")
            await until(pilot, lambda: isinstance(app.screen, CommandPalette))
            await pilot.press(*"pause every agent")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await until(pilot, lambda: any(n.message == "pause sent to every agent" for n in app._notifications))
            paused = [c["target"] for c in commands.history(db, limit=50) if c["kind"] == "pause" and c["created"] > NOW]
            assert sorted(paused) == sorted(cfg.agents.names)

    run(scenario)
