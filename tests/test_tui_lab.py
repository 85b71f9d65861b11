"""The TUI steering a short real lab run: researcher agents, supervisor, bwrap, git and SQLite, all real."""
from __future__ import annotations

from conftest import make_lab, requires_bwrap
from tui_helpers import run, until

from lab import config
from lab.agents import control
from lab.store import actions, agents, open_db


@requires_bwrap
def test_start_watch_steer_and_stop_a_real_lab_from_the_keyboard(lab_dir, tmp_path):
    from lab.tui.app import LabApp
    from lab.tui.screens.agent import AgentScreen
    from lab.tui.screens.dialogs import ConfirmScreen
    from lab.tui.widgets.agents_table import AgentsTable

    folder = make_lab(lab_dir, tmp_path, [], count=3)
    toml = folder / "lab.toml"
    toml.write_text(toml.read_text().replace('backend = "scripted"', 'backend = "researcher"'))
    cfg = config.load(toml)
    db = open_db(cfg.state_dir / "lab.db")

    def state(name: str) -> str:
        return agents.get(db, name)["state"]

    async def scenario():
        app = LabApp(cfg, toml, refresh_s=0.5)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.screen.query_one(AgentsTable)
            await pilot.press("S")
            await until(pilot, lambda: control.running(cfg) is not None, timeout=120, what="the supervisor")
            await until(pilot, lambda: [str(table.get_row(n)[1]) for n in ("agent-1", "agent-2", "agent-3")]
                        == ["running"] * 3, timeout=60, what="three agents running on the dashboard")
            # stop agent-2 (asks first), then start it again
            await pilot.press("down", "x")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: state("agent-2") == "stopped", timeout=60, what="agent-2 stopped")
            await until(pilot, lambda: str(table.get_row("agent-2")[1]) == "stopped")
            await pilot.press("s")
            await until(pilot, lambda: state("agent-2") == "running", timeout=60, what="agent-2 running again")
            # restart agent-1: a new process
            pid = agents.get(db, "agent-1")["pid"]
            await pilot.press("up", "R")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: agents.get(db, "agent-1")["pid"] not in (None, pid)
                        and state("agent-1") == "running", timeout=60, what="agent-1 restarted")
            # its transcript is live
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, AgentScreen))
            await until(pilot, lambda: app.screen.last_event > 0, timeout=30, what="transcript lines")
            await pilot.press("escape", "X")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: control.running(cfg) is None and not control.lab_processes(cfg),
                        timeout=90, what="the lab stopped with no process left")
            await until(pilot, lambda: "not running" in app.sub_title)

    try:
        run(scenario)
        kinds = [a["kind"] for a in reversed(actions.history(db))]
        assert kinds == ["start_lab", "stop_agent", "start_agent", "restart_agent", "stop_lab"]
    finally:
        control.stop_lab(cfg, db)
