"""The agent's tools, run for real: the bwrap sandbox, git worktrees, the forum and the scorer service."""
from __future__ import annotations

import inspect
import json
import socket

import pytest

from conftest import make_lab, requires_bwrap
from lab import config
from lab.agents.tools import REGISTRY, TOOLS, ToolContext, Toolbox, tool
from lab.agents.turns import ToolCall
from lab.sandbox import make_sandbox
from lab.sandbox.workspace import Workspace, WorktreeMissing
from lab.scaffold.repo import research_repo_path
from lab.scorer.scorer import Scorer
from lab.scorer.auth import KeyCredentials
from lab.scorer.client import ScorerClient
from lab.scorer.service import ScorerService
from lab.store import agents, forum, open_db
from lab.task.testbed import Testbed

pytestmark = requires_bwrap


@pytest.fixture(scope="module")
def world(lab_dir, tmp_path_factory):
    folder = make_lab(lab_dir, tmp_path_factory.mktemp("tools"), [], count=2, tmp_mb=16)
    cfg = config.load(folder / "lab.toml")
    cfg = cfg.model_copy(update={"agents": cfg.agents.model_copy(update={"output_chars": 400})})
    sandbox = make_sandbox(cfg.lab.sandbox)
    testbed = Testbed.load(cfg)
    service = ScorerService(cfg, lambda db: Scorer(cfg, db, sandbox, testbed, progress=False))
    service.start_in_thread()
    db = open_db(cfg.state_dir / "lab.db")
    boxes = {}
    for name in ("agent-1", "agent-2"):
        agents.ensure(db, name, "scripted", "test", "cpu 0")
        workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), name, sandbox)
        boxes[name] = Toolbox(ToolContext(agent=name, cfg=cfg, db=db, sandbox=sandbox, workspace=workspace,
                                          data_view=testbed.view(cfg.task.dev), scorer=ScorerClient(service.url, KeyCredentials(service.key))))
    yield cfg, db, boxes
    service.stop()
    db.conn.close()


def call(box: Toolbox, name: str, **arguments):
    return box.execute(ToolCall("t1", name, arguments))


def test_every_tool_has_a_schema_that_matches_its_handler(world):
    box = world[2]["agent-1"]
    assert [t["name"] for t in TOOLS] == list(REGISTRY)
    for spec in TOOLS:
        schema = spec["input_schema"]
        assert schema["type"] == "object" and spec["description"] and schema["additionalProperties"] is False
        parameters = list(inspect.signature(REGISTRY[spec["name"]].run).parameters.values())[1:]
        assert list(schema["properties"]) == [p.name for p in parameters], spec["name"]
        assert schema["required"] == [p.name for p in parameters if p.default is inspect.Parameter.empty]
    result = call(box, "browse", url="http://example.com")
    assert result.is_error and "unknown tool 'browse'" in result.output


@pytest.mark.parametrize("name, arguments, message", [
    ("read_file", {"path": "README.md", "offset": "ten"},
     "bad arguments for read_file: offset: expected an integer, got the string 'ten'"),
    ("read_file", {"path": "README.md", "offset": 0}, "offset: 0 is below the minimum 1"),
    ("read_file", {}, "bad arguments for read_file: path: missing (required)"),
    ("read_file", {"path": "README.md", "colour": "blue"}, "colour: unknown field (expected: path, offset, limit)"),
    ("read_file", {"path": ["README.md"], "limit": True},
     "path: expected a string, got an array; limit: expected an integer, got true"),
    ("forum_vote", {"post_id": 1, "value": 2}, "value: the number 2 is not one of 1, -1"),
    ("forum_post", {"kind": "rant", "title": "t", "body": "b"},
     "kind: the string 'rant' is not one of 'result', 'hypothesis',"),
    ("forum_post", {"kind": "result", "title": "t", "body": "b", "metrics": [1]}, "metrics: expected an object"),
    ("shell", {"command": "true", "timeout_s": "soon"}, "timeout_s: expected a number, got the string 'soon'"),
    ("submission", {"request": 1, "wait_s": 10 ** 6}, "wait_s: 1000000 is above the maximum 3600"),
    ("notebook", {"action": "erase"}, "action: the string 'erase' is not one of 'read', 'append', 'replace'"),
])
def test_input_that_breaks_a_tools_schema_is_one_error_naming_the_field(world, name, arguments, message):
    box = world[2]["agent-1"]
    result = box.execute(ToolCall("t1", name, arguments))
    assert result.is_error and result.data["kind"] == "BadArguments", result.output
    assert message in result.output
    assert not call(box, "read_file", path="README.md", offset=2, limit=1).is_error   # and the agent goes on


