"""The TUI on a real SQLite file seeded through the store: every screen, binding and steering action."""
from __future__ import annotations


import git
import pytest

from tui_helpers import NOW, as_text, make_app, run, seeded_lab, until

from lab.store import actions, agents, commands, events, forum, open_db, submissions


@pytest.fixture
def lab(tmp_path):
    cfg = seeded_lab(tmp_path)
    db = open_db(cfg.state_dir / "lab.db")
    yield cfg, db
    db.conn.close()


def cells(table, key: str) -> list[str]:
    return [str(c) for c in table.get_row(key)]


def keys(table) -> list[str]:
    return [k.value for k in table.rows]


def test_dashboard_shows_agents_leaderboard_chart_posts_and_load(lab):
    from lab.tui.widgets.agents_table import AgentsTable
    from lab.tui.widgets.leaderboard import Leaderboard
    from lab.tui.widgets.load_line import LoadLine
    from lab.tui.widgets.pgr_chart import PgrChart
    from lab.tui.widgets.posts import PostsTable

    cfg, db = lab

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.screen.query_one(AgentsTable)
            await until(pilot, lambda: table.row_count == 3, what="three agents")
            best = control_best(db)
            for name in agents.names(db):
                row = cells(table, name)
                state = agents.get(db, name)["state"]
                # the lab is not running: live states read as stopped, the others as they are
                assert row[0] == name and row[1] == ("stopped" if state in agents.LIVE else state)
                assert row[2] == (f"{best[name]:+.3f}" if name in best else "-")
            board = app.screen.query_one(Leaderboard)
            expected = [str(s.id) for s in submissions.leaderboard(db, limit=30) if s.agent != "baseline"]
            assert keys(board) == expected
            top = submissions.get(db, int(expected[0]))
            private, public = (top.scored(role) for role in ("private", "dev"))
            assert cells(board, expected[0])[2:4] == [f"{x.pgr:+.3f}±{x.pgr_se:.3f}" for x in (private, public)]
            posts = app.screen.query_one(PostsTable)
            assert keys(posts) == [str(p["id"]) for p in forum.recent(db, 12)]
            assert "GPU0  87%" in str(app.screen.query_one(LoadLine).render())
            assert app.screen.query_one(PgrChart)._shown is not None
            assert "not running" in app.sub_title and "best private PGR" in app.sub_title

    run(scenario)


def control_best(db) -> dict[str, float]:
    from lab.agents.control import best_by_agent

    return best_by_agent(db)


def test_dashboard_updates_live_in_place_and_keeps_the_cursor(lab):
    from lab.tui.widgets.agents_table import AgentsTable
    from lab.tui.widgets.posts import PostsTable

    cfg, db = lab

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.screen.query_one(AgentsTable)
            await until(pilot, lambda: table.row_count == 3)
            await pilot.press("down", "down")
            assert table.selected_key == "agent-3"
            agents.update(db, "agent-2", step="reading the forum for layer results", experiments=4242)
            post_id = forum.post(db, "agent-1", "insight", "a live post appears on the dashboard")
            await until(pilot, lambda: cells(table, "agent-2")[3] == "4242", what="the new experiment count")
            posts = app.screen.query_one(PostsTable)
            await until(pilot, lambda: keys(posts)[0] == str(post_id), what="the new post")
            assert table.selected_key == "agent-3"      # refreshes never move the person's place

    run(scenario)


