"""The claude backend, driven through the real anthropic SDK over real HTTP to a loopback Messages API.

The loopback API behaves as today's models do (tests/fake_messages_api.py): the default model, Claude
Sonnet 5.5, thinks unless told otherwise, so every reply here starts with a signed thinking block that
must come back intact; Claude Opus 5.5 always thinks and answers "enabled" and "disabled" thinking with
the API's 400; every reply is streamed, and a stream can break in the middle.
"""
from __future__ import annotations

import email.utils
import json
import logging
import re
import time

import anthropic
import pytest

from fake_messages_api import (MODELS, FakeMessagesAPI, conflict, cut_off, cut_stream, dropped, error_reply,
                               overloaded, prompt_too_long, rate_limited, server_error, slow, stalled_stream, stopped,
                               stream_broken_by_error, text_reply, thinking_reply, tool_reply)
from lab.agents.backends.claude import ClaudeBackend
from lab.agents.backends.claude.models import known, lineup
from lab.agents.backends.claude.plan import plan_for
from lab.agents.loop import AgentLoop
from lab.agents.tools import TOOL_NAMES, TOOLS
from lab.agents.turns import AgentWorld, BackendError, Message, ToolResult
from lab.config import parse
from lab.errors import ConfigError
from lab.store import agents, open_db

EPHEMERAL = {"type": "ephemeral"}
MODEL = "claude-sonnet-5-5"    # the default model: adaptive thinking, on unless told otherwise
OPUS = "claude-opus-5-5"       # always thinks; effort medium by default
HAIKU = "claude-haiku-4-5"     # extended thinking (budget_tokens) only, and no effort
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"   # local time with its offset
THINKING = ("thinking", "redacted_thinking")


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


def world(notebook: Notebook | None = None, name: str = "agent-3") -> AgentWorld:
    return AgentWorld(name=name, direction="confidence losses", readme="# Weak-to-strong\nMaximise PGR.",
                      tools=TOOLS, notebook=notebook or Notebook(), worktree=f"/work/{name}")


def backend(tmp_path, api, saved=None, notebook=None, **claude) -> ClaudeBackend:
    return ClaudeBackend(config(tmp_path, api, **claude), world(notebook), saved)


def texts(message: dict) -> list[str]:
    return [block["text"] for block in message["content"] if block["type"] == "text"]


def visible(message: dict) -> list[dict]:
    """An assistant message's blocks other than thinking."""
    return [block for block in message["content"] if block["type"] not in THINKING]


def thought(message: dict) -> list[dict]:
    return [block for block in message["content"] if block["type"] in THINKING]


def no_refusals(api) -> None:
    assert [r.problem for r in api.requests if r.problem] == []


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
    assert first.body["model"] == MODEL and first.body["stream"] is True
    assert first.body["max_tokens"] == 32000 and first.body["thinking"] == {"type": "adaptive"}
    assert first.body["output_config"] == {"effort": "high"}      # the model's own default, sent explicitly
    assert [t["name"] for t in first.body["tools"]] == TOOL_NAMES
    # The key's header changed across SDK versions (x-api-key, then authorization).
    assert first.headers["anthropic-version"] and "sk-test-key" in (
        first.headers.get("x-api-key") or first.headers["authorization"])

    claude.observe([ToolResult("toolu_01", "shell", "seed 0: acc 0.81"),
                    ToolResult("toolu_02", "read_file", "error: no such file", is_error=True)])
    turn = claude.step([])
    sent = api.bodies()[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][0] == api.served[0]["content"][0]   # the signed thinking block, as it was served
    assert visible(sent[1])[1] == {"type": "tool_use", "id": "toolu_01", "name": "shell",
                                   "input": {"command": "python method.py --seed 0"}}
    results = sent[2]["content"]
    assert [(r["type"], r["tool_use_id"], r["content"], r["is_error"]) for r in results] == [
        ("tool_result", "toolu_01", "seed 0: acc 0.81", False),
        ("tool_result", "toolu_02", "error: no such file", True)]
    # Ending the turn without a tool call ends the iteration: the next step is a fresh conversation.
    assert turn.calls == [] and "fresh conversation" in turn.step
    claude.step([])
    fresh = api.bodies()[2]["messages"]
    assert len(fresh) == 1 and texts(fresh[0])[0].startswith("Iteration 2.")
    no_refusals(api)


@pytest.mark.parametrize("fault", [rate_limited, overloaded, server_error, dropped, conflict],
                         ids=["429", "529-overloaded", "500", "dropped-connection", "409"])
def test_each_transient_fault_is_retried_and_counted(tmp_path, api, fault):
    api.add(fault(), fault(), text_reply("ok"))
    turn = backend(tmp_path, api).step([])
    assert turn.text == "ok" and turn.usage.retries == 2
    assert len(api.requests) == 3 and api.requests[0].body == api.requests[2].body


def test_a_timeout_is_retried(tmp_path, api):
    # a timeout well above a loaded machine's answer time (the retry must get through), the delay far past it
    api.add(slow(text_reply("too late"), delay_s=4.0), text_reply("in time"))
    turn = backend(tmp_path, api, timeout_s=1.0).step([])
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


