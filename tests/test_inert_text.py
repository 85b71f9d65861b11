"""Text from agents never drives the person's terminal: the CLI, the TUI and the report show it inert.

A real store and a real research repository hold a forum post, a commit, a transcript, a notebook, a
flagged submission and blocked attempts whose text carries an OSC 52 clipboard write, a screen clear, a
C1 CSI, a carriage return, a bidi override and Rich/Textual markup. The real `lab` commands, the real
TUI (Textual's run_test) and the real `lab report` must print every one of them as visible, inert text.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import git
import pytest

from conftest import run_lab, write_config
from tui_helpers import make_app, run, until

from lab import config
from lab.inert import inert, inert_data, inert_line
from lab.scaffold import repo as research
from lab.store import agents, events, forum, open_db, submissions

OSC52 = "\x1b]52;c;ZXZpbA==\x07"            # writes "evil" to the clipboard
CLEAR = "\x1b[2J\x1b[H"                    # clears the screen, cursor home
C1_CSI = "\x9b2J"                          # the same clear, through the one-character C1 CSI
BIDI = "\u202e"                            # right-to-left override
MARKUP, CLICK = "[bold]x[/bold]", "[@click=app.quit]q[/]"

OSC52_SHOWN = "␛]52;c;ZXZpbA==␇"
CLEAR_SHOWN = "␛[2J␛[H"
C1_SHOWN = "<U+009B>2J"
BIDI_SHOWN = "<U+202E>"

TITLE = f"t1 {OSC52}{CLICK}"
BODY = f"b1 {CLEAR} over\rwrite {C1_CSI} {BIDI}cba {MARKUP}"
COMMENT = f"c1 {OSC52} {MARKUP}"
SUBJECT = f"s1 {OSC52} {CLICK}"
STEP = f"r1 {CLEAR}{MARKUP}"
EVENT = f"e1 {OSC52}{CLICK}"
NOTEBOOK = f"# notes\n\nn1 {OSC52} {CLICK} {BIDI}x"
METHOD = f"m1{CLEAR}.py"
FLAG = f"f1 {C1_CSI} {MARKUP}"
BLOCKED = f"read_file: k1 {OSC52} is a link out of the worktree {CLICK}"
FILE_LINE = f"# d1 {OSC52} {MARKUP}"

# what must never reach a terminal: C0 but newline and tab, DEL, C1, bidi marks/embeddings/overrides/isolates, the
# line and paragraph separators, the byte-order mark
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def assert_inert(text: str) -> None:
    found = UNSAFE.search(text)
    if found:
        around = text[max(0, found.start() - 40):found.end() + 40]
        raise AssertionError(f"{found.group()!r} reached the terminal in {around!r}")


# ---- the function ----------------------------------------------------------------------------------
def test_inert_shows_controls_as_pictures_and_keeps_text():
    assert inert(OSC52) == OSC52_SHOWN
    assert inert(CLEAR) == CLEAR_SHOWN
    assert inert(C1_CSI) == C1_SHOWN
    assert inert("a\rb\bc\x00d\x7fe") == "a␍b␈c␀d␡e"
    assert inert(f"{BIDI}abc\u2066\u2069") == "<U+202E>abc<U+2066><U+2069>"
    assert inert("\x9d0;title\x9c") == "<U+009D>0;title<U+009C>"
    kept = "lines\n\tand tabs, é, 漢字, emoji 🧪, ± ─ ␛ <U+0041> [bold]x[/bold]"
    assert inert(kept) == kept
    assert inert(None) == "" and inert("") == ""
    assert inert("a\u200eb\u200fc\u2028d\u2029e\ufefff") == "a<U+200E>b<U+200F>c<U+2028>d<U+2029>e<U+FEFF>f"
    assert inert_line("x\u2028y\ufeff") == "x<U+2028>y<U+FEFF>"
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                 *range(0x2066, 0x206A), 0xFEFF]:
        if chr(code) not in "\n\t":
            assert inert(chr(code)) and not UNSAFE.search(inert(chr(code))), hex(code)


def test_inert_line_keeps_a_field_on_one_line_and_inert_data_reaches_every_string():
    assert inert_line("a\nb\tc\r\n") == "a␤b c␍␤"
    assert inert_line(None) == ""
    assert inert(inert(BODY)) == inert(BODY)        # idempotent: showing twice changes nothing
    data = {"title\x1b": [OSC52, ("x\r", 3), None, 1.5, {"k": C1_CSI}]}
    assert inert_data(data) == {"title␛": [OSC52_SHOWN, ("x␍", 3), None, 1.5, {"k": C1_SHOWN}]}

    from lab.scaffold.history import Commit

    assert inert_data(Commit("abc", "agent-1", 1.0, SUBJECT)).subject == inert(SUBJECT)


# ---- a lab whose agents wrote hostile text -----------------------------------------------------------
def _hostile_commit(state_dir: Path, work: Path) -> str:
    clone = git.Repo.clone_from(str(research.research_repo_path(state_dir)), work)
    clone.git.checkout("-b", "agent-1")
    (work / "method.py").write_text((work / "method.py").read_text() + FILE_LINE + "\n")
    with clone.git.custom_environment(**research.AUTHOR):
        clone.git.add("-A")
        clone.git.commit("-m", SUBJECT, author="agent-1 <agent-1@lab>")
        clone.git.push("origin", "agent-1")
    return clone.head.commit.hexsha


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    write_config(folder)
    cfg = config.load(folder / "lab.toml")
    db = open_db(cfg.state_dir / "lab.db")
    research.create(cfg.state_dir)
    sha = _hostile_commit(cfg.state_dir, folder / "work")
    for name in ("agent-1", "agent-2", "agent-3"):
        agents.ensure(db, name, "researcher", "a direction", "cpu 0")
    agents.update(db, "agent-2", state="stuck", reason=STEP)
    agents.set_notebook(db, "agent-1", NOTEBOOK)
    post = forum.post(db, "agent-1", "result", TITLE, BODY, commit_sha=sha, metrics={"pgr": 0.5})
    forum.comment(db, post, "agent-2", COMMENT)
    events.record(db, "agent-1", "turn", EVENT, {"text": EVENT})
    events.record(db, "agent-1", "tool_result", f"shell: {CLEAR}", {"output": BODY})
    for _ in range(2):
        events.record(db, "agent-1", "blocked", BLOCKED, {"tool": "read_file"})
    events.record(db, "agent-3", "blocked", f"shell: k3 {CLEAR}", {"tool": "shell"})
    common = dict(tree_hash="t", fingerprint="f", seeds=[0, 1], sandbox="bwrap", duration_s=1.0)
    score = {"dataset": "rotten_tomatoes", "role": "dev", "status": "ok", "acc": 0.7, "pgr": 0.5, "pgr_se": 0.02,
             "weak_acc": 0.66, "ceiling_acc": 0.77, "seeds": [0, 1]}
    flagged = submissions.record_submission(
        db, agent="agent-1", commit_sha=sha, path=METHOD, scores=[score], **common,
        flags=[{"kind": "wrote_outside", "message": FLAG, "evidence": {"files": [f"x{OSC52}"]}}])
    submissions.record_submission(db, agent="agent-1", commit_sha=sha, path="method.py", scores=[], flags=[],
                                  status="rejected", error=f"method stderr: {CLEAR}{OSC52}", **common)
    db.conn.close()
    return folder, cfg, sha, post, flagged


def lab_out(folder: Path, *args: str) -> str:
    result = run_lab(*args, cwd=folder, timeout=120)
    assert result.returncode == 0, result.stderr
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    return result.stdout


# ---- the command line ----------------------------------------------------------------------------
def test_forum_commands_print_posts_inert(hostile):
    folder, _, _, post, _ = hostile
    listed = lab_out(folder, "forum")
    assert f"t1 {OSC52_SHOWN}{CLICK}" in listed
    read = lab_out(folder, "forum", "read", str(post))
    assert f"t1 {OSC52_SHOWN}{CLICK}" in read
    assert f"b1 {CLEAR_SHOWN} over␍write {C1_SHOWN} {BIDI_SHOWN}cba {MARKUP}" in read
    assert f"agent-2: c1 {OSC52_SHOWN} {MARKUP}" in read
    assert f"t1 {OSC52_SHOWN}" in lab_out(folder, "forum", "search", "t1")
    assert "\\u001b]52" in lab_out(folder, "forum", "--json")       # JSON escapes it in its own way


def test_log_show_status_and_score_print_agents_text_inert(hostile):
    folder, _, sha, _, _ = hostile
    log = lab_out(folder, "log")
    assert f"s1 {OSC52_SHOWN} {CLICK}" in log
    assert f"rejected: method stderr: {CLEAR_SHOWN}{OSC52_SHOWN}" in log
    shown = lab_out(folder, "show", sha[:10])
    assert f"s1 {OSC52_SHOWN}" in shown and f"+# d1 {OSC52_SHOWN} {MARKUP}" in shown
    status = lab_out(folder, "status")
    assert f"r1 {CLEAR_SHOWN}{MARKUP}" in status
    board = lab_out(folder, "score")
    assert f"m1{CLEAR_SHOWN}.py" in board
    # columns stay aligned: the pictures are measured, not the raw bytes
    header, rule, row = board.splitlines()[:3]
    assert row.index("m1") == header.index("method")


def test_lab_agent_prints_the_transcript_notebook_and_log_inert(hostile):
    folder, cfg, _, _, _ = hostile
    assert f"now: r1 {CLEAR_SHOWN}{MARKUP}" in lab_out(folder, "agent", "agent-2")
    summary = lab_out(folder, "agent", "agent-1")
    assert f"e1 {OSC52_SHOWN}{CLICK}" in summary
    assert f"turn        e1 {OSC52_SHOWN}{CLICK}" in lab_out(folder, "agent", "agent-1", "--transcript")
    assert f"n1 {OSC52_SHOWN} {CLICK} {BIDI_SHOWN}x" in lab_out(folder, "agent", "agent-1", "--notebook")
    log = cfg.run_dir / "logs" / "agent-3.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"2026-12-07 05:00:00 method printed {OSC52}\n")
    assert f"method printed {OSC52_SHOWN}" in lab_out(folder, "agent", "agent-3", "--log")
    assert "\\u001b]52" in lab_out(folder, "agent", "agent-1", "--transcript", "--json")


def test_the_error_line_is_inert_too(hostile, tmp_path):
    folder = hostile[0]
    out = tmp_path / "out"
    out.mkdir()
    (out / f"x{OSC52}").write_text("not a report")
    result = run_lab("report", "--out", str(out), cwd=folder, timeout=120)
    assert result.returncode == 2
    assert_inert(result.stderr)
    assert f"lab: error: {out} holds files that are not a report (x{OSC52_SHOWN})" in result.stderr


# ---- the TUI -------------------------------------------------------------------------------------
def screen_text(app) -> str:
    """What the terminal would show: the screen's composed lines as plain text (styles and cursor moves aside)."""
    from rich.console import Console

    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system="truecolor")
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)