def test_agent_screen_transcript_notebook_commits_and_submissions(lab):
    from textual.widgets import Markdown, RichLog

    from lab.scaffold.repo import create
    from lab.tui.screens.agent import AgentScreen

    cfg, db = lab
    repo, _ = create(cfg.state_dir)
    work = cfg.root / "work"
    clone = git.Repo.clone_from(str(cfg.state_dir / "research.git"), work)
    (work / "method.py").write_text((work / "method.py").read_text() + "\n# a distinctive change by agent-1\n")
    clone.git.checkout("-b", "agent-1")
    clone.git.add("-A")
    clone.git.commit("-m", "try a distinctive change", author="agent-1 <agent-1@lab>")
    clone.git.push("origin", "agent-1")

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("enter")            # the first agent row
            await until(pilot, lambda: isinstance(app.screen, AgentScreen))
            screen = app.screen
            assert screen.agent_name == "agent-1"
            log = screen.query_one(RichLog)
            last = events.transcript(db, "agent-1", limit=1)[0]
            await until(pilot, lambda: screen.last_event == last["id"], what="the whole transcript")
            assert any(last["summary"][:40] in line.text for line in log.lines)
            new = events.record(db, "agent-1", "message", "from the person: a live line")
            await until(pilot, lambda: screen.last_event == new, what="the live event")
            assert "from the person: a live line" in log.lines[-1].text
            await pilot.press("2")
            notebook = agents.notebook(db, "agent-1")
            await until(pilot, lambda: screen.shown_notebook == notebook)
            assert screen.query_one(Markdown).source.strip().startswith(notebook.strip()[:20])
            await pilot.press("3")
            commits = screen.query_one("#commit-list")
            await until(pilot, lambda: commits.row_count == 1, what="the agent's commit")
            await until(pilot, lambda: "+# a distinctive change by agent-1" in screen.diff_text, what="its diff")
            await pilot.press("4")
            subs = screen.query_one("#subs")
            mine = submissions.of_agent(db, "agent-1")
            await until(pilot, lambda: keys(subs) == [str(s.id) for s in mine])
            await pilot.press("escape")
            assert not isinstance(app.screen, AgentScreen)

    run(scenario)


def test_steering_keys_reach_the_database_and_are_recorded(lab):
    from lab.tui.screens.dialogs import ConfirmScreen, PromptScreen
    from lab.tui.widgets.agents_table import AgentsTable

    cfg, db = lab

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.screen.query_one(AgentsTable).row_count == 3)
            await pilot.press("down", "m")       # agent-2
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*"look at held-out", "enter")
            await until(pilot, lambda: commands.history(db, "agent-2", limit=1), what="the message")
            assert commands.history(db, "agent-2")[0]["body"] == "look at held-out"
            await pilot.press("p")
            await until(pilot, lambda: commands.history(db, "agent-2", limit=1)[0]["kind"] == "pause")
            await pilot.press("r")
            await until(pilot, lambda: commands.history(db, "agent-2", limit=1)[0]["kind"] == "resume")
            await pilot.press("M")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*"everyone: post negatives", "enter")
            await until(pilot, lambda: len([c for c in commands.history(db, limit=50)
                                            if c["body"] == "everyone: post negatives"]) == cfg.agents.count)
            # losing work needs a yes; "n" sends nothing
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            await pilot.pause(0.3)
            assert not commands.history(db, commands.SUPERVISOR)
            # with a yes, a stopped lab says why it cannot, and nothing is sent
            await pilot.press("R")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: any("agent-2 cannot be restarted" in n.message for n in app._notifications))
            assert not commands.history(db, commands.SUPERVISOR)
            mine = [a for a in actions.history(db, 1000) if a["created"] > NOW]   # after the seeded history
            assert [a["kind"] for a in mine] == ["message", "resume", "pause", "message"]
            assert mine[-1]["target"] == "agent-2" and mine[-1]["detail"] == {"text": "look at held-out"}

    run(scenario)


