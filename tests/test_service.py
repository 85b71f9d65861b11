"""The scorer service on loopback, driven through the same client the agents' runners use."""
import json

import pytest

from lab.errors import LabError, NotFound
from lab.sandbox import make_sandbox
from lab.scaffold.repo import open_repo, root_commit
from lab.scorer.scorer import Scorer
from lab.scorer.service import ScorerClient, ScorerService


@pytest.fixture
def client(cfg):
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None)
    service = ScorerService(cfg, lambda db: Scorer(cfg, db, sandbox, progress=False))
    service.start_in_thread()
    yield ScorerClient(service.url)
    service.stop()


def test_submit_and_evaluate_over_http(client, cfg, tmp_path):
    first = root_commit(open_repo(cfg.state_dir / "research.git"))
    told = client.submit("agent-http", first, "methods/vanilla.py")
    assert told["commit"] == first and told["dataset"] == "rotten_tomatoes"
    assert "imdb" not in json.dumps(told) and "tweets" not in json.dumps(told)
    assert set(told["teacher_dependence"]) == {"pgr", "counterfactual_pgr", "difference", "difference_se", "seeds"}
    assert told["flags"] == []
    row = next(r for r in client.leaderboard() if r["submission"] == told["submission"])
    assert row["teacher_dependence"] == told["teacher_dependence"] and row["flags"] == []
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "x", "label": 1}\n')
    with pytest.raises(LabError, match="id 'x' is not a test id"):
        client.evaluate("agent-http", path)
    with pytest.raises(NotFound, match="commit 'nope'"):
        client.submit("agent-http", "nope")
    with pytest.raises(LabError, match="the request lacks 'agent'"):
        client._call("/submit", {"commit": first})


def test_the_leaderboard_shows_agents_dev_flags_and_never_held_out_ones(client, cfg):
    from lab.scorer import integrity
    from lab.store import open_db, submissions

    db = open_db(cfg.state_dir / "lab.db")
    sid = submissions.record_submission(
        db, agent="agent-flags", commit_sha="c" * 40, path="method.py", tree_hash="t", fingerprint="f", seeds=[0],
        sandbox="bwrap", duration_s=1.0,
        scores=[{"dataset": "rotten_tomatoes", "role": "dev", "status": "ok", "pgr": 0.5, "pgr_se": 0.1},
                {"dataset": "imdb", "role": "heldout", "status": "ok", "pgr": -0.4, "pgr_se": 0.1}],
        flags=[integrity.flag("wrote_outside", "the method wrote files beside its predictions: a.txt", integrity.DEV),
               integrity.flag("heldout_gap", "dev PGR 0.50 is 0.90 above the held-out mean", integrity.HELDOUT),
               {"kind": "sandbox_violation", "message": "recorded before flags had a scope", "evidence": {}}])
    db.conn.close()
    row = next(r for r in client.leaderboard() if r["submission"] == sid)
    told = {"kind": "wrote_outside", "message": "the method wrote files beside its predictions: a.txt"}
    assert row["flags"] == [told]
    assert row["teacher_dependence"] is None
    assert "imdb" not in json.dumps(row) and "held-out" not in json.dumps(row) and "-0.4" not in json.dumps(row)