# ---- streaming: every call streams, and a broken stream costs what it reported -----------------------
def test_a_stream_cut_in_the_middle_is_retried_and_what_it_reported_is_charged(tmp_path, api):
    api.add(cut_stream(tool_reply(("toolu_1", "shell", {"command": "python sweep.py --gamma 2"}), text="Sweeping.",
                                  input_tokens=900, cache_read=40_000, output_tokens=300), after_events=6),
            tool_reply(("toolu_1", "shell", {"command": "python sweep.py --gamma 2"}), input_tokens=900,
                       cache_read=40_000, output_tokens=300))
    claude = backend(tmp_path, api)
    turn = claude.step([])
    assert [c.id for c in turn.calls] == ["toolu_1"] and turn.usage.retries == 1
    assert len(api.requests) == 2 and api.requests[0].body == api.requests[1].body
    # message_start reported the prompt's tokens and one output token before the cut; the retry, the whole call
    prices = plan_for(config(tmp_path, api).claude, "agent-3").prices
    assert (turn.usage.input_tokens, turn.usage.cache_read_tokens, turn.usage.output_tokens) == (1800, 80_000, 301)
    assert turn.usage.dollars == pytest.approx((1800 * prices.input + 80_000 * prices.cache_read
                                                + 301 * prices.output) / 1e6)
    assert claude.state()["totals"]["broken_streams"] == 1 and claude.state()["totals"]["calls"] == 1


def test_a_stream_cut_before_it_began_costs_nothing_and_is_retried(tmp_path, api):
    api.add(cut_stream(text_reply("never whole"), after_events=0), text_reply("whole"))
    turn = backend(tmp_path, api).step([])
    assert turn.text == "whole" and turn.usage.retries == 1 and turn.usage.input_tokens == 100


def test_an_overloaded_error_event_inside_a_stream_is_retried(tmp_path, api):
    api.add(stream_broken_by_error(text_reply("half of it", input_tokens=500), after_events=4), text_reply("all of it"))
    turn = backend(tmp_path, api).step([])
    assert turn.text == "all of it" and turn.usage.retries == 1 and turn.usage.input_tokens == 600


def test_an_error_event_that_is_no_transient_fault_is_not_retried(tmp_path, api):
    api.add(stream_broken_by_error(text_reply("half"), after_events=3, kind="invalid_request_error",
                                   text="messages: bad block"), text_reply("never sent"))
    with pytest.raises(BackendError, match=r"refused the request \(the stream broke with an error event: "
                                           r"invalid_request_error: messages: bad block\)"):
        backend(tmp_path, api).step([])
    assert len(api.requests) == 1


def test_a_stream_that_stalls_past_the_timeout_is_retried(tmp_path, api):
    api.add(stalled_stream(text_reply("stuck after its start"), after_events=3, delay_s=4.0), text_reply("flowing"))
    turn = backend(tmp_path, api, timeout_s=1.0).step([])
    assert turn.text == "flowing" and turn.usage.retries == 1


def test_streams_broken_until_the_tries_run_out_still_reach_the_ledger(tmp_path, api):
    """The real loop and SQLite ledger: the step fails, and what its broken streams reported is recorded."""
    api.add(*[cut_stream(text_reply("never whole", input_tokens=2000, cache_read=10_000), after_events=5)
              for _ in range(3)])
    cfg = config(tmp_path, api, max_retries=2)
    db = open_db(tmp_path / "lab.db")
    agents.ensure(db, "agent-3", "claude", "confidence losses", "cpu 0")
    loop = AgentLoop("agent-3", cfg, db, ClaudeBackend(cfg, world(), None), toolbox=None)
    # (the SDK raises the transport's error, or, from 2.x on, wraps it as a connection error)
    with pytest.raises(BackendError, match=r"failed after 3 tries; last: .*peer closed connection without sending "
                                           r"complete message body"):
        loop.run()
    calls = list(db["model_calls"].rows_where("agent = 'agent-3'"))
    prices = plan_for(cfg.claude, "agent-3").prices
    assert [(c["input_tokens"], c["cache_read_tokens"], c["output_tokens"], c["retries"]) for c in calls] == [
        (6000, 30_000, 3, 2)]
    assert calls[0]["dollars"] == pytest.approx((6000 * prices.input + 30_000 * prices.cache_read
                                                 + 3 * prices.output) / 1e6)
    assert agents.get(db, "agent-3")["dollars"] == pytest.approx(calls[0]["dollars"])


# ---- prices: the table, a person's overrides, and never another model's ----------------------------
def test_usage_is_priced_per_million_tokens_by_the_models_own_prices(tmp_path, api):
    api.add(text_reply("done", input_tokens=1000, output_tokens=200, cache_write=3000, cache_read=50_000),
            text_reply("again", input_tokens=10, output_tokens=1, cache_write=0, cache_read=0))
    claude = backend(tmp_path, api)
    usage = claude.step([]).usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens, usage.cache_read_tokens) == (
        1000, 200, 3000, 50_000)
    # Sonnet 5.5: $2 in, $10 out (thinking included), $2.50 a 5-minute write, $0.10 a read
    assert usage.dollars == pytest.approx((1000 * 2 + 200 * 10 + 3000 * 2.5 + 50_000 * 0.1) / 1e6)
    assert usage.model == MODEL and usage.retries == 0 and usage.duration_s > 0
    claude.step([])
    totals = claude.state()["totals"]
    assert totals["calls"] == 2 and totals["input_tokens"] == 1010
    assert totals["dollars"] == pytest.approx(usage.dollars + (10 * 2 + 10) / 1e6)


@pytest.mark.parametrize("model,expected", [
    ("claude-fable-5-1", (10.0, 50.0, 12.5, 20.0, 0.25)), ("claude-opus-5-5", (4.0, 20.0, 5.0, 8.0, 0.20)),
    ("claude-sonnet-5-5", (2.0, 10.0, 2.5, 4.0, 0.10)), ("claude-haiku-4-5", (1.0, 5.0, 1.25, 2.0, 0.10)),
    ("claude-haiku-4-5-20251001", (1.0, 5.0, 1.25, 2.0, 0.10)), ("claude-sonnet-4-6", (3.0, 15.0, 3.75, 6.0, 0.30))])