def test_forum_search_post_comment_and_vote(lab):
    from textual.widgets import Markdown

    from lab.tui.screens.dialogs import PostScreen, PromptScreen
    from lab.tui.screens.forum import ForumScreen
    from lab.tui.widgets.posts import PostsTable

    cfg, db = lab

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("f")
            await until(pilot, lambda: isinstance(app.screen, ForumScreen))
            screen = app.screen
            threads = screen.query_one(PostsTable)
            await until(pilot, lambda: keys(threads) == [str(p["id"]) for p in forum.recent(db, 200)])
            await pilot.press("slash", *"logconf", "enter")
            found = [str(p["id"]) for p in forum.search(db, "logconf", 200)]
            assert found
            await until(pilot, lambda: keys(threads) == found, what="the search results")
            # the thread beside the list is the selected one (it stays selected where the results hold it)
            await until(pilot, lambda: screen.open_post == int(threads.selected_key))
            chosen = forum.read(db, screen.open_post)
            await until(pilot, lambda: chosen["title"] in screen.query_one("#thread", Markdown).source)
            await pilot.press("escape")
            await until(pilot, lambda: keys(threads)[:3] == [str(p["id"]) for p in forum.recent(db, 3)])
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, PostScreen))
            await pilot.press(*"Person: read the held-out gap", "enter", *"before you submit", "ctrl+s")
            await until(pilot, lambda: forum.recent(db, 1, author="person"), what="the person's post")
            mine = forum.recent(db, 1, author="person")[0]
            assert mine["title"] == "Person: read the held-out gap" and mine["body"] == "before you submit"
            await until(pilot, lambda: keys(threads)[0] == str(mine["id"]))
            await until(pilot, lambda: screen.open_post == mine["id"] and threads.selected_key == str(mine["id"]),
                        what="the new post opened")
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*"agreed", "enter")
            await until(pilot, lambda: forum.read(db, mine["id"])["comments"] == 1)
            await pilot.press("plus")
            await until(pilot, lambda: forum.read(db, mine["id"])["score"] == 1)
            await pilot.press("minus")
            await until(pilot, lambda: forum.read(db, mine["id"])["score"] == -1)

    run(scenario)


def test_review_shows_evidence_and_diff_then_disqualifies_and_clears(lab):
    from lab.tui.screens.dialogs import PromptScreen
    from lab.tui.screens.review import ReviewScreen, detail

    cfg, db = lab
    flagged = [s for s in submissions.flagged(db) if s.open_flags and not s.disqualified]
    assert len(flagged) >= 2, "the seeded history should hold open flags"

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            screen = app.screen
            table = screen.query_one("#flagged")
            await until(pilot, lambda: keys(table) == [str(s.id) for s in submissions.flagged(db)])
            first = flagged[0]
            screen.select(first.id)
            flag = first.open_flags[0]

            def shown() -> str:
                return as_text(detail(screen.shown)) if screen.shown else ""

            await until(pilot, lambda: flag.message[:50] in shown(), what="the flag's evidence")
            key = next(iter(flag.evidence))
            assert f"{key}:" in shown()
            await pilot.press("D")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*"reads the dev labels", "enter")
            await until(pilot, lambda: submissions.get(db, first.id).disqualified, what="disqualified")
            assert submissions.get(db, first.id).disqualified_reason == "reads the dev labels"
            assert first.id not in [s.id for s in submissions.leaderboard(db)]
            second = flagged[1]
            screen.select(second.id)
            await until(pilot, lambda: screen.items.get(second.id) is not None)
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*"checked the code: fine", "enter")
            cleared = second.open_flags[0].id
            await until(pilot, lambda: not next(f for f in submissions.get(db, second.id).flags if f.id == cleared).open,
                        what="the flag cleared")
            recorded = [a for a in actions.history(db, 1000) if a["created"] > NOW]   # after the seeded history
            assert [a["kind"] for a in recorded] == ["clear_flag", "disqualify"]
            assert recorded[0]["detail"] == {"reason": "checked the code: fine"}

    run(scenario)


def test_help_lists_every_binding_and_palette_opens_an_agent(lab):
    from lab.tui.app import LabApp
    from lab.tui.screens.agent import AgentScreen
    from lab.tui.screens.agent_keys import AGENT_BINDINGS
    from lab.tui.screens.forum import ForumScreen
    from lab.tui.screens.help import HelpScreen, bindings_table
    from lab.tui.screens.review import ReviewScreen

    cfg, _ = lab

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = as_text(bindings_table(app.screen.sections))
            for binding in [*LabApp.BINDINGS, *AGENT_BINDINGS, *ForumScreen.BINDINGS, *ReviewScreen.BINDINGS]:
                if binding.description:
                    assert binding.description in text, binding.description
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            await pilot.press(*"open agent-3")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, AgentScreen) and app.screen.agent_name == "agent-3")

    run(scenario)


def test_quitting_the_tui_changes_nothing_in_the_lab(lab):
    cfg, db = lab
    before = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("agents", "events", "posts", "commands", "actions", "submissions")}

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(80, 24)) as pilot:
            for key in ("f", "v", "d", "enter", "escape"):
                await pilot.press(key)
                await pilot.pause(0.3)
            await pilot.press("q")

    run(scenario)
    after = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
    assert after == before
