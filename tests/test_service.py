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
    assert told["submission"] in [row["submission"] for row in client.leaderboard()]
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "x", "label": 1}\n')
    with pytest.raises(LabError, match="id 'x' is not a test id"):
        client.evaluate("agent-http", path)
    with pytest.raises(NotFound, match="commit 'nope'"):
        client.submit("agent-http", "nope")
    with pytest.raises(LabError, match="the request lacks 'agent'"):
        client._call("/submit", {"commit": first})