def test_the_price_table_holds_every_price_of_each_model(model, expected):
    prices = known(model).prices
    assert (prices.input, prices.output, prices.cache_write, prices.cache_write_1h, prices.cache_read) == expected
    assert {"claude-fable-5-1", "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-4-5"} <= set(lineup())


def test_a_persons_prices_override_the_tables_key_by_key(tmp_path, api):
    api.add(text_reply("done", input_tokens=1000, output_tokens=100, cache_read=10_000))
    claude = backend(tmp_path, api, prices={"input": 2.2})
    assert claude.plan.overridden == ("input",)
    assert claude.step([]).usage.dollars == pytest.approx((1000 * 2.2 + 100 * 10 + 10_000 * 0.1) / 1e6)


def test_an_unknown_model_is_priced_by_the_person_alone_and_never_as_another_model(tmp_path, api):
    mine = {"input": 7.0, "output": 30.0, "cache_write": 8.75, "cache_write_1h": 14.0, "cache_read": 0.7}
    MODELS["claude-sonnet-9"] = MODELS[MODEL]       # a model the lab's table has not heard of
    try:
        api.add(text_reply("hi", input_tokens=1000, output_tokens=100, cache_write=1000))
        claude = backend(tmp_path, api, model="claude-sonnet-9", prices=mine)
        usage = claude.step([]).usage
    finally:
        del MODELS["claude-sonnet-9"]
    assert usage.dollars == pytest.approx((1000 * 7 + 100 * 30 + 1000 * 8.75) / 1e6)
    body = api.bodies()[0]
    assert "thinking" not in body and "output_config" not in body    # nothing the lab cannot know it takes
    assert body["max_tokens"] == 16000


@pytest.mark.parametrize("claude,expected", [
    ({"model": "claude-sonnet-9"},
     r"claude.model is 'claude-sonnet-9', which has no known price: set \[claude.prices\] input, output, cache_write, "
     r"cache_write_1h and cache_read \(dollars per million tokens\), or choose a model the price table knows "
     r"\(claude-fable-5-1, claude-opus-5-5, claude-sonnet-5-5, claude-haiku-4-5\)$"),
    ({"model": "claude-sonnet-9", "prices": {"input": 1.0, "output": 5.0, "cache_read": 0.1}},
     r"claude.model is 'claude-sonnet-9', which has no known price: set \[claude.prices\] cache_write and "
     r"cache_write_1h "),
    ({"models": {"agent-3": "claude-opus-9"}},
     r'claude.models."agent-3" is \'claude-opus-9\', which has no known price: set '
     r'\[claude.model_prices."claude-opus-9"\] input, output, cache_write, cache_write_1h and cache_read'),
], ids=["unknown-model", "unknown-model-some-prices", "unknown-per-agent-model"])
def test_a_model_without_a_known_price_is_one_line_naming_the_model_and_the_keys(tmp_path, claude, expected):
    cfg = parse({"claude": claude}, root=tmp_path)
    with pytest.raises(ConfigError, match=f"^lab.toml: {expected}") as error:
        plan_for(cfg.claude, "agent-3")
    assert "\n" not in str(error.value)


def test_a_one_hour_cache_marks_every_breakpoint_and_prices_its_writes_at_the_one_hour_price(tmp_path, api):
    api.add(text_reply("split by the API", input_tokens=100, output_tokens=10, cache_write=0, cache_write_1h=4000),
            text_reply("no split: the lifetime asked for", input_tokens=100, output_tokens=10, cache_write=2000))
    claude = backend(tmp_path, api, cache_ttl="1h")
    split, unsplit = claude.step([]).usage, claude.step([]).usage
    hour = {"type": "ephemeral", "ttl": "1h"}
    body = api.bodies()[0]
    assert body["tools"][-1]["cache_control"] == hour and body["system"][-1]["cache_control"] == hour
    assert body["messages"][-1]["content"][-1]["cache_control"] == hour
    assert split.cache_write_tokens == 4000 and split.dollars == pytest.approx((200 + 100 + 4000 * 4.0) / 1e6)
    assert unsplit.cache_write_tokens == 2000 and unsplit.dollars == pytest.approx((200 + 100 + 2000 * 4.0) / 1e6)


def test_cache_writes_split_by_the_api_are_priced_by_their_own_lifetime(tmp_path, api):
    prices = {"input": 2.0, "output": 10.0, "cache_write": 2.5, "cache_write_1h": 4.5, "cache_read": 0.2}
    api.add(text_reply("mixed", input_tokens=0, output_tokens=0, cache_write=1000, cache_write_1h=500))
    usage = backend(tmp_path, api, prices=prices).step([]).usage
    assert usage.cache_write_tokens == 1500 and usage.dollars == pytest.approx((1000 * 2.5 + 500 * 4.5) / 1e6)
    assert api.bodies()[0]["system"][-1]["cache_control"] == EPHEMERAL   # 5 minutes: sent as every API takes it


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


def test_a_conversation_reads_its_prefix_back_from_the_cache(tmp_path):
    """With the loopback API keeping a prompt cache as the API does, the second call reads what the first wrote."""
    with FakeMessagesAPI(caching=True) as api:
        api.add(tool_reply(("toolu_1", "shell", {"command": "ls"})), text_reply("done"))
        claude = backend(tmp_path, api)
        first = claude.step([]).usage
        claude.observe([ToolResult("toolu_1", "shell", "method.py\nw2s/")])
        second = claude.step([]).usage
    assert first.cache_read_tokens == 0 and first.cache_write_tokens > 1000
    assert second.cache_read_tokens == first.cache_write_tokens and second.cache_write_tokens < 200


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
    reset = claude.step([Message("person", "keep going")])
    # The summary is a step of its own, so its cost is recorded before the next call can fail.
    assert reset.step == "context reset: fresh conversation from a summary" and reset.calls == []
    assert reset.text.startswith("SUMMARY: sweeping gamma") and reset.usage.input_tokens == 50
    turn = claude.step([])

    summary_call, fresh_call = api.bodies()[1:]
    assert summary_call["tool_choice"] == {"type": "none"}       # not forced tool use, which the model refuses
    asked = summary_call["messages"][-1]["content"]
    assert asked[0]["type"] == "tool_result" and "summary" in asked[-1]["text"]
    assert len(fresh_call["messages"]) == 1
    opening = "\n".join(texts(fresh_call["messages"][0]))
    assert "gamma=2 best so far (commit cafe)" in opening and "gamma sweep under way" in opening
    assert "Message from the person running the lab: keep going" in opening
    assert [c.id for c in turn.calls] == ["toolu_2"] and turn.usage.input_tokens == 70
    assert claude.state()["totals"]["resets"] == 1
    no_refusals(api)