def test_tui_shows_agents_text_inert_and_markup_literally(hostile):
    from textual.widgets import RichLog

    from lab.tui.screens.agent import AgentScreen
    from lab.tui.screens.forum import ForumScreen
    from lab.tui.screens.review import ReviewScreen

    _, cfg, _, post, flagged = hostile

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(200, 60)) as pilot:
            await until(pilot, lambda: app.screen.query_one("#agents").row_count == 3, what="the agents")
            await until(pilot, lambda: app.screen.query_one("#posts").row_count == 1, what="the post")
            await pilot.pause(0.2)
            dashboard = screen_text(app)
            assert_inert(dashboard)
            assert f"t1 {OSC52_SHOWN}{CLICK}" in dashboard and f"r1 {CLEAR_SHOWN}{MARKUP}" in dashboard

            await pilot.press("f")
            await until(pilot, lambda: isinstance(app.screen, ForumScreen) and app.screen.open_post == post)
            await until(pilot, lambda: "c1 " in screen_text(app), what="the thread")
            thread = screen_text(app)
            assert_inert(thread)
            for shown in (f"t1 {OSC52_SHOWN}{CLICK}", f"{CLEAR_SHOWN} over␍write {C1_SHOWN} {BIDI_SHOWN}cba",
                          MARKUP, f"c1 {OSC52_SHOWN} {MARKUP}"):
                assert shown in thread, shown

            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.shown is not None)
            review = app.screen
            await until(pilot, lambda: review.query_one("#blocked").row_count == 3, what="the blocked attempts")
            await until(pilot, lambda: "+# d1" in screen_text(app), what="the diff")
            shown = screen_text(app)
            assert_inert(shown)
            for text in (f"m1{CLEAR_SHOWN}.py", f"f1 {C1_SHOWN} {MARKUP}", f"x{OSC52_SHOWN}",
                         f"+# d1 {OSC52_SHOWN} {MARKUP}", f"k1 {OSC52_SHOWN} is a link out of the worktree {CLICK}",
                         f"shell: k3 {CLEAR_SHOWN}", "agent-1 2 · agent-3 1"):
                assert text in shown, text
            assert review.items[flagged].path == f"m1{CLEAR_SHOWN}.py"

            app.open_agent("agent-1")
            await until(pilot, lambda: isinstance(app.screen, AgentScreen))
            screen = app.screen
            await until(pilot, lambda: screen.last_event > 0, what="the transcript")
            await pilot.pause(0.2)
            lines = "\n".join(line.text for line in screen.query_one(RichLog).lines)
            assert f"e1 {OSC52_SHOWN}{CLICK}" in lines and f"shell: {CLEAR_SHOWN}" in lines
            assert lines.count(f"k1 {OSC52_SHOWN}") == 2                 # the blocked attempts, in the transcript
            assert_inert(screen_text(app))
            await pilot.press("2")
            await until(pilot, lambda: "n1 " in screen_text(app), what="the notebook")
            notebook = screen_text(app)
            assert_inert(notebook)
            assert f"n1 {OSC52_SHOWN} {CLICK} {BIDI_SHOWN}x" in notebook
            await pilot.press("3")
            await until(pilot, lambda: "+# d1" in screen.diff_text, what="the commit's diff")
            await pilot.pause(0.2)
            commits = screen_text(app)
            assert_inert(commits)
            assert f"s1 {OSC52_SHOWN} {CLICK}" in commits and f"+# d1 {OSC52_SHOWN} {MARKUP}" in commits
            assert app.is_running      # the [@click=app.quit] in every field quit nothing

    run(scenario)