def test_a_bug_inside_a_tool_is_that_tools_failure_with_its_type_not_bad_arguments(world, caplog):
    @tool("lookup", "A tool with a bug: it reads a key that is not there.", {"key": {"type": "string"}}, ("key",))
    def lookup(self, key: str):
        return {}[key], {}

    box = world[2]["agent-1"]
    try:
        result = call(box, "lookup", key="pgr")
        typed = call(box, "lookup", key="x")
    finally:
        del REGISTRY["lookup"]
    assert result.is_error and result.output == "error: tool lookup failed: KeyError: 'pgr'"
    assert result.data["kind"] == "KeyError" and "bad arguments" not in typed.output
    logged = [r.getMessage() for r in caplog.records if r.name == "lab.tools"]   # the runner's log keeps where it failed
    assert len(logged) == 2 and "Traceback" in logged[0] and "KeyError: 'pgr'" in logged[0]


def test_an_agent_whose_tool_calls_break_their_schemas_or_fail_keeps_going(world, tmp_path):
    """The real loop with the scripted backend: bad input and a scorer that is down are results it reads."""
    from lab.agents.backends.scripted import ScriptedBackend
    from lab.agents.loop import AgentLoop
    from lab.agents.turns import AgentWorld
    from lab.store import events

    cfg, db, boxes = world
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [
        {"calls": [{"name": "read_file", "arguments": {"path": "README.md", "offset": "x"}}]},
        {"calls": [{"name": "leaderboard", "arguments": {}}]},
        {"calls": [{"name": "notebook", "arguments": {"action": "append", "text": "still here"}}]}]}))
    loop_cfg = cfg.model_copy(update={"agents": cfg.agents.model_copy(update={"script": str(script)})})
    agents.ensure(db, "agent-loop", "scripted", "test", "cpu 0")
    box = Toolbox(ToolContext(**{**vars(boxes["agent-2"].ctx), "agent": "agent-loop", "cfg": loop_cfg,
                                 "scorer": ScorerClient(f"http://127.0.0.1:{closed_port()}", timeout=2)}))
    world_ = AgentWorld(name="agent-loop", direction="d", readme="", tools=TOOLS, notebook=lambda: "")
    state, reason = AgentLoop("agent-loop", loop_cfg, db, ScriptedBackend(loop_cfg, world_, None), box).run()
    assert state == "stopped" and "script" in reason
    results = [e for e in events.transcript(db, "agent-loop") if e["kind"] == "tool_result"]
    assert len(results) == 3 and "offset: expected an integer" in results[0]["summary"]
    assert "did not answer /leaderboard" in results[1]["summary"] and "Connection refused" in results[1]["summary"]
    assert "still here" in agents.notebook(db, "agent-loop")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scorer_that_is_down_is_a_tool_error_the_agent_reads(world):
    box = world[2]["agent-1"]
    down = Toolbox(ToolContext(**{**vars(box.ctx), "scorer": ScorerClient(f"http://127.0.0.1:{closed_port()}",
                                                                           timeout=2)}))
    assert not call(box, "shell", command="mkdir -p runs && echo '{}' > runs/x.jsonl").is_error
    for name, arguments in [("submit", {"commit": "HEAD"}), ("submission", {"request": 1}),
                            ("submission", {}), ("leaderboard", {}), ("evaluate", {"predictions": "runs/x.jsonl"})]:
        result = down.execute(ToolCall("t1", name, arguments))
        assert result.is_error and result.data["kind"] == "ScorerUnavailable", (name, result.output)
        assert "it may be restarting: try again in a minute" in result.output


def test_shell_runs_in_the_sandbox_with_data_and_without_lab_state(world):
    cfg, _, boxes = world
    result = call(boxes["agent-1"], "shell", command=f"ls /data; ls {cfg.state_dir}; pwd; "
                                                     "python -c 'import urllib.request as u; u.urlopen(\"http://1.1.1.1\", timeout=2)'")
    assert result.is_error  # no network: the last command fails
    assert "train.jsonl" in result.output and "research.git" in result.output
    assert "lab.db" not in result.output and "private" not in result.output
    assert str(boxes["agent-1"].ctx.workspace.path) in result.output