def test_state_round_trips_and_a_new_backend_resumes_answering_a_dangling_tool_use(tmp_path, api):
    api.add(tool_reply(("toolu_1", "shell", {"command": "sleep 3600"}), text="A long run."),
            tool_reply(("toolu_2", "notebook", {"action": "read"})))
    first = backend(tmp_path, api)
    first.step([])
    saved = json.loads(json.dumps(first.state()))     # the restart came before the tool's result

    resumed = backend(tmp_path, api, saved=saved)
    turn = resumed.step([])
    sent = api.bodies()[1]["messages"]
    assert sent[:2] == saved["messages"] and visible(sent[1])[1]["id"] == "toolu_1"
    assert thought(sent[1]) == thought(api.served[0])           # the thinking block survived the JSON round trip
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_1",
                                     "content": "interrupted by a restart", "is_error": True,
                                     "cache_control": EPHEMERAL}
    assert [c.id for c in turn.calls] == ["toolu_2"]
    assert resumed.state()["totals"]["calls"] == 2
    no_refusals(api)


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


# ---- replies the API cuts short, refuses, or cannot fit ----------------------------------------
def test_a_tool_call_cut_off_at_max_tokens_is_not_run_and_the_model_is_asked_for_smaller_steps(tmp_path, api):
    api.add(cut_off(tool_reply(("toolu_1", "shell", {"command": "ls"}),
                               ("toolu_2", "write_file", {"path": "method.py", "content": "def train(x):\n    ret"}),
                               text="Listing, then writing the method.")),
            text_reply("Writing it in parts."))
    claude = backend(tmp_path, api)
    turn = claude.step([])
    assert [c.id for c in turn.calls] == ["toolu_1"]   # complete: a later block began after it
    assert turn.step == ("reply cut off at max_tokens in a write_file call: not run, asked to work in smaller steps; "
                         "calling shell: ls")
    claude.observe([ToolResult("toolu_1", "shell", "method.py")])
    claude.step([])
    answers = api.bodies()[1]["messages"][-1]["content"]
    assert [(a["tool_use_id"], a["is_error"]) for a in answers] == [("toolu_1", False), ("toolu_2", True)]
    assert "max_tokens (32000 tokens)" in answers[1]["content"] and "Work in smaller steps" in answers[1]["content"]
    no_refusals(api)


def test_a_reply_whose_only_call_was_cut_off_continues_with_the_notice(tmp_path, api):
    api.add(cut_off(tool_reply(("toolu_1", "write_file", {"path": "a.py", "content": "x = ("}))),
            text_reply("Smaller steps then."))
    claude = backend(tmp_path, api)
    turn = claude.step([])
    assert turn.calls == [] and "not run" in turn.step
    claude.observe([])
    assert claude.step([]).text == "Smaller steps then."
    sent = api.bodies()[1]["messages"]
    assert len(sent) == 3 and sent[2]["content"][0]["tool_use_id"] == "toolu_1" and sent[2]["content"][0]["is_error"]


def test_a_refusal_ends_the_iteration_with_a_clear_line_and_runs_none_of_its_calls(tmp_path, api, caplog):
    api.add(tool_reply(("toolu_1", "leaderboard", {})),
            stopped(tool_reply(("toolu_2", "shell", {"command": "cat labels"}), text="I will"), "refusal"),
            text_reply("A fresh start."))
    claude = backend(tmp_path, api)
    claude.step([])
    claude.observe([ToolResult("toolu_1", "leaderboard", "1. agent-2 PGR 0.40")])
    with caplog.at_level(logging.WARNING, logger="lab.agents.backends.claude"):
        turn = claude.step([])
    assert turn.calls == [] and turn.text == "" and turn.usage.output_tokens == 20
    assert turn.step == ("refusal: the model declined to continue; iteration 1 ends and the next step starts a "
                         "fresh conversation")
    assert re.fullmatch(f"{STAMP} agent-3: the model refused to go on \\(stop_reason refusal\\); iteration 1 ends",
                        caplog.messages[-1])
    claude.step([])
    fresh = api.bodies()[2]["messages"]
    assert len(fresh) == 1 and texts(fresh[0])[0].startswith("Iteration 2.")