def test_the_review_screen_keeps_counting_blocked_attempts_as_they_come(tmp_path):
    from lab.tui.screens.review import ReviewScreen

    write_config(tmp_path)
    cfg = config.load(tmp_path / "lab.toml")
    db = open_db(cfg.state_dir / "lab.db")
    for name in ("agent-2", "agent-5"):
        agents.ensure(db, name, "researcher", "a direction", "cpu 0")
    events.record(db, "agent-2", "blocked", "write_file: a link to /etc/passwd")

    async def scenario():
        app = make_app(cfg)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            table = app.screen.query_one("#blocked")
            await until(pilot, lambda: table.row_count == 1)
            latest = events.record(db, "agent-5", "blocked", "shell: /proc/1/root outside the worktree")
            events.record(db, "agent-2", "note", "not a blocked attempt")
            await until(pilot, lambda: table.row_count == 2, what="the new attempt")
            assert [k.value for k in table.rows] == [str(latest), str(latest - 1)]      # newest first
            assert str(table.get_row(str(latest))[1]) == "agent-5"
            assert "agent-2 1 · agent-5 1" in screen_text(app)
            table.focus()
            await pilot.press("up")                                    # the cursor stayed on its row: go to the newest
            await pilot.press("enter")                                 # opens the agent it is against
            await until(pilot, lambda: getattr(app.screen, "agent_name", None) == "agent-5")

    run(scenario)
    db.conn.close()


