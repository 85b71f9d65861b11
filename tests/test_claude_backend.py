"""The claude backend, driven through the real anthropic SDK over real HTTP to a loopback Messages API."""
from __future__ import annotations

import json

import pytest

from fake_messages_api import (FakeMessagesAPI, dropped, error_reply, overloaded, rate_limited, server_error, slow,
                               text_reply, tool_reply)
from lab.agents.backends.claude import ClaudeBackend
from lab.agents.tools import TOOL_NAMES, TOOLS
from lab.agents.turns import AgentWorld, BackendError, Message, ToolResult
from lab.config import parse

EPHEMERAL = {"type": "ephemeral"}
MODEL = "claude-sonnet-4-6"


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key")
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api():
    with FakeMessagesAPI() as server:
        yield server


class Notebook:
    def __init__(self, text: str = "- baseline: PGR 0.31 +- 0.02 (commit abc1234)"):
        self.text = text

    def __call__(self) -> str:
        return self.text


def config(tmp_path, api, **claude):
    settings = {"model": MODEL, "base_url": api.url, "retry_base_s": 0.001, "max_retries": 3, **claude}
    return parse({"claude": settings}, root=tmp_path)


def world(notebook: Notebook | None = None) -> AgentWorld:
    return AgentWorld(name="agent-3", direction="confidence losses", readme="# Weak-to-strong\nMaximise PGR.",
                      tools=TOOLS, notebook=notebook or Notebook(), worktree="/work/agent-3")


def backend(tmp_path, api, saved=None, notebook=None, **claude) -> ClaudeBackend:
    return ClaudeBackend(config(tmp_path, api, **claude), world(notebook), saved)


def texts(message: dict) -> list[str]:
    return [block["text"] for block in message["content"] if block["type"] == "text"]


def test_a_tool_use_turn_comes_back_as_calls_and_the_results_go_with_the_next_request(tmp_path, api):
    api.add(tool_reply(("toolu_01", "shell", {"command": "python method.py --seed 0"}),
                       ("toolu_02", "read_file", {"path": "README.md"}), text="Let me run the baseline."),
            text_reply("Baseline reproduced; notebook updated."),
            text_reply("Starting the next iteration."))
    claude = backend(tmp_path, api)

    turn = claude.step([])
    assert [(c.id, c.name, c.arguments) for c in turn.calls] == [
        ("toolu_01", "shell", {"command": "python method.py --seed 0"}),
        ("toolu_02", "read_file", {"path": "README.md"})]
    assert turn.text == "Let me run the baseline."
    assert turn.step == "calling shell: python method.py --seed 0 (+1 more)"
    first = api.requests[0]
    assert first.body["model"] == MODEL and first.body["max_tokens"] == 8192
    assert [t["name"] for t in first.body["tools"]] == TOOL_NAMES
    assert first.headers["anthropic-version"] and "sk-test-key" in first.headers["authorization"]

    claude.observe([ToolResult("toolu_01", "shell", "seed 0: acc 0.81"),
                    ToolResult("toolu_02", "read_file", "error: no such file", is_error=True)])
    turn = claude.step([])
    sent = api.requests[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][1] == {"type": "tool_use", "id": "toolu_01", "name": "shell",
                                     "input": {"command": "python method.py --seed 0"}}
    results = sent[2]["content"]
    assert [(r["type"], r["tool_use_id"], r["content"], r["is_error"]) for r in results] == [
        ("tool_result", "toolu_01", "seed 0: acc 0.81", False),
        ("tool_result", "toolu_02", "error: no such file", True)]
    # Ending the turn without a tool call ends the iteration: the next step is a fresh conversation.
    assert turn.calls == [] and "fresh conversation" in turn.step
    claude.step([])
    fresh = api.requests[2].body["messages"]
    assert len(fresh) == 1 and texts(fresh[0])[0].startswith("Iteration 2.")


@pytest.mark.parametrize("fault", [rate_limited, overloaded, server_error, dropped],
                         ids=["429", "529-overloaded", "500", "dropped-connection"])
def test_each_transient_fault_is_retried_and_counted(tmp_path, api, fault):
    api.add(fault(), fault(), text_reply("ok"))
    turn = backend(tmp_path, api).step([])
    assert turn.text == "ok" and turn.usage.retries == 2
    assert len(api.requests) == 3 and api.requests[0].body == api.requests[2].body