def test_a_reply_that_fills_the_context_window_restarts_from_the_notebook_and_the_last_steps(tmp_path, api):
    api.add(tool_reply(("toolu_1", "shell", {"command": "python sweep.py --gamma 2"}), text="Sweeping gamma."),
            stopped(tool_reply(("toolu_2", "shell", {"command": "python sweep.py --gam"}),
                               text="gamma=2 gives 0.36; next gamma=3"), "model_context_window_exceeded"),
            tool_reply(("toolu_3", "notebook", {"action": "read"})))
    claude = backend(tmp_path, api, notebook=Notebook("- sweeping gamma"))
    claude.step([])
    claude.observe([ToolResult("toolu_1", "shell", "gamma=2: PGR 0.36")])
    turn = claude.step([])
    assert turn.calls == [] and turn.usage.output_tokens == 20     # its cost counts all the same
    assert turn.step == ("context reset: the reply filled the model's context window; fresh conversation from the "
                         "notebook and the last steps")
    claude.observe([])
    assert [c.id for c in claude.step([]).calls] == ["toolu_3"]
    fresh = api.bodies()[2]["messages"]
    opening = texts(fresh[0])[0]
    assert len(fresh) == 1 and "- sweeping gamma" in opening
    assert 'you called shell {"command": "python sweep.py --gamma 2"}' in opening
    assert "result: gamma=2: PGR 0.36" in opening and "you wrote: gamma=2 gives 0.36; next gamma=3" in opening
    assert "--gam\"" not in opening          # the call it was cutting short was never made
    assert claude.state()["totals"]["resets"] == 1


@pytest.mark.parametrize("too_long", [
    prompt_too_long(),
    error_reply(400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 195000 + 8192 > "
                                              "200000, decrease input length or `max_tokens` and try again"),
    error_reply(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")],
    ids=["prompt-is-too-long", "input-and-max-tokens-exceed-context-limit", "413-request-too-large"])
def test_a_prompt_too_long_restarts_the_conversation_instead_of_crashing(tmp_path, api, too_long):
    api.add(tool_reply(("toolu_1", "read_file", {"path": "train.log"})), too_long, text_reply("Going on."))
    claude = backend(tmp_path, api)
    claude.step([])
    claude.observe([ToolResult("toolu_1", "read_file", "epoch 1 loss 0.69 " * 2000)])
    turn = claude.step([Message("person", "try ensembles")])
    assert turn.calls == [] and turn.step.startswith("context reset: the prompt passed the model's context window")
    assert len(api.requests) == 2                          # a 400 is not retried
    claude.observe([])
    assert claude.step([]).text == "Going on."
    fresh = api.bodies()[2]["messages"]
    opening = "\n".join(texts(fresh[0]))
    assert len(fresh) == 1 and 'you called read_file {"path": "train.log"}' in opening
    assert "result: epoch 1 loss 0.69" in opening and "[...]" in opening and len(opening) < 6000
    assert "Message from the person running the lab: try ensembles" in opening


def test_a_conversation_too_long_to_summarise_restarts_from_its_last_steps(tmp_path, api):
    api.add(tool_reply(("toolu_1", "shell", {"command": "python sweep.py"}), input_tokens=5000),
            prompt_too_long(), text_reply("Going on."))
    claude = backend(tmp_path, api, context_tokens=2000)
    claude.step([])
    claude.observe([ToolResult("toolu_1", "shell", "gamma=2: PGR 0.36")])
    turn = claude.step([])
    assert api.bodies()[1]["tool_choice"] == {"type": "none"}       # it was the summary that did not fit
    assert turn.step.startswith("context reset: too long to summarise")
    claude.step([])
    assert "result: gamma=2: PGR 0.36" in texts(api.bodies()[2]["messages"][0])[0]


def test_an_opening_too_long_for_the_model_is_one_clear_error(tmp_path, api):
    api.add(prompt_too_long())
    with pytest.raises(BackendError, match=r"^the opening of iteration 1 alone is too long: .*prompt is too long: "
                                           r"215000 tokens > 200000 maximum.*notebook has \d+ characters"):
        backend(tmp_path, api).step([])


def test_every_successful_calls_cost_reaches_the_ledger_when_the_next_call_fails(tmp_path, api):
    """The real loop and SQLite ledger: a summary's cost is kept though the call after it is refused."""
    api.add(text_reply("A long explanation that never", stop_reason="max_tokens", input_tokens=3000),
            text_reply("SUMMARY: explained half of it", input_tokens=40, output_tokens=10),
            error_reply(401, "authentication_error", "invalid x-api-key"))
    cfg = config(tmp_path, api, context_tokens=2000)
    db = open_db(tmp_path / "lab.db")
    agents.ensure(db, "agent-3", "claude", "confidence losses", "cpu 0")
    loop = AgentLoop("agent-3", cfg, db, ClaudeBackend(cfg, world(), None), toolbox=None)
    with pytest.raises(BackendError, match="HTTP 401 authentication_error"):
        loop.run()
    calls = list(db["model_calls"].rows_where("agent = 'agent-3'", order_by="id"))
    assert [(c["input_tokens"], c["output_tokens"]) for c in calls] == [(3000, 20), (40, 10)]
    assert agents.get(db, "agent-3")["dollars"] == pytest.approx(sum(c["dollars"] for c in calls))
    assert agents.backend_state(db, "agent-3")["totals"]["resets"] == 1


# ---- retry signals -------------------------------------------------------------------------------
def test_x_should_retry_true_retries_what_would_not_be(tmp_path, api):
    api.add(error_reply(400, "invalid_request_error", "transient", {"x-should-retry": "true"}), text_reply("ok"))
    turn = backend(tmp_path, api).step([])
    assert turn.text == "ok" and turn.usage.retries == 1


def test_x_should_retry_false_is_obeyed(tmp_path, api):
    api.add(overloaded({"x-should-retry": "false"}), text_reply("never sent"))
    with pytest.raises(BackendError, match=r"refused the request \(HTTP 529 overloaded_error: Overloaded "
                                           r"\(x-should-retry: false\)\)"):
        backend(tmp_path, api).step([])
    assert len(api.requests) == 1


def test_retry_after_ms_comes_before_retry_after(tmp_path, api):
    api.add(rate_limited(retry_after_s=30, headers={"retry-after-ms": "400"}), text_reply("ok"))
    assert backend(tmp_path, api).step([]).usage.retries == 1
    assert 0.35 <= api.requests[1].at - api.requests[0].at < 5


def test_retry_after_as_an_http_date_is_honoured(tmp_path, api):
    api.add(rate_limited(email.utils.formatdate(time.time() + 2, usegmt=True)), text_reply("ok"))
    backend(tmp_path, api).step([])
    assert 0.9 <= api.requests[1].at - api.requests[0].at < 5


def test_a_long_retry_after_is_capped_and_each_retry_is_logged_with_a_timestamp(tmp_path, api, caplog):
    api.add(rate_limited(retry_after_s=3600), text_reply("ok"))
    with caplog.at_level(logging.WARNING, logger="lab.agents.backends.claude"):
        backend(tmp_path, api, retry_max_wait_s=0.3).step([])
    assert 0.25 <= api.requests[1].at - api.requests[0].at < 3
    assert re.fullmatch(f"{STAMP} claude API try 1 of 4 failed \\(HTTP 429 rate_limit_error: Number of request "
                        "tokens has exceeded your rate limit\\); retrying in 0.3 s", caplog.messages[-1])


# ---- thinking and effort as each model takes them ---------------------------------------------------
def test_a_model_that_always_thinks_gets_adaptive_thinking_and_its_signed_blocks_come_back_intact(tmp_path, api):
    api.add(thinking_reply("The teacher is noisy near 0.5: filter it.", ("toolu_1", "shell",
                           {"command": "python filter.py"}), text="Filtering.", redacted=True),
            tool_reply(("toolu_2", "git_commit", {"message": "filter"}), thinking_tokens=700),
            text_reply("Done."))
    claude = backend(tmp_path, api, model=OPUS)
    turn = claude.step([])
    assert turn.text == "Filtering." and [c.id for c in turn.calls] == ["toolu_1"]
    claude.observe([ToolResult("toolu_1", "shell", "PGR 0.41")])
    claude.step([])
    resumed = backend(tmp_path, api, saved=json.loads(json.dumps(claude.state())), model=OPUS)
    resumed.observe([ToolResult("toolu_2", "git_commit", "commit 1a2b3c4")])
    assert resumed.step([]).text == "Done."     # the loopback API refuses a thinking block changed on the way back

    first, second, third = api.bodies()
    assert all(body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "medium"}
               for body in (first, second, third))
    passed_back = second["messages"][1]["content"]
    assert [b["type"] for b in passed_back] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert passed_back[:2] == api.served[0]["content"][:2]
    # a thinking block the model added of its own accord, its text empty as the default display returns it
    assert third["messages"][3]["content"][0] == api.served[1]["content"][0]
    assert third["messages"][3]["content"][0]["thinking"] == ""
    no_refusals(api)


def test_the_loopback_api_refuses_what_the_always_thinking_models_refuse(api):
    """The loopback API can fail a test as the real one would: these are the 400s the lab must never provoke."""
    client = anthropic.Anthropic(api_key="sk-test-key", base_url=api.url, max_retries=0)
    ask = dict(model=OPUS, max_tokens=4096, messages=[{"role": "user", "content": "hi"}])
    for thinking, refused in (({"type": "disabled"}, "disabled"), ({"type": "enabled", "budget_tokens": 2048},
                                                                   "enabled")):
        with pytest.raises(anthropic.BadRequestError, match=f'"thinking.type.{refused}" is not supported for this '
                                                            'model. Use "thinking.type.adaptive"'):
            client.messages.create(**ask, thinking=thinking)
    with pytest.raises(anthropic.BadRequestError, match="forced tool use is not supported"):
        client.messages.create(**ask, tools=TOOLS[:1], tool_choice={"type": "any"})
    api.add(text_reply("signed for Opus 5.5"))
    with client.messages.stream(**ask) as stream:
        served = stream.get_final_message()
    block = served.content[0]
    assert block.type == "thinking" and block.signature
    answer = [{"role": "user", "content": "hi"},
              {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": block.signature},
                                                {"type": "text", "text": "signed for Opus 5.5"}]},
              {"role": "user", "content": "go on"}]
    with pytest.raises(anthropic.BadRequestError, match="invalid `signature` in `thinking` block"):
        client.messages.create(**{**ask, "model": MODEL, "messages": answer})   # another model's thinking