def test_long_output_is_truncated_with_a_note(world):
    result = call(world[2]["agent-1"], "shell", command="seq 1 5000")
    assert not result.is_error and len(result.output) < 600
    assert "characters cut" in result.output and result.output.rstrip().endswith("5000")


def test_full_disk_in_the_sandbox_is_a_clear_error(world):
    result = call(world[2]["agent-1"], "shell", command="head -c 40000000 /dev/zero > /tmp/big")
    assert result.is_error and "No space left on device" in result.output and "disk full" in result.output
    assert not call(world[2]["agent-1"], "shell", command="echo still fine").is_error


def test_files_stay_inside_the_worktree(world):
    box = world[2]["agent-1"]
    assert "outside your worktree" in call(box, "read_file", path="../../etc/passwd").output
    assert call(box, "write_file", path="/etc/evil", content="x").is_error
    assert call(box, "read_file", path=".git").is_error
    assert not call(box, "write_file", path="ideas/a.txt", content="one\ntwo\ntwo\n").is_error
    assert "occurs 2 times" in call(box, "edit_file", path="ideas/a.txt", old="two", new="2").output
    assert not call(box, "edit_file", path="ideas/a.txt", old="one", new="1").is_error
    assert "    1  1" in call(box, "read_file", path="ideas/a.txt").output
    # the sandboxed user can change what the runner wrote
    assert not call(box, "shell", command="echo three >> ideas/a.txt && mkdir -p ideas/deeper").is_error


def test_commits_are_shared_between_agents(world):
    _, db, boxes = world
    assert not call(boxes["agent-2"], "write_file", path="idea.py", content="print('agent-2 idea')\n").is_error
    commit = call(boxes["agent-2"], "git_commit", message="an idea")
    sha = commit.data["commit"]
    assert len(sha) == 40 and "nothing to commit" in call(boxes["agent-2"], "git_commit", message="again").output
    seen = call(boxes["agent-1"], "shell", command=f"git show {sha[:10]}:idea.py && git cherry-pick {sha} && git log -1 --format=%an")
    assert not seen.is_error, seen.output
    assert "agent-2 idea" in seen.output and "agent-2" in seen.output
    post = call(boxes["agent-2"], "forum_post", kind="result", title="idea", body="b", commit=sha[:8], metrics={"pgr": 0.2})
    assert forum.read(db, post.data["post_id"])["commit_sha"] == sha
    assert call(boxes["agent-1"], "forum_post", kind="result", title="x", body="b", commit="nope").is_error


def test_evaluate_and_submit_through_the_scorer_service(world):
    _, db, boxes = world
    box = boxes["agent-1"]
    run = call(box, "shell", command="mkdir -p runs && python method.py --data /data --out runs/p.jsonl --seed 0")
    assert not run.is_error, run.output
    result = call(box, "evaluate", predictions="runs/p.jsonl")
    assert not result.is_error and set(result.data) >= {"acc", "pgr"} and "PGR" in result.output
    assert call(box, "evaluate", predictions="runs/missing.jsonl").is_error
    for _ in range(3):
        last = call(box, "evaluate", predictions="runs/p.jsonl")
    assert last.is_error and last.data["kind"] == "BudgetExceeded"
    queued = call(box, "submit", commit="HEAD")
    assert not queued.is_error and queued.data["state"] == "queued", queued.output
    request = queued.data["request"]
    assert f"request {request} (" in queued.output and "call `submission` with request" in queued.output
    assert call(box, "submission", request=request).data["state"] in ("queued", "running", "done")
    submitted = call(box, "submission", request=request, wait_s=600)
    assert not submitted.is_error and submitted.data["state"] == "done", submitted.output
    assert submitted.data["seeds"] == [0, 1] and f"request {request} (" in submitted.output
    assert "public dev PGR" in submitted.output and "ranked on fresh texts" in submitted.output, submitted.output
    shown = [f"flag {f['kind']}: {f['message']}" for f in submitted.data["flags"]] or ["no flags"]
    assert all(line in submitted.output for line in shown), submitted.output
    listed = call(box, "submission")
    assert f"request {request} (" in listed.output and "is done: submission" in listed.output
    board = call(box, "leaderboard")
    mine = next(r for r in board.data["leaderboard"] if r["agent"] == "agent-1")
    assert (mine["pgr"], mine["pgr_se"]) == (submitted.data["pgr"], submitted.data["pgr_se"])
    assert "public dev PGR" in board.output
    row = agents.get(db, "agent-1")
    assert row["experiments"] == 4 and row["scorer_queries"] == 5  # 3 evaluations + 1 submission scored
    failed = call(box, "submit", commit="HEAD", path="missing.py", wait_s=120)      # waiting here, by choice
    assert failed.is_error and failed.data["state"] == "failed" and "no method file 'missing.py'" in failed.output
    assert failed.data["kind"] == "MethodRejected" and failed.output.startswith(f"error: request {request + 1} (")
    again = call(box, "submission", request=request + 1)
    assert again.is_error and again.output == failed.output


