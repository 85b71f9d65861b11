"""The spend rate beside the budget: dollars an hour per agent and for the lab, read from the real SQLite ledger."""
from __future__ import annotations

import pytest

from conftest import write_config
from lab import config
from lab.agents import control, spend
from lab.store import agents, open_db

NOW = 1_800_000_000.0


@pytest.fixture
def ledger(tmp_path):
    cfg = config.load(write_config(tmp_path))
    db = open_db(cfg.state_dir / "lab.db")
    yield cfg, db
    db.conn.close()


def call(db, agent: str, dollars: float, ago_s: float, model: str = "claude-sonnet-5-5") -> None:
    agents.record_model_call(db, agent, model=model, input_tokens=1000, output_tokens=100, cache_write_tokens=0,
                             cache_read_tokens=10_000, dollars=dollars, duration_s=1.0)
    db.execute("UPDATE model_calls SET created = ? WHERE id = (SELECT max(id) FROM model_calls)", [NOW - ago_s])


def test_an_agents_rate_is_its_last_hour_of_calls_and_a_fresh_start_is_measured_over_five_minutes(ledger):
    cfg, db = ledger
    for name in ("agent-1", "agent-2", "agent-3"):
        agents.ensure(db, name, "claude", "a direction", "cpu 0", model="claude-sonnet-5-5", effort="high")
    call(db, "agent-1", 1.00, ago_s=7200)      # before the last hour: not in its rate
    call(db, "agent-1", 0.50, ago_s=1800)
    call(db, "agent-1", 0.25, ago_s=60)
    call(db, "agent-2", 0.10, ago_s=30)        # started a minute ago: measured over five minutes, not one
    call(db, "agent-3", 2.00, ago_s=600)       # stopped: it spends nothing now
    rows = [{"name": "agent-1", "state": "running", "started": NOW - 5 * 3600},
            {"name": "agent-2", "state": "running", "started": NOW - 60},
            {"name": "agent-3", "state": "stopped", "started": NOW - 3600}]
    rates = spend.hourly(db, rows, NOW)
    assert rates == pytest.approx({"agent-1": 0.75, "agent-2": 0.10 * 12})
    assert spend.left(20.0, 3.5) == 16.5 and spend.left(20.0, 25.0) == 0.0 and spend.left(0, 3.5) is None


def test_status_shows_each_agents_model_and_what_is_left_of_the_budgets(ledger):
    cfg, db = ledger
    agents.ensure(db, "agent-1", "claude", "a direction", "cpu 0", model="claude-opus-5-5", effort="medium")
    agents.ensure(db, "agent-2", "researcher", "a direction", "cpu 0")
    call(db, "agent-1", 4.25, ago_s=60, model="claude-opus-5-5")
    report = control.status(cfg, db, now=NOW)
    first, second = report["agents"]
    assert (first["model"], first["effort"], first["dollars_left"]) == ("claude-opus-5-5", "medium", 15.75)
    assert (second["model"], second["effort"], second["dollars_per_hour"]) == (None, None, 0.0)
    assert first["dollars_per_hour"] == 0.0      # the lab is not running: nothing is spent now
    lab = report["lab"]
    assert (lab["dollars"], lab["dollars_left"], lab["dollars_budget"], lab["dollars_per_hour"]) == (
        4.25, 145.75, 150.0, 0.0)