def test_nothing_a_model_refuses_is_ever_sent(tmp_path, api):
    """Every model of the lab's table at every thinking setting and effort it lists: planned and refused before any
    call (a ConfigError), or sent and taken by the loopback API; never a 400."""
    sent = refused_here = 0
    for name in [m for m in MODELS if known(m)]:
        table = known(name)
        for thinking in ("adaptive", "off"):
            for effort in (None, *table.efforts):
                for budget in (0, 2048) if table.thinking == "extended" else (0,):
                    claude = {"model": name, "thinking": thinking, "thinking_budget": budget}
                    if effort:
                        claude["effort"] = effort
                    try:
                        step = backend(tmp_path, api, **claude)
                    except ConfigError:
                        refused_here += 1
                        continue
                    api.add(tool_reply(("toolu_1", "notebook", {"action": "read"})), text_reply("ok"))
                    step.step([])
                    step.observe([ToolResult("toolu_1", "notebook", "notes")])
                    step.step([])
                    sent += 1
    no_refusals(api)
    assert sent > 50 and refused_here >= 10


@pytest.mark.parametrize("model,effort,sent", [
    ("claude-sonnet-5-5", None, {"type": "between_tools"}), ("claude-sonnet-5", None, {"type": "disabled"}),
    ("claude-opus-5", "high", {"type": "disabled"}), ("claude-sonnet-4-6", None, None), (HAIKU, None, None)])
def test_thinking_off_asks_each_model_in_its_own_words(tmp_path, api, model, effort, sent):
    claude = backend(tmp_path, api, model=model, thinking="off", **({"effort": effort} if effort else {}))
    api.add(text_reply("no deep thought"))
    claude.step([])
    assert api.bodies()[0].get("thinking") == sent
    no_refusals(api)