def test_notebook_persists(world):
    box = world[2]["agent-2"]
    call(box, "notebook", action="replace", text="layer 4 helps")
    call(box, "notebook", action="append", text="logconf hurts")
    assert call(box, "notebook", action="read").output == "layer 4 helps\nlogconf hurts"
    assert call(box, "notebook", action="erase").is_error


def test_a_deleted_worktree_ends_the_agent(world, tmp_path):
    cfg, db, boxes = world
    sandbox = make_sandbox(cfg.lab.sandbox)
    workspace = Workspace.ensure(tmp_path, research_repo_path(cfg.state_dir), "agent-3", sandbox)
    import shutil

    shutil.rmtree(workspace.path)
    box = Toolbox(ToolContext(agent="agent-3", cfg=cfg, db=db, sandbox=sandbox, workspace=workspace,
                              data_view=boxes["agent-2"].ctx.data_view, scorer=None))
    with pytest.raises(WorktreeMissing, match="was deleted"):
        call(box, "shell", command="true")


def test_the_real_loop_with_the_claude_backend_over_http(world, monkeypatch):
    """Claude (the real SDK, over HTTP to a loopback Messages API) drives the real loop and tools to its budget."""
    from fake_messages_api import FakeMessagesAPI, rate_limited, text_reply, tool_reply

    from lab.agents.backends.claude import ClaudeBackend
    from lab.agents.loop import AgentLoop
    from lab.agents.turns import AgentWorld
    from lab.store import commands, events

    cfg, db, boxes = world
    box = boxes["agent-2"]
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    replies = [tool_reply(("c1", "shell", {"command": "echo from-claude"})), rate_limited(0),
               tool_reply(("c2", "notebook", {"action": "append", "text": "echo works"})),
               text_reply("Iteration done.")]
    with FakeMessagesAPI(replies) as api:
        loop_cfg = cfg.model_copy(update={
            "claude": cfg.claude.model_copy(update={"base_url": api.url, "retry_base_s": 0.001}),
            "budget": cfg.budget.model_copy(update={"agent": cfg.budget.agent.model_copy(update={"tokens": 300})})})
        box.ctx.cfg = loop_cfg
        commands.send(db, ["agent-2"], "message", "please be brief")
        world_ = AgentWorld(name="agent-2", direction="self-training", readme="# readme", tools=TOOLS,
                            notebook=lambda: agents.notebook(db, "agent-2"))
        loop = AgentLoop("agent-2", loop_cfg, db, ClaudeBackend(loop_cfg, world_, None), box)
        state, reason = loop.run()
        box.ctx.cfg = cfg
    assert state == "budget" and "300 tokens" in reason
    assert "Message from the person running the lab: please be brief" in str(api.bodies()[0]["messages"])
    second = api.bodies()[1]["messages"][-1]["content"]
    assert second[0]["type"] == "tool_result" and "from-claude" in str(second[0]["content"])
    assert "echo works" in agents.notebook(db, "agent-2")
    calls = list(db["model_calls"].rows_where("agent = 'agent-2'"))
    assert len(calls) == 3 and sum(c["retries"] for c in calls) == 1
    spent = sum(c["dollars"] for c in calls)
    assert spent > 0 and agents.get(db, "agent-2")["dollars"] == pytest.approx(spent)
    kinds = [e["kind"] for e in events.transcript(db, "agent-2")]
    assert kinds.count("turn") == 3 and "message" in kinds and kinds[-1] == "state"