# ---- the report ----------------------------------------------------------------------------------
def test_report_is_inert_and_lists_blocked_attempts_per_agent(hostile, tmp_path):
    folder = hostile[0]
    out = tmp_path / "report"
    printed = lab_out(folder, "report", "--out", str(out))
    assert "wrote" in printed
    text = (out / "report.md").read_text(encoding="utf-8")
    assert_inert(text)
    assert f"m1{CLEAR_SHOWN}.py" in text and f"f1 {C1_SHOWN} {MARKUP}" in text
    assert f"t1 {OSC52_SHOWN}{CLICK}" in text and f"+# d1 {OSC52_SHOWN} {MARKUP}" in text
    section = text[text.index("## Blocked attempts"):]
    section = section[:section.find("\n## ", 1)]
    assert "3 tool calls by 2 agents" in section
    rows = [line for line in section.splitlines() if line.startswith("| agent-")]
    assert [r.split("|")[1:3] for r in rows] == [[" agent-1 ", " 2 "], [" agent-3 ", " 1 "]]
    assert section.count(f"`read_file: k1 {OSC52_SHOWN} is a link out of the worktree {CLICK}`") == 2
    assert f"`shell: k3 {CLEAR_SHOWN}`" in section


def test_a_lab_without_blocked_attempts_says_so(tmp_path):
    from lab.report import write_report

    cfg = config.load(write_config(tmp_path))
    db = open_db(cfg.state_dir / "lab.db")
    text = write_report(cfg, db, tmp_path / "report").read_text()
    assert "No agent tried to reach outside its sandbox." in text
    db.conn.close()