@pytest.mark.parametrize("claude,expected", [
    ({"model": OPUS, "thinking": "off"},
     r'claude.thinking = "off", but claude-opus-5-5 \(agent-3\) always thinks and refuses thinking off: set thinking = '
     r'"adaptive" and a lower effort \(claude.effort or claude.efforts\)'),
    ({"thinking": "off", "effort": "max"},
     r'claude.thinking = "off", but claude-sonnet-5-5 \(agent-3\) turns thinking off only at effort low, medium or '
     r"high, not max"),
    ({"model": HAIKU, "effort": "low"},
     r"claude.effort = 'low', but claude-haiku-4-5 \(agent-3\) takes no effort parameter; its thinking is extended: "
     r"set claude.thinking_budget"),
    ({"model": "claude-sonnet-4-6", "effort": "xhigh"},
     r"claude.effort = 'xhigh', but claude-sonnet-4-6 \(agent-3\) takes effort low, medium, high or max"),
    ({"efforts": {"agent-3": "xhigh"}, "models": {"agent-3": "claude-opus-4-6"}},
     r'claude.efforts."agent-3" = \'xhigh\', but claude-opus-4-6 \(agent-3\) takes effort low, medium, high or max'),
    ({"max_tokens": 200_000}, r"claude.max_tokens \(200000\) is more than claude-sonnet-5-5 writes in one reply "
                              r"\(128000\)"),
    ({"model": HAIKU, "thinking_budget": 20_000},
     r"claude.thinking_budget \(20000\) must be below claude-haiku-4-5's max_tokens \(16000\)"),
], ids=["off-on-an-always-thinking-model", "between-tools-at-max", "effort-to-a-model-without", "effort-not-taken",
        "per-agent-effort-not-taken", "max-tokens-above-the-models-output", "budget-above-max-tokens"])
def test_what_a_model_would_refuse_is_one_line_before_any_call(tmp_path, claude, expected):
    cfg = parse({"claude": claude}, root=tmp_path)
    with pytest.raises(ConfigError, match=f"^lab.toml: {expected}") as error:
        plan_for(cfg.claude, "agent-3")
    assert "\n" not in str(error.value)


def test_extended_thinking_goes_only_to_a_model_that_needs_it_and_its_blocks_come_back_first(tmp_path, api):
    api.add(thinking_reply("Filter near 0.5.", ("toolu_1", "shell", {"command": "python filter.py"})),
            text_reply("Done."))
    assert "thinking" not in plan_for(config(tmp_path, api, model=HAIKU).claude, "agent-3").options()
    claude = backend(tmp_path, api, model=HAIKU, thinking_budget=2048)
    claude.step([])
    claude.observe([ToolResult("toolu_1", "shell", "PGR 0.41")])
    claude.step([])
    first, second = api.bodies()
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048} and first["max_tokens"] == 16000
    assert "output_config" not in first                        # Haiku 4.5 takes no effort
    assert second["messages"][1]["content"][0] == api.served[0]["content"][0]
    # budget_tokens never reaches a model with adaptive thinking, whatever thinking_budget says
    assert plan_for(config(tmp_path, api, thinking_budget=2048).claude, "agent-3").thinking == {"type": "adaptive"}
    no_refusals(api)


def test_each_agent_calls_its_own_model_at_its_own_effort_and_pays_its_prices(tmp_path, api):
    cfg = config(tmp_path, api, models={"agent-3": OPUS}, efforts={"agent-3": "max"})
    api.add(text_reply("opus", input_tokens=1000, output_tokens=100), text_reply("sonnet", input_tokens=1000,
                                                                                  output_tokens=100))
    third = ClaudeBackend(cfg, world(name="agent-3"), None).step([]).usage
    fourth = ClaudeBackend(cfg, world(name="agent-4"), None).step([]).usage
    assert [(b["model"], b["output_config"]["effort"]) for b in api.bodies()] == [(OPUS, "max"), (MODEL, "high")]
    assert third.model == OPUS and third.dollars == pytest.approx((1000 * 4 + 100 * 20) / 1e6)
    assert fourth.model == MODEL and fourth.dollars == pytest.approx((1000 * 2 + 100 * 10) / 1e6)


def test_a_conversation_another_model_began_restarts_rather_than_sending_it_that_models_thinking(tmp_path, api):
    api.add(tool_reply(("toolu_1", "shell", {"command": "python sweep.py"}), text="Sweeping."),
            tool_reply(("toolu_2", "notebook", {"action": "read"})))
    before = backend(tmp_path, api)
    before.step([])
    before.observe([ToolResult("toolu_1", "shell", "gamma=2: PGR 0.36")])
    after = backend(tmp_path, api, saved=json.loads(json.dumps(before.state())), models={"agent-3": OPUS})
    assert [c.id for c in after.step([]).calls] == ["toolu_2"]
    sent = api.bodies()[1]
    assert sent["model"] == OPUS and len(sent["messages"]) == 1
    assert "result: gamma=2: PGR 0.36" in texts(sent["messages"][0])[0]
    assert after.state()["totals"]["resets"] == 1
    no_refusals(api)


def test_a_conversation_saved_before_settings_were_kept_restarts_where_thinking_now_needs_it(tmp_path, api):
    api.add(tool_reply(("toolu_1", "shell", {"command": "python sweep.py"}), text="Sweeping."),
            thinking_reply("Fresh conversation; the sweep ran.", ("toolu_2", "notebook", {"action": "read"})))
    before = backend(tmp_path, api, model=HAIKU)
    before.step([])
    before.observe([ToolResult("toolu_1", "shell", "gamma=2: PGR 0.36")])
    saved = {k: v for k, v in json.loads(json.dumps(before.state())).items() if k != "settings"}
    after = backend(tmp_path, api, saved=saved, model=HAIKU, thinking_budget=2048)
    assert [c.id for c in after.step([]).calls] == ["toolu_2"]
    assert len(api.bodies()[1]["messages"]) == 1 and after.state()["totals"]["resets"] == 1
    no_refusals(api)


