"""The scorer service on loopback, driven through the same client the agents' runners use: submissions
queued in SQLite and scored in order, a scorer killed mid-submission and started again, and a client
facing a scorer that is down, silent or talking nonsense."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import have_bwrap, make_lab, wait_for
from lab import config
from lab.errors import BudgetExceeded, LabError, NotFound
from lab.sandbox import make_sandbox
from lab.sandbox.workspace import Workspace
from lab.scaffold.repo import open_repo, research_repo_path, root_commit
from lab.scorer.scorer import Scorer
from lab.scorer import engines, told
from lab.scorer.auth import KeyCredentials
from lab.scorer.client import ScorerClient, ScorerUnavailable
from lab.scorer.service import ANNOUNCE_AFTER_S, MAX_INTERRUPTIONS, ScorerService
from lab.store import commands, open_db, submissions

SLOW_METHOD = """\
import argparse, json, time
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
time.sleep({sleep})
rows = [json.loads(line) for line in open(f"{{a.data}}/test.jsonl")]
with open(a.out, "w") as out:
    for i, r in enumerate(rows):
        out.write(json.dumps({{"id": r["id"], "label": int(i < len(rows) // 2)}}) + "\\n")
"""

BURNER = SLOW_METHOD.format(sleep=0).replace("a = p.parse_args()\n", """a = p.parse_args()
start = time.process_time()
while time.process_time() - start < 6:
    pass
""")

SERVE = """\
import sys
from lab import config
from lab.sandbox import make_sandbox
from lab.scorer.scorer import Scorer
from lab.scorer.service import ScorerService
cfg = config.load(sys.argv[1])
sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None)
service = ScorerService(cfg, lambda db: Scorer(cfg, db, sandbox, progress=False))
print(service.url, flush=True)
service.serve_forever()
"""


def start_service(cfg) -> ScorerService:
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None)
    service = ScorerService(cfg, lambda db: Scorer(cfg, db, sandbox, progress=False))
    service.start_in_thread()
    return service


@pytest.fixture
def client(cfg):
    service = start_service(cfg)
    yield ScorerClient(service.url, KeyCredentials(service.key))
    service.stop()


@pytest.fixture(scope="module")
def own_lab(lab_dir, tmp_path_factory):
    """A lab of its own (its database and research repository), with commits of a slow and a quick method."""
    folder = make_lab(lab_dir, tmp_path_factory.mktemp("queue"), [], count=1)
    cfg = config.load(folder / "lab.toml")
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None)
    workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), "agent-1", sandbox)
    env = {"GIT_AUTHOR_NAME": "agent-1", "GIT_COMMITTER_NAME": "agent-1", "GIT_AUTHOR_EMAIL": "agent-1@lab",
           "GIT_COMMITTER_EMAIL": "agent-1@lab"}
    workspace.write("slow.py", SLOW_METHOD.format(sleep=3))
    workspace.write("quick.py", SLOW_METHOD.format(sleep=0))
    workspace.write("burner.py", BURNER)
    commit = workspace.commit("a slow method, a quick one and one that burns CPU", env=env)
    return folder, cfg, commit


# ---- what the agents are told ---------------------------------------------------------------------
def test_submit_and_evaluate_over_http(client, cfg, tmp_path):
    first = root_commit(open_repo(cfg.state_dir / "research.git"))
    told_now = client.submit("agent-http", first, "methods/vanilla.py")
    assert told_now["commit"] == first and told_now["dataset"] == "rotten_tomatoes"
    for unseen in ("imdb", "tweets", "private"):
        assert unseen not in json.dumps(told_now)
    db = open_db(cfg.state_dir / "lab.db")
    recorded = submissions.get(db, told_now["submission"])
    assert told_now["flags"] == told.flags(recorded.open_flags)      # kinds alone of those on unseen data
    row = next(r for r in client.leaderboard() if r["submission"] == told_now["submission"])
    assert (row["pgr"], row["pgr_se"], row["flags"]) == (told_now["pgr"], told_now["pgr_se"], recorded.open_flag_kinds)
    scorer = Scorer(cfg, db, make_sandbox(cfg.lab.sandbox, warn=lambda line: None), progress=False)
    # what recovery tells is the same, and reading it again tells nothing new: the noise is fixed per submission
    assert told.result(submissions.get(db, told_now["submission"]), scorer.coarse) == told_now
    db.conn.close()
    with pytest.raises(LabError, match="id 'x' is not a test id"):
        client.evaluate("agent-http", b'{"id": "x", "label": 1}\n')
    with pytest.raises(LabError, match="'part' is 'c'"):
        client._call("/evaluate", {"agent": "agent-http", "predictions_b64": "", "part": "c"})
    for bad in ("/etc/passwd", "../method.py", "methods/../../x.py", "./method.py", "a//b.py"):
        with pytest.raises(LabError, match="must be a plain relative path inside the commit"):
            client.enqueue("agent-http", first, bad)
    with pytest.raises(NotFound, match="commit 'nope'"):
        client.submit("agent-http", "nope")
    with pytest.raises(LabError, match="the request lacks 'agent'"):
        client._call("/submit", {"commit": first})
    with pytest.raises(NotFound, match="no queued submission with request id 99999"):
        client.request("agent-http", 99999)


def test_agents_are_told_dev_flags_whole_and_of_every_other_flag_its_kind_alone(client, cfg):
    from lab.scorer import integrity

    db = open_db(cfg.state_dir / "lab.db")
    dev = {"dataset": "rotten_tomatoes", "role": "dev", "status": "ok", "pgr": 0.5, "pgr_se": 0.1, "acc": 0.7,
           "weak_acc": 0.66, "ceiling_acc": 0.74, "seeds": [0], "per_seed_acc": [0.7]}
    sid = submissions.record_submission(
        db, agent="agent-flags", commit_sha="c" * 40, path="method.py", tree_hash="t", fingerprint="f", seeds=[0],
        sandbox="bwrap", duration_s=1.0,
        scores=[dev, {**dev, "dataset": "rotten_tomatoes_private", "role": "private", "pgr": 0.123456},
                {**dev, "dataset": "imdb", "role": "heldout", "pgr": -0.4}],
        flags=[integrity.flag("wrote_outside", "the method wrote files beside its predictions: a.txt", integrity.DEV),
               integrity.flag("heldout_gap", "dev PGR 0.50 is 0.90 above the held-out mean", integrity.HELDOUT),
               integrity.flag("overfit_public", "public 0.50, private 0.12", integrity.PRIVATE),
               {"kind": "sandbox_violation", "message": "recorded before flags had a scope", "evidence": {}}])
    db.conn.close()
    row = next(r for r in client.leaderboard() if r["submission"] == sid)
    assert row["flags"] == ["wrote_outside", "heldout_gap", "overfit_public", "sandbox_violation"]
    said = told.flags(submissions.get(open_db(cfg.state_dir / "lab.db"), sid).flags)
    assert said[0] == {"kind": "wrote_outside", "message": "the method wrote files beside its predictions: a.txt"}
    assert [f["message"] for f in said[1:]] == [told.UNSEEN["heldout_gap"], told.UNSEEN["overfit_public"],
                                               told.UNSEEN["sandbox_violation"]]
    shown = json.dumps(row) + json.dumps(said)
    for hidden in ("imdb", "-0.4", "0.123", "0.90", "recorded before"):
        assert hidden not in shown


# ---- who may call ---------------------------------------------------------------------------------
def raw_call(url: str, route: str, body: dict | None, headers: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + route, data=data, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_only_an_agents_own_token_acts_as_that_agent(client, cfg):
    from lab.errors import Forbidden, Unauthorized
    from lab.scorer import auth

    key = client.credentials.key
    assert (auth.key_path(cfg.state_dir).stat().st_mode & 0o777) == 0o600
    mine = ScorerClient(client.url, auth.AgentCredentials("agent-1", auth.token_for(key, "agent-1")), timeout=5)
    assert mine.requests("agent-1") == [] and isinstance(mine.leaderboard(), list)
    with pytest.raises(Forbidden, match="this token belongs to agent-1; it cannot act as another agent"):
        mine.requests("agent-2")                                   # its own token, another agent's name
    with pytest.raises(Forbidden):
        mine.enqueue("agent-2", "c" * 40)
    stolen = ScorerClient(client.url, auth.AgentCredentials("agent-2", auth.token_for(key, "agent-1")), timeout=5)
    with pytest.raises(Unauthorized, match="the token does not match"):   # agent-1's token, claiming agent-2
        stolen.requests("agent-2")
    guessed = ScorerClient(client.url, auth.AgentCredentials("agent-2", "0" * 64), timeout=5)
    with pytest.raises(Unauthorized):
        guessed.evaluate("agent-2", b"")
    with pytest.raises(Unauthorized, match="the scorer answers only its lab's runners"):
        ScorerClient(client.url, timeout=5).leaderboard()        # no token at all
    for headers in ({}, {auth.AGENT_HEADER: "agent-1"}, {auth.AGENT_HEADER: "agent-1", "Authorization": "Basic x"}):
        status, answer = raw_call(client.url, "/submit", {"agent": "agent-1", "commit": "c" * 40}, headers)
        assert status == 401 and answer["kind"] == "Unauthorized" and "\n" not in answer["error"]
    status, answer = raw_call(client.url, "/submissions", {"agent": "agent-2"}, mine.credentials.headers(None))
    assert status == 403 and answer["kind"] == "Forbidden"
    person = ScorerClient(client.url, auth.KeyCredentials.of_lab(cfg.state_dir), timeout=5)
    assert isinstance(person.leaderboard(), list) and person.requests("person") == []


def test_the_runners_token_leaves_its_environment_and_never_reaches_a_sandbox(monkeypatch, tmp_path):
    from lab.sandbox import Bind, Limits
    from lab.scorer import auth

    monkeypatch.setenv(auth.TOKEN_ENV, "s3cret-token")
    credentials = auth.AgentCredentials.from_environment("agent-1")
    assert credentials.token == "s3cret-token" and auth.TOKEN_ENV not in os.environ
    monkeypatch.setenv(auth.TOKEN_ENV, "s3cret-token")         # even if it were still there
    sandbox = make_sandbox("bwrap" if have_bwrap() else "none", warn=lambda line: None)
    out = Bind(tmp_path, "/out", writable=True)
    result = sandbox.run(["/usr/bin/env"], [out], cwd=out, limits=Limits(timeout_s=30))
    assert result.ok and "LAB_AGENT" not in result.stdout and "s3cret" not in result.stdout, result.stdout


def test_a_method_path_that_is_a_link_in_the_commit_is_no_method(own_lab):
    from lab.sandbox.workspace import Workspace

    _, cfg, _ = own_lab
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None)
    workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), "agent-1", sandbox)
    os.symlink("/etc/passwd", workspace.path / "link.py")
    os.symlink("/etc", workspace.path / "linked")
    env = {"GIT_AUTHOR_NAME": "agent-1", "GIT_COMMITTER_NAME": "agent-1", "GIT_AUTHOR_EMAIL": "agent-1@lab",
           "GIT_COMMITTER_EMAIL": "agent-1@lab"}
    commit = workspace.commit("links", env=env)
    db = open_db(cfg.state_dir / "lab.db")
    scorer = Scorer(cfg, db, sandbox, progress=False)
    try:
        for path in ("link.py", "linked/passwd"):
            with pytest.raises(LabError, match=f"has no method file '{path}'"):
                scorer.submit("agent-1", commit, path)
    finally:
        db.conn.close()


# ---- the queue --------------------------------------------------------------------------------------
def test_submit_answers_at_once_and_the_result_comes_as_a_note_unless_the_agent_read_it(own_lab):
    _, cfg, commit = own_lab
    service = start_service(cfg)
    client = ScorerClient(service.url, KeyCredentials(service.key), timeout=5)
    db = open_db(cfg.state_dir / "lab.db")
    try:
        start = time.monotonic()
        slow = client.enqueue("agent-1", commit, "slow.py")
        quick = client.enqueue("agent-2", commit, "quick.py")
        assert time.monotonic() - start < 2              # nothing waits for the scoring
        assert slow["state"] == "queued" and quick["state"] == "queued" and quick["ahead"] == 1
        stored = submissions.request(db, slow["request"])           # in SQLite before the agent heard its id
        assert (stored["agent"], stored["commit_sha"], stored["path"]) == ("agent-1", commit, "slow.py")
        wait_for(lambda: client.request("agent-1", slow["request"])["state"] == "running", 30, what="running")
        with pytest.raises(NotFound):                     # another agent's request is not shown
            client.request("agent-2", slow["request"])
        # agent-2 waits for its result in short calls; agent-1 does not look, and gets a note instead
        done = client.request("agent-2", quick["request"], wait_s=240)
        assert done["state"] == "done" and done["result"]["pgr"] is not None and done["result"]["seeds"] == [0, 1]
        assert done["started"] - done["created"] < 5      # scored beside agent-1's, not after it
        notes = wait_for(lambda: [c for c in commands.history(db, "agent-1") if c["author"] == "scorer"], 240,
                         what="a note to agent-1")
        assert f"request {slow['request']} (" in notes[0]["body"] and "is done: submission" in notes[0]["body"]
        assert "public dev PGR" in notes[0]["body"] and "flag ignores_teacher" in notes[0]["body"]   # it ignores it
        time.sleep(max(0.0, done["finished"] + ANNOUNCE_AFTER_S + 1.5 - time.time()))
        assert not [c for c in commands.history(db, "agent-2") if c["author"] == "scorer"]
        listed = client.requests("agent-1")
        assert [r["request"] for r in listed] == [slow["request"]] and listed[0]["result"]["submission"]
    finally:
        service.stop()
        db.conn.close()


def test_an_agent_whose_runs_are_long_delays_another_by_none_of_them(own_lab):
    """agent-burn queues two submissions of a method whose every run burns CPU for seconds (legitimately, under its
    CPU limit), enough to fill every run slot; agent-quick's submission, queued once agent-burn's runs are going,
    starts at once, gets a slot of its own without waiting for any of agent-burn's runs to end, and is done while
    agent-burn's first submission is still being scored."""
    _, cfg, commit = own_lab
    service = start_service(cfg)
    client = ScorerClient(service.url, KeyCredentials(service.key), timeout=5)
    db = open_db(cfg.state_dir / "lab.db")
    try:
        burns = [client.enqueue("agent-burn", commit, "burner.py")["request"] for _ in range(2)]
        wait_for(lambda: engines.shared(cfg).slots.running().get("agent-burn", 0) >= cfg.scorer.parallel, 60,
                 what="agent-burn's runs holding every slot")
        queued = client.enqueue("agent-quick", commit, "quick.py")
        got = wait_for(lambda: engines.shared(cfg).slots.running().get("agent-quick"), 10,
                       what="agent-quick's first run going")
        slots = engines.shared(cfg).slots.running()
        assert got == 1 and slots["agent-burn"] >= cfg.scorer.parallel, slots   # none of agent-burn's ended for it
        done = client.request("agent-quick", queued["request"], wait_s=300)
        assert done["state"] == "done", done
        assert submissions.request(db, burns[0])["state"] == "running"
        assert submissions.request(db, burns[1])["state"] == "queued"       # one at a time per agent
    finally:
        service.stop()
        db.conn.close()


def test_the_queue_is_round_robin_by_agent_and_a_resumed_request_keeps_its_place(tmp_path):
    """agent-1 queues five before agent-2 and agent-3 queue one each: they wait behind one of agent-1's, not five."""
    db = open_db(tmp_path / "lab.db")
    ids = {}
    for name in ["a1", "a2", "a3", "a4", "a5", "b1", "c1", "c2"]:
        agent = {"a": "agent-1", "b": "agent-2", "c": "agent-3"}[name[0]]
        ids[name] = submissions.enqueue(db, agent, "c" * 40, "method.py")["id"]
    names = {i: n for n, i in ids.items()}
    taken = lambda: names[submissions.take_next(db)["id"]]  # noqa: E731
    assert taken() == "a1"
    assert submissions.request(db, ids["b1"])["ahead"] == 1        # only the one running is ahead of it
    assert [taken(), taken()] == ["b1", "c1"]                       # never served before agent-1, served again
    submissions.requeue(db, ids["c1"], "resumed: the scorer stopped while scoring it", interrupted=True)
    assert taken() == "c1"                                          # a resumed request keeps its place
    assert [taken() for _ in range(4)] == ["a2", "c2", "a3", "a4"]
    assert submissions.take_next(db)["id"] == ids["a5"] and submissions.take_next(db) is None
    db.conn.close()


def test_queued_submissions_count_against_the_budget(own_lab):
    _, cfg, commit = own_lab
    cfg = cfg.model_copy(update={"scorer": cfg.scorer.model_copy(update={"submit_budget": 2})})
    db = open_db(cfg.state_dir / "lab.db")
    service = ScorerService(cfg, lambda db: None)    # not started: the requests stay queued
    try:
        for _ in range(2):
            service.enqueue(db, "agent-budget", commit, "quick.py")
        with pytest.raises(BudgetExceeded, match="2 submissions queued or running and 0 scored"):
            service.enqueue(db, "agent-budget", commit, "quick.py")
        service.enqueue(db, "baseline", commit, "quick.py")             # baselines have no budget
    finally:
        db.execute("DELETE FROM submission_queue WHERE agent IN ('agent-budget', 'baseline')")
        service.server.server_close()
        db.conn.close()


def test_a_scorer_killed_mid_submission_resumes_it_when_it_starts_again(own_lab):
    folder, cfg, commit = own_lab

    def serve():
        proc = subprocess.Popen([sys.executable, "-c", SERVE, str(folder / "lab.toml")], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        return proc, proc.stdout.readline().strip()

    db = open_db(cfg.state_dir / "lab.db")
    proc, url = serve()
    try:
        client = ScorerClient(url, KeyCredentials.of_lab(cfg.state_dir), timeout=5)
        queued = client.enqueue("agent-1", commit, "slow.py")
        wait_for(lambda: submissions.request(db, queued["request"])["state"] == "running", 60, what="running")
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        row = submissions.request(db, queued["request"])
        assert row["state"] == "running"                  # as the dead scorer left it
        with pytest.raises(ScorerUnavailable, match="did not answer /submission .*Connection refused"):
            client.request("agent-1", queued["request"])
        before = len(submissions.of_agent(db, "agent-1"))

        proc, url = serve()
        view = ScorerClient(url, KeyCredentials.of_lab(cfg.state_dir), timeout=5).request("agent-1", queued["request"], wait_s=300)
        assert view["state"] == "done", view
        assert view["reason"] == "resumed: the scorer stopped while scoring it"
        assert submissions.request(db, queued["request"])["interruptions"] == 1
        assert len(submissions.of_agent(db, "agent-1")) == before + 1      # scored once, recorded once
        assert view["result"]["submission"] == submissions.of_agent(db, "agent-1")[0].id
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        db.conn.close()


def test_on_start_the_scorer_links_what_a_dead_one_recorded_and_fails_what_keeps_killing_it(own_lab):
    _, cfg, commit = own_lab
    db = open_db(cfg.state_dir / "lab.db")
    service = ScorerService(cfg, lambda db: None)
    try:
        recorded = submissions.enqueue(db, "agent-rec", commit, "quick.py")
        killer = submissions.enqueue(db, "agent-kill", commit, "slow.py")
        for row in (recorded, killer):
            db.execute("UPDATE submission_queue SET state = 'running', started = ? WHERE id = ?",
                       [time.time() - 5, row["id"]])
        db.execute("UPDATE submission_queue SET interruptions = ? WHERE id = ?",
                   [MAX_INTERRUPTIONS - 1, killer["id"]])
        # the dead scorer had recorded the first one's score, but not its request's outcome
        sid = submissions.record_submission(
            db, agent="agent-rec", commit_sha=commit, path="quick.py", tree_hash="t", fingerprint="f", seeds=[0, 1],
            sandbox="bwrap", duration_s=3.0, flags=[],
            scores=[{"dataset": "rotten_tomatoes", "role": "dev", "status": "ok", "acc": 0.69, "pgr": 0.3,
                     "pgr_se": 0.0, "seeds": [0, 1], "weak_acc": 0.66, "ceiling_acc": 0.76, "per_seed_acc": [0.69, 0.69]}])
        service.recover(db)
        linked = submissions.request(db, recorded["id"])
        assert linked["state"] == "done" and linked["submission_id"] == sid
        assert linked["result"] == told.result(submissions.get(db, sid), service.coarse)
        assert abs(linked["result"]["pgr"] - 0.3) < 0.25     # as agents are told it: with a little noise
        failed = submissions.request(db, killer["id"])
        assert failed["state"] == "failed" and failed["kind"] == "ScorerInterrupted"
        assert f"the scorer stopped {MAX_INTERRUPTIONS} times while scoring it" in failed["reason"]
    finally:
        service.server.server_close()
        db.conn.close()


def test_a_stopped_scorer_puts_its_submission_back_in_the_queue(own_lab):
    _, cfg, commit = own_lab
    db = open_db(cfg.state_dir / "lab.db")
    service = start_service(cfg)
    try:
        queued = ScorerClient(service.url, KeyCredentials(service.key)).enqueue("agent-stop", commit, "slow.py")
        wait_for(lambda: submissions.request(db, queued["request"])["state"] == "running", 60, what="running")
        service.stop()
        row = submissions.request(db, queued["request"])
        assert row["state"] == "queued" and row["interruptions"] == 0 and "stopped" in row["reason"]
    finally:
        db.conn.close()


def test_one_scorer_runs_a_labs_queue_and_the_next_takes_over_when_it_is_gone(own_lab):
    _, cfg, _ = own_lab
    first = start_service(cfg)
    second = start_service(cfg)
    try:
        assert first.leading.wait(30)           # generous: a loaded CI machine, not a timing check
        assert not second.leading.wait(1)       # it answers HTTP, but does not score or take anything up
        first.stop()
        assert second.leading.wait(30)
    finally:
        first.stop()
        second.stop()


# ---- a scorer that is down, silent or talking nonsense -------------------------------------------------
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawServer:
    """A loopback TCP server that answers every connection with `reply` (bytes, or None: never answers)."""

    def __init__(self, reply: bytes | None):
        self.reply, self.sock = reply, socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            if self.reply is None:
                self.held.append(conn)
                continue
            conn.sendall(self.reply)
            conn.close()

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("reply, why", [
    (None, "timed out"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!", "JSONDecodeError"),
    (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 6\r\n\r\n<html>", "HTTP 502"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"leader", "IncompleteRead"),
    (b"", "RemoteDisconnected"),
])
def test_a_scorer_that_answers_wrongly_is_one_lab_error(reply, why):
    server = RawServer(reply)
    try:
        with pytest.raises(ScorerUnavailable, match=why):
            ScorerClient(server.url, timeout=0.5).leaderboard()
    finally:
        server.close()


def test_a_closed_port_is_one_lab_error_for_every_call(tmp_path):
    client = ScorerClient(f"http://127.0.0.1:{closed_port()}", timeout=2)
    for call in (client.leaderboard, lambda: client.enqueue("agent-1", "c" * 40),
                 lambda: client.request("agent-1", 1), lambda: client.evaluate("agent-1", b"")):
        with pytest.raises(ScorerUnavailable, match="Connection refused.*try again in a minute"):
            call()