def test_a_timeout_is_retried(tmp_path, api):
    api.add(slow(text_reply("too late"), delay_s=1.5), text_reply("in time"))
    turn = backend(tmp_path, api, timeout_s=0.3).step([])
    assert turn.text == "in time" and turn.usage.retries == 1


def test_retry_after_is_honoured(tmp_path, api):
    api.add(rate_limited(retry_after_s=1), text_reply("ok"))
    turn = backend(tmp_path, api).step([])
    assert turn.usage.retries == 1
    assert api.requests[1].at - api.requests[0].at >= 0.9     # retry_base_s alone would wait a millisecond


def test_retries_exhausted_raise_one_clear_line(tmp_path, api):
    api.add(*[overloaded() for _ in range(3)])
    claude = backend(tmp_path, api, max_retries=2)
    with pytest.raises(BackendError, match=r"failed after 3 tries; last: HTTP 529 overloaded_error: Overloaded"):
        claude.step([])
    assert len(api.requests) == 3


@pytest.mark.parametrize("status,kind,text", [(401, "authentication_error", "invalid x-api-key"),
                                              (403, "permission_error", "this key may not use the model"),
                                              (400, "invalid_request_error", "max_tokens: too large")])
def test_a_refused_request_raises_at_once_with_the_servers_message(tmp_path, api, status, kind, text):
    api.add(error_reply(status, kind, text), text_reply("never sent"))
    with pytest.raises(BackendError, match=f"HTTP {status} {kind}: {text}"):
        backend(tmp_path, api).step([])
    assert len(api.requests) == 1


def test_usage_is_priced_per_million_tokens(tmp_path, api):
    api.add(text_reply("done", input_tokens=1000, output_tokens=200, cache_write=3000, cache_read=50_000),
            text_reply("again", input_tokens=10, output_tokens=1, cache_write=0, cache_read=0))
    prices = {"input": 2.0, "output": 10.0, "cache_write": 4.0, "cache_read": 0.5}
    claude = backend(tmp_path, api, prices=prices)
    usage = claude.step([]).usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens, usage.cache_read_tokens) == (
        1000, 200, 3000, 50_000)
    assert usage.dollars == pytest.approx((1000 * 2 + 200 * 10 + 3000 * 4 + 50_000 * 0.5) / 1e6)
    assert usage.model == MODEL and usage.retries == 0 and usage.duration_s > 0
    claude.step([])
    totals = claude.state()["totals"]
    assert totals["calls"] == 2 and totals["input_tokens"] == 1010
    assert totals["dollars"] == pytest.approx(0.041 + (10 * 2 + 10) / 1e6)


def test_the_stable_prefix_is_cached_and_the_notebook_comes_after_it(tmp_path, api):
    notebook = Notebook("- focal loss gamma=2: PGR 0.35 (commit f00d)")
    api.add(text_reply("iteration one over"), text_reply("iteration two over"))
    claude = backend(tmp_path, api, notebook=notebook)
    claude.step([])
    notebook.text = "- focal loss gamma=2: PGR 0.35 (commit f00d)\n- entropy min: no gain (commit beef)"
    claude.step([])
    one, two = api.bodies()
    assert one["system"][-1]["cache_control"] == EPHEMERAL and one["tools"][-1]["cache_control"] == EPHEMERAL
    assert all("cache_control" not in tool for tool in one["tools"][:-1])
    prefix = json.dumps([one["tools"], one["system"]])
    assert "agent-3" in prefix and "confidence losses" in prefix and "Maximise PGR" in prefix
    assert "focal loss" not in prefix
    assert [one["tools"], one["system"]] == [two["tools"], two["system"]]   # the cache survives a new notebook
    assert "PGR 0.35 (commit f00d)" in texts(one["messages"][0])[0]
    assert "entropy min" in texts(two["messages"][0])[0]


def test_a_persons_message_reaches_the_request_marked_as_theirs(tmp_path, api):
    api.add(tool_reply(("toolu_1", "leaderboard", {})), text_reply("noted"))
    claude = backend(tmp_path, api)
    claude.step([Message("person", "look at ensembles first")])
    assert "Message from the person running the lab: look at ensembles first" in texts(api.bodies()[0]["messages"][0])
    claude.observe([ToolResult("toolu_1", "leaderboard", "1. agent-2 PGR 0.40")])
    claude.step([Message("person", "and post your negative results"), Message("lab", "budget: 3 evaluations left")])
    last = api.bodies()[1]["messages"][-1]["content"]
    assert [b["type"] for b in last] == ["tool_result", "text", "text"]
    assert last[1]["text"] == "Message from the person running the lab: and post your negative results"
    assert last[2]["text"] == "Note from the lab: budget: 3 evaluations left"