@pytest.mark.parametrize("claude,max_tokens,timeout_s", [
    ({}, 32000, 900.0), ({"model": HAIKU}, 16000, 600.0), ({"max_tokens": 64000}, 64000, 1800.0),
    ({"max_tokens": 64000, "timeout_s": 120}, 64000, 120.0)])
def test_max_tokens_defaults_to_each_models_own_and_the_timeout_follows_it(tmp_path, api, claude, max_tokens,
                                                                          timeout_s):
    claude_backend = backend(tmp_path, api, **claude)
    assert (claude_backend.plan.max_tokens, claude_backend.plan.timeout_s) == (max_tokens, timeout_s)
    assert claude_backend.client.timeout.read == timeout_s and claude_backend.client.timeout.connect == 5.0
    api.add(text_reply("sized"))
    claude_backend.step([])
    assert api.bodies()[0]["max_tokens"] == max_tokens


# ---- configuration --------------------------------------------------------------------------------
@pytest.mark.parametrize("claude,expected", [
    ({"cache_ttl": "2h"}, "claude.cache_ttl: input should be '5m' or '1h', got '2h'"),
    ({"thinking": "sometimes"}, "claude.thinking: input should be 'adaptive' or 'off', got 'sometimes'"),
    ({"effort": "extreme"}, "claude.effort: input should be 'low', 'medium', 'high', 'xhigh' or 'max', got 'extreme'"),
    ({"thinking_budget": 500}, r"claude.thinking_budget must be 0 \(off\) or at least 1024 \(.*\), got 500"),
    ({"thinking_budget": 8192, "max_tokens": 8192},
     r"claude.thinking_budget \(8192\) must be below claude.max_tokens \(8192\)"),
    ({"models": {"bob": OPUS}}, r"claude.models: 'bob' is not an agent's name \(expected names like agent-3\)"),
    ({"efforts": {"bob": "low"}}, r"claude.efforts: 'bob' is not an agent's name \(expected names like agent-3\)"),
    ({"model_prices": {MODEL: {"input": 1.0}}}, "claude.model_prices names 'claude-sonnet-5-5', which is claude.model"),
    ({"retry_max_wait_s": 0}, "claude.retry_max_wait_s: input should be greater than 0, got 0"),
], ids=["ttl", "thinking", "effort", "thinking-minimum", "thinking-above-max-tokens", "agent-name", "effort-agent-name",
        "prices-of-the-default-model", "retry-wait"])
def test_a_bad_claude_setting_is_one_line_naming_the_field(tmp_path, claude, expected):
    with pytest.raises(ConfigError, match=f"^lab.toml: {expected}") as error:
        parse({"claude": {"model": MODEL, **claude}}, root=tmp_path)
    assert "\n" not in str(error.value)


def test_per_agent_models_and_efforts_must_name_agents_of_the_lab(tmp_path):
    claude = {"models": {"agent-12": OPUS}, "efforts": {"agent-12": "low"}}
    cfg = parse({"agents": {"count": 12}, "claude": claude}, root=tmp_path)
    assert (cfg.claude.model_for("agent-12"), cfg.claude.effort_for("agent-12")) == (OPUS, "low")
    with pytest.raises(ConfigError, match=r"^lab.toml: claude.models names agent-12, not an agent of this lab "
                                          r"\(agents: agent-1 to agent-9\)$"):
        parse({"claude": claude}, root=tmp_path)


# ---- about what an hour costs, said before anything starts ----------------------------------------
def test_the_estimate_prices_a_measured_agent_hour_with_each_agents_own_prices_and_cache_lifetime(tmp_path):
    from lab.agents.backends.claude.estimate import outlook, typical_hour

    hour = known(MODEL).hour
    assert hour["cache_read"] > 10 * hour["cache_write"]        # the bench's cache-read share, in the table
    cfg = parse({"agents": {"count": 3}, "claude": {"models": {"agent-3": OPUS}, "prices": {"output": 12.0}}},
                root=tmp_path)
    seen = outlook(cfg)
    sonnet = (hour["output"] * 12.0 + hour["cache_write"] * 2.5 + hour["cache_read"] * 0.1) / 1e6
    opus = known(OPUS).prices.of(known(OPUS).hour)
    assert seen.hourly == pytest.approx({"agent-1": sonnet, "agent-2": sonnet, "agent-3": opus})
    assert seen.lab_hourly == pytest.approx(2 * sonnet + opus) and seen.models == f"{MODEL} x2, {OPUS} x1"
    # a price lab.toml sets over the table's is said at every start: one left from another model shows
    assert seen.overrides() == [f"  prices of {MODEL} from lab.toml, not the table: output $12 (the table's: $10)"]
    assert seen.overrides()[0] in seen.lines()
    hourly = outlook(parse({"claude": {"cache_ttl": "1h"}}, root=tmp_path)).hourly["agent-1"]
    assert hourly == pytest.approx((hour["output"] * 10 + hour["cache_write"] * 4.0 + hour["cache_read"] * 0.1) / 1e6)
    mine = {"input": 1.0, "output": 1.0, "cache_write": 1.0, "cache_write_1h": 1.0, "cache_read": 1.0}
    unknown = outlook(parse({"claude": {"model": "claude-sonnet-9", "prices": mine}}, root=tmp_path))
    assert unknown.hourly["agent-1"] == pytest.approx(sum(typical_hour().values()) / 1e6)