def test_passing_the_context_limit_resets_to_a_summary_and_the_notebook(tmp_path, api):
    notebook = Notebook("- old notes")
    api.add(tool_reply(("toolu_1", "shell", {"command": "python sweep.py"}), input_tokens=400, cache_read=1800),
            text_reply("SUMMARY: sweeping gamma; gamma=2 best so far (commit cafe)", input_tokens=50),
            tool_reply(("toolu_2", "shell", {"command": "python sweep.py --gamma 3"}), input_tokens=70))
    claude = backend(tmp_path, api, context_tokens=2000, notebook=notebook)
    claude.step([])
    claude.observe([ToolResult("toolu_1", "shell", "gamma=2: PGR 0.36")])
    notebook.text = "- gamma sweep under way"
    turn = claude.step([Message("person", "keep going")])

    summary_call, fresh_call = api.bodies()[1:]
    assert summary_call["tool_choice"] == {"type": "none"}
    asked = summary_call["messages"][-1]["content"]
    assert asked[0]["type"] == "tool_result" and "summary" in asked[-1]["text"]
    assert len(fresh_call["messages"]) == 1
    opening = "\n".join(texts(fresh_call["messages"][0]))
    assert "gamma=2 best so far (commit cafe)" in opening and "gamma sweep under way" in opening
    assert "Message from the person running the lab: keep going" in opening
    assert turn.step.startswith("context reset: fresh conversation from a summary")
    assert [c.id for c in turn.calls] == ["toolu_2"] and turn.usage.input_tokens == 120
    assert claude.state()["totals"]["resets"] == 1


def test_state_round_trips_and_a_new_backend_resumes_answering_a_dangling_tool_use(tmp_path, api):
    api.add(tool_reply(("toolu_1", "shell", {"command": "sleep 3600"}), text="A long run."),
            tool_reply(("toolu_2", "notebook", {"action": "read"})))
    first = backend(tmp_path, api)
    first.step([])
    saved = json.loads(json.dumps(first.state()))     # the restart came before the tool's result

    resumed = backend(tmp_path, api, saved=saved)
    turn = resumed.step([])
    sent = api.bodies()[1]["messages"]
    assert sent[:2] == saved["messages"] and sent[1]["content"][1]["id"] == "toolu_1"
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_1",
                                     "content": "interrupted by a restart", "is_error": True,
                                     "cache_control": EPHEMERAL}
    assert [c.id for c in turn.calls] == ["toolu_2"]
    assert resumed.state()["totals"]["calls"] == 2


def test_results_observed_before_a_restart_are_sent_after_it(tmp_path, api):
    api.add(tool_reply(("toolu_1", "git_commit", {"message": "focal loss"})), text_reply("committed"))
    first = backend(tmp_path, api)
    first.step([])
    first.observe([ToolResult("toolu_1", "git_commit", "commit 1a2b3c4")])
    resumed = backend(tmp_path, api, saved=json.loads(json.dumps(first.state())))
    resumed.step([])
    result = api.bodies()[1]["messages"][-1]["content"][0]
    assert (result["tool_use_id"], result["content"], result["is_error"]) == ("toolu_1", "commit 1a2b3c4", False)


def test_a_reply_cut_off_at_max_tokens_continues_the_conversation(tmp_path, api):
    api.add(text_reply("I will now explain at leng", stop_reason="max_tokens"), text_reply("th. Done."))
    claude = backend(tmp_path, api)
    assert "cut off" in claude.step([]).step
    claude.step([])
    sent = api.bodies()[1]["messages"]
    assert len(sent) == 3 and texts(sent[2]) == ["Go on."]


def test_base_url_comes_from_the_environment_when_the_config_has_none(tmp_path, api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
    api.add(text_reply("hello"))
    cfg = parse({"claude": {"model": MODEL, "retry_base_s": 0.001}}, root=tmp_path)
    assert ClaudeBackend(cfg, world(), None).step([]).text == "hello"


def test_a_missing_api_key_is_one_clear_line(tmp_path, api, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(BackendError, match="ANTHROPIC_API_KEY"):
        backend(tmp_path, api)
