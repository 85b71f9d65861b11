"""A loopback HTTP server that speaks the Anthropic Messages API, for testing the claude backend.

It answers `POST /v1/messages` by replaying a scripted list of replies in order, or by asking a
responder for each: assistant messages (text, tool_use, thinking and redacted_thinking blocks; any
stop reason: a cut-off at max_tokens, a refusal, a full context window), API errors with their real
status codes, headers (retry-after, retry-after-ms, x-should-retry) and bodies (a 400 "prompt is too
long"), a dropped connection, or a reply slower than the client's timeout. A request with `"stream":
true` is answered as the API streams, in server-sent events (message_start with the prompt's usage,
each content block's start, deltas and stop, message_delta with the stop reason and the usage so far,
message_stop, pings between), and a streamed reply can break: the connection cut after so many
events, an `error` event in the middle (overloaded), or a pause past the client's timeout.

It behaves as the models do (MODELS, written from Anthropic's model, thinking and effort pages, not
from the lab's own table): Claude Fable 5.1 and Opus 5.5 always think and answer `"enabled"` and
`"disabled"` thinking with the API's 400; Sonnet 5.5 thinks unless told `between_tools`, and refuses
`"disabled"`; Haiku 4.5 takes only budget_tokens and no effort; each model takes its own effort levels;
the 5.5 models refuse forced tool use. A model that thinks starts every reply with a thinking block
(its text empty, as the default display "omitted" returns it), signed for the model and the
conversation; a thinking block that comes back changed, or into another model's or conversation's
request, is refused.

It checks each request the way the real API does (roles alternate, every tool_use is answered by a
tool_result first in the next user message, at most four cache breakpoints with a valid ttl,
extended thinking's budget below max_tokens, thinking blocks passed back unchanged and first in the
assistant turn whose tool calls are being answered), so a malformed request fails the test the way it
would fail against the real service. With `caching=True` it keeps a prompt cache as the API does (a
prefix cached at each cache_control breakpoint for its lifetime, looked up at the block boundaries up
to 20 blocks before a breakpoint, a hit refreshing it) and reports the prompt's input, cache-write and
cache-read tokens from it, on the clock it is given (bench/bench_claude_cost.py).

    with FakeMessagesAPI([tool_reply(("toolu_1", "shell", {"command": "ls"})), text_reply("done")]) as api:
        client = anthropic.Anthropic(api_key="test", base_url=api.url)
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

_ids = itertools.count(1)
ALL_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
UP_TO_HIGH = frozenset({"low", "medium", "high"})
LOOKBACK_BLOCKS = 20


@dataclass(frozen=True)
class ApiModel:
    """How the API treats one model's requests."""
    thinks_by_default: bool             # thinks when the request has no `thinking`
    thinking_types: frozenset[str]      # the thinking.type values it takes
    efforts: frozenset[str]             # output_config.effort levels it takes; empty: none
    default_effort: str | None
    off_efforts: frozenset[str] | None = None   # the efforts at which "disabled" or "between_tools" is taken
    forced_tools: bool = True           # takes tool_choice "any" or "tool"
    min_cache: int = 1024               # the shortest prefix it caches, in tokens


MODELS = {
    "claude-fable-5-1": ApiModel(True, frozenset({"adaptive"}), ALL_EFFORTS, "high", forced_tools=False, min_cache=512),
    "claude-opus-5-5": ApiModel(True, frozenset({"adaptive"}), ALL_EFFORTS, "medium", forced_tools=False),
    "claude-sonnet-5-5": ApiModel(True, frozenset({"adaptive", "between_tools"}), ALL_EFFORTS, "high", UP_TO_HIGH,
                                  forced_tools=False, min_cache=512),
    "claude-sonnet-5": ApiModel(True, frozenset({"adaptive", "disabled"}), ALL_EFFORTS, "high"),
    "claude-opus-5": ApiModel(True, frozenset({"adaptive", "disabled"}), ALL_EFFORTS, "high", UP_TO_HIGH),
    "claude-fable-5": ApiModel(True, frozenset({"adaptive"}), ALL_EFFORTS, "high", min_cache=512),
    "claude-opus-4-8": ApiModel(False, frozenset({"adaptive", "disabled"}), ALL_EFFORTS, "high"),
    "claude-opus-4-7": ApiModel(False, frozenset({"adaptive", "disabled"}), ALL_EFFORTS, "high"),
    "claude-opus-4-6": ApiModel(False, frozenset({"adaptive", "enabled", "disabled"}), ALL_EFFORTS - {"xhigh"},
                                "high", min_cache=4096),
    "claude-sonnet-4-6": ApiModel(False, frozenset({"adaptive", "enabled", "disabled"}), ALL_EFFORTS - {"xhigh"},
                                  "high"),
    "claude-haiku-4-5": ApiModel(False, frozenset({"enabled", "disabled"}), frozenset(), None, min_cache=4096),
}
ADAPTIVE_ONLY = ('"thinking.type.{kind}" is not supported for this model. Use "thinking.type.adaptive" and '
                 '"output_config.effort" to control thinking behavior.')


@dataclass
class Reply:
    status: int = 200
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False          # close the connection without answering
    delay_s: float = 0.0        # wait this long before answering (past the client's timeout: a timeout)
    cut_after: int | None = None        # streamed: close the connection after this many events
    pause_after: int | None = None      # streamed: after this many events, wait delay_s before going on
    stream_error: dict | None = None    # streamed: after cut_after events, this error event ends the stream
    thinking_tokens: int = 0    # tokens of the thinking block the server adds where the model thinks


@dataclass
class Request:
    path: str
    headers: dict[str, str]     # lower-cased names
    body: dict[str, Any]
    at: float                   # time.monotonic() when it arrived
    problem: str | None = None  # why the real API would have refused it, if it would


def usage(input_tokens: int = 100, output_tokens: int = 20, cache_write: int = 0, cache_read: int = 0,
          cache_write_1h: int | None = None) -> dict:
    """The usage object; with cache_write_1h, the API's split of cache writes by lifetime (5 minutes, 1 hour)."""
    body = {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_write + (cache_write_1h or 0), "cache_read_input_tokens": cache_read}
    if cache_write_1h is not None:
        body["cache_creation"] = {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": cache_write_1h}
    return body


def message(content: list[dict], stop_reason: str, thinking_tokens: int = 0, **tokens) -> Reply:
    return Reply(body={"id": f"msg_{next(_ids):06d}", "type": "message", "role": "assistant", "model": None,
                       "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                       "usage": usage(**tokens)}, thinking_tokens=thinking_tokens)


def text_reply(text: str, stop_reason: str = "end_turn", **tokens) -> Reply:
    return message([{"type": "text", "text": text}], stop_reason, **tokens)


def tool_reply(*calls: tuple[str, str, dict], text: str = "", **tokens) -> Reply:
    """An assistant turn that calls tools: each call is (id, name, input)."""
    content = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": i, "name": n, "input": inp} for i, n, inp in calls]
    return message(content, "tool_use", **tokens)


def stopped(reply: Reply, stop_reason: str) -> Reply:
    """The same assistant message with another stop reason: "max_tokens", "refusal", "model_context_window_exceeded"."""
    return Reply(reply.status, {**reply.body, "stop_reason": stop_reason}, reply.headers,
                 thinking_tokens=reply.thinking_tokens)


def cut_off(reply: Reply) -> Reply:
    """Cut off at max_tokens: the API sends what was written, a last tool_use's input perhaps incomplete."""
    return stopped(reply, "max_tokens")


def thinking_block(thinking: str) -> dict:
    """A thinking block as scripted; the server signs it for the request's model and conversation as it serves it."""
    return {"type": "thinking", "thinking": thinking, "signature": None}


def redacted_thinking_block() -> dict:
    return {"type": "redacted_thinking", "data": None}


def thinking_reply(thinking: str, *calls: tuple[str, str, dict], text: str = "", redacted: bool = False,
                   **tokens) -> Reply:
    """An assistant turn that thinks: a thinking (and a redacted_thinking) block first, then text and calls."""
    content = [thinking_block(thinking)] + ([redacted_thinking_block()] if redacted else [])
    content += [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": i, "name": n, "input": inp} for i, n, inp in calls]
    return message(content, "tool_use" if calls else "end_turn", **tokens)


def error_reply(status: int, kind: str, text: str, headers: dict[str, str] | None = None) -> Reply:
    """An API error as the service sends it, e.g. error_reply(529, "overloaded_error", "Overloaded")."""
    return Reply(status=status, headers={"request-id": f"req_{next(_ids):06d}", **(headers or {})},
                 body={"type": "error", "error": {"type": kind, "message": text}})


def rate_limited(retry_after_s: float | str = 0, headers: dict[str, str] | None = None) -> Reply:
    """A 429; retry_after_s is the retry-after header's value (seconds, or an HTTP date as a string)."""
    return error_reply(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit",
                       {"retry-after": str(retry_after_s), **(headers or {})})


def overloaded(headers: dict[str, str] | None = None) -> Reply:
    return error_reply(529, "overloaded_error", "Overloaded", headers)


def conflict() -> Reply:
    return error_reply(409, "conflict_error", "Conflict: a concurrent request holds the lock")


def prompt_too_long(tokens: int = 215_000, window: int = 200_000) -> Reply:
    return error_reply(400, "invalid_request_error", f"prompt is too long: {tokens} tokens > {window} maximum")


def server_error() -> Reply:
    return error_reply(500, "api_error", "Internal server error")


def dropped() -> Reply:
    return Reply(drop=True)


def slow(reply: Reply, delay_s: float) -> Reply:
    return Reply(reply.status, reply.body, reply.headers, delay_s=delay_s, thinking_tokens=reply.thinking_tokens)


def cut_stream(reply: Reply, after_events: int) -> Reply:
    """The reply streamed, its connection closed after so many events (message_start is the first)."""
    return Reply(reply.status, reply.body, reply.headers, cut_after=after_events, thinking_tokens=reply.thinking_tokens)


def stalled_stream(reply: Reply, after_events: int, delay_s: float) -> Reply:
    """The reply streamed, silent for delay_s after so many events (past the client's timeout: a read timeout)."""
    return Reply(reply.status, reply.body, reply.headers, delay_s=delay_s, pause_after=after_events,
                 thinking_tokens=reply.thinking_tokens)


def stream_broken_by_error(reply: Reply, after_events: int, kind: str = "overloaded_error",
                           text: str = "Overloaded") -> Reply:
    """The reply streamed, then an `error` event after so many events: how the API ends a stream it cannot finish."""
    return Reply(reply.status, reply.body, reply.headers, cut_after=after_events,
                 stream_error={"type": "error", "error": {"type": kind, "message": text}},
                 thinking_tokens=reply.thinking_tokens)


# ---- signatures: thinking blocks are tied to the model and the conversation ------------------------
def _mac(*parts) -> str:
    return hashlib.sha256(":".join(["fake-messages-api", *map(str, parts)]).encode()).hexdigest()[:32]


def conversation_of(body: dict) -> str:
    """The conversation a request continues: its first message, which a conversation keeps to its end."""
    messages = body.get("messages") or [{}]
    return hashlib.sha256(json.dumps(_uncached(messages[0]), sort_keys=True).encode()).hexdigest()[:16]


def _sign(model: str, conversation: str, text: str, tokens: int) -> str:
    nonce = next(_ids)
    return f"{tokens}.{nonce}.{_mac(model, conversation, text, tokens, nonce)}"


def _verify(signed: str | None, model: str, conversation: str, text: str) -> int | None:
    """The thinking tokens a signature holds, or None where it is not one this server made for this request."""
    try:
        tokens, nonce, mac = (signed or "").split(".")
        ok = mac == _mac(model, conversation, text, int(tokens), int(nonce))
    except ValueError:
        return None
    return int(tokens) if ok else None


def _served_content(content: list[dict], body: dict, thinks: bool, thinking_tokens: int) -> list[dict]:
    """The reply's blocks as served: thinking signed, and a thinking block first where the model thinks."""
    model, conversation = body.get("model"), conversation_of(body)
    content = copy.deepcopy(content)
    if thinks and not any(b["type"] in ("thinking", "redacted_thinking") for b in content):
        content.insert(0, {"type": "thinking", "thinking": "", "signature": None})
    for block in content:
        if block["type"] == "thinking" and block.get("signature") is None:
            tokens = thinking_tokens or max(1, len(block["thinking"]) // 4)
            block["signature"] = _sign(model, conversation, block["thinking"], tokens)
        elif block["type"] == "redacted_thinking" and block.get("data") is None:
            block["data"] = _sign(model, conversation, "redacted", thinking_tokens or 8)
    return content


# ---- what the API refuses -------------------------------------------------------------------------
def _uncached(value):
    if isinstance(value, dict):
        return {k: _uncached(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_uncached(v) for v in value]
    return value


def cache_problem(blocks: list[dict], where: str) -> str | None:
    for block in blocks:
        control = block.get("cache_control")
        if control is None:
            continue
        if block.get("type") in ("thinking", "redacted_thinking"):
            return f"{where}: cache_control cannot be set on {block['type']} blocks"
        if control.get("type") != "ephemeral" or set(control) - {"type", "ttl"}:
            return f"{where}.cache_control: expected {{'type': 'ephemeral', 'ttl'?: ...}}, got {control}"
        if control.get("ttl", "5m") not in ("5m", "1h"):
            return f"{where}.cache_control.ttl: Input should be '5m' or '1h'"
    return None


def effort_of(body: dict, spec: ApiModel) -> str | None:
    return (body.get("output_config") or {}).get("effort") or spec.default_effort


def thinks(body: dict, spec: ApiModel) -> bool:
    kind = (body.get("thinking") or {}).get("type")
    return spec.thinks_by_default if kind is None else kind in ("adaptive", "enabled")


def model_problem(body: dict, spec: ApiModel) -> str | None:
    """What this model refuses of the request's thinking, effort and tool choice."""
    kind = (body.get("thinking") or {}).get("type")
    if kind is not None and kind not in spec.thinking_types:
        if spec.thinking_types == {"adaptive"}:
            return ADAPTIVE_ONLY.format(kind=kind)
        if "between_tools" in spec.thinking_types and kind == "disabled":
            return ('"thinking.type.disabled" is not supported for this model. Use "thinking.type.between_tools" to '
                    'turn off up-front thinking.')
        return f'"thinking.type.{kind}" is not supported for this model.'
    effort = (body.get("output_config") or {}).get("effort")
    if effort is not None and not spec.efforts:
        return "output_config.effort: this model does not support the effort parameter"
    if effort is not None and effort not in spec.efforts:
        return f"output_config.effort: Input should be {', '.join(repr(e) for e in sorted(spec.efforts))}"
    if kind in ("disabled", "between_tools") and spec.off_efforts and effort_of(body, spec) not in spec.off_efforts:
        return f'"thinking.type.{kind}" is not supported at effort {effort_of(body, spec)}'
    forced = (body.get("tool_choice") or {}).get("type") in ("any", "tool")
    if forced and not spec.forced_tools:
        return "tool_choice: forced tool use is not supported for this model; use tool_choice auto or none"
    if forced and thinks(body, spec):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def thinking_problem(body: dict) -> str | None:
    """What the API checks of thinking: the blocks passed back, the budget of extended thinking, its first blocks."""
    model, conversation = body.get("model"), conversation_of(body)
    for index, msg in enumerate(body.get("messages") or []):
        for block in msg["content"] if isinstance(msg["content"], list) else []:
            if block["type"] == "thinking" and _verify(block.get("signature"), model, conversation,
                                                       block.get("thinking", "")) is None:
                return f"messages.{index}: invalid `signature` in `thinking` block"
            if block["type"] == "redacted_thinking" and _verify(block.get("data"), model, conversation,
                                                                "redacted") is None:
                return f"messages.{index}: invalid `data` in `redacted_thinking` block"
    thinking = body.get("thinking")
    if not thinking or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens", 0)
    if budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if budget >= body["max_tokens"]:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    messages = body["messages"]
    answering = len(messages) >= 2 and any(b["type"] == "tool_result" for b in messages[-1]["content"])
    if answering and messages[-2]["content"][0]["type"] not in ("thinking", "redacted_thinking"):
        return (f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{messages[-2]['content'][0]['type']}`. When `thinking` is enabled, a final `assistant` message "
                "must start with a thinking block")
    return None


def request_problem(body: dict) -> str | None:
    """Why the real Messages API would refuse this request body with a 400, or None."""
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "user":
        return "messages: the first message must use the user role"
    breakpoints = sum("cache_control" in block for block in body.get("tools") or [])
    problem = cache_problem(body.get("tools") or [], "tools")
    system = body.get("system")
    if isinstance(system, list):
        breakpoints += sum("cache_control" in block for block in system)
        problem = problem or cache_problem(system, "system")
    if problem:
        return problem
    unanswered: set[str] = set()
    for index, msg in enumerate(messages):
        blocks = msg["content"] if isinstance(msg["content"], list) else [{"type": "text", "text": msg["content"]}]
        breakpoints += sum("cache_control" in block for block in blocks)
        if problem := cache_problem(blocks, f"messages.{index}"):
            return problem
        if index and msg["role"] == messages[index - 1]["role"]:
            return f"messages.{index}: roles must alternate between user and assistant"
        if any(b["type"] == "text" and not b["text"] for b in blocks):
            return f"messages.{index}: text content blocks must be non-empty"
        if msg["role"] == "user":
            kinds = [b["type"] for b in blocks]
            answered = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
            if unanswered - answered:
                return (f"messages.{index}: tool_use ids were found without tool_result blocks immediately "
                        f"after: {', '.join(sorted(unanswered - answered))}")
            if answered - unanswered:
                return f"messages.{index}: unexpected tool_use_id in tool_result blocks: {', '.join(sorted(answered))}"
            results = kinds.count("tool_result")
            if kinds[:results] != ["tool_result"] * results:
                return f"messages.{index}: tool_result blocks must come before any other content"
            unanswered = set()
        else:
            unanswered = {b["id"] for b in blocks if b["type"] == "tool_use"}
            if unanswered and not body.get("tools"):
                return "requests which include tool_use or tool_result blocks must define tools"
    if messages[-1]["role"] != "user":
        return "the final message must be a user message"
    if breakpoints > 4:
        return f"a maximum of 4 blocks with cache_control may be provided; found {breakpoints}"
    return thinking_problem(body)


# ---- the prompt cache -----------------------------------------------------------------------------
def block_tokens(block: dict, body: dict) -> int:
    """About how many tokens a block of the prompt is (4 characters a token); a thinking block, what it thought."""
    if block.get("type") == "thinking":
        held = _verify(block.get("signature"), body.get("model"), conversation_of(body), block.get("thinking", ""))
        return held if held is not None else 1
    return max(1, math.ceil(len(json.dumps(_uncached(block), sort_keys=True)) / 4))


class PromptCache:
    """Prefixes cached at breakpoints for their lifetime; the token counts of a request as the API would bill them."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.entries: dict[str, float] = {}   # prefix hash -> when it expires

    def usage(self, body: dict, min_tokens: int) -> dict:
        segments = [(tool, "tools") for tool in body.get("tools") or []]
        segments += [(block, "system") for block in body.get("system") or [] if isinstance(block, dict)]
        for message in body.get("messages") or []:
            content = message["content"] if isinstance(message["content"], list) else [
                {"type": "text", "text": message["content"]}]
            segments += [(block, message["role"]) for block in content]
        now, running, totals, hashes, breakpoints = self.clock(), hashlib.sha256(), [0], [], []
        for index, (block, where) in enumerate(segments):
            running.update(json.dumps([where, _uncached(block)], sort_keys=True).encode())
            hashes.append(running.copy().hexdigest())
            totals.append(totals[-1] + block_tokens(block, body))
            if block.get("cache_control"):
                breakpoints.append((index, 3600.0 if block["cache_control"].get("ttl") == "1h" else 300.0))
        read_at = -1   # the last block of the longest cached prefix
        for end, _ in breakpoints:
            for index in range(end, max(-1, end - LOOKBACK_BLOCKS), -1):
                if self.entries.get(hashes[index], 0) > now and index > read_at:
                    read_at = index
                    break
        written_to, lifetime = read_at, 300.0
        for end, ttl in breakpoints:
            if end > read_at and totals[end + 1] >= min_tokens:
                self.entries[hashes[end]] = now + ttl
                written_to, lifetime = end, ttl
        if read_at >= 0:
            self.entries[hashes[read_at]] = max(self.entries[hashes[read_at]],
                                                now + max((ttl for _, ttl in breakpoints), default=300.0))
        read, written = totals[read_at + 1], totals[written_to + 1] - totals[read_at + 1]
        one_hour = written if lifetime == 3600.0 else 0
        found = usage(totals[-1] - read - written, 0, written - one_hour, read, one_hour)
        return {k: v for k, v in found.items() if k != "output_tokens"}


class FakeMessagesAPI:
    """The server: a ThreadingHTTPServer on 127.0.0.1, an ephemeral port, served from a thread."""

    def __init__(self, replies: list[Reply] | None = None, responder: Callable[[Request], Reply] | None = None,
                 caching: bool = False, clock: Callable[[], float] = time.monotonic):
        self.replies = list(replies or [])
        self.responder = responder
        self.cache = PromptCache(clock) if caching else None
        self.requests: list[Request] = []
        self.served: list[dict] = []          # the assistant messages sent, as sent
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def bodies(self) -> list[dict]:
        return [r.body for r in self.requests]

    def __enter__(self) -> "FakeMessagesAPI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            spec = MODELS.get(request.body.get("model"))
            if spec is None:
                return error_reply(404, "not_found_error", f"model: {request.body.get('model')}")
            problem = request.problem or model_problem(request.body, spec)
            if problem:
                request.problem = problem
                return error_reply(400, "invalid_request_error", problem)
            if self.responder is not None:
                reply = self.responder(request)
            elif self.replies:
                reply = self.replies.pop(0)
            else:
                return error_reply(400, "invalid_request_error", "fake server: no scripted reply left")
            if reply.status != 200 or reply.body is None or reply.drop:
                return reply
            body = copy.deepcopy(reply.body)
            body["model"] = request.body["model"]
            body["content"] = _served_content(body["content"], request.body, thinks(request.body, spec),
                                              reply.thinking_tokens)
            if self.cache is not None:
                body["usage"] = {**body["usage"], **self.cache.usage(request.body, spec.min_cache)}
            self.served.append(body)
            return Reply(reply.status, body, reply.headers, reply.drop, reply.delay_s, reply.cut_after,
                         reply.pause_after, reply.stream_error, reply.thinking_tokens)


def sse_events(body: dict) -> list[tuple[str, dict]]:
    """A message as the API streams it: (event name, data) pairs, in order."""
    start_usage = {**body["usage"], "output_tokens": 1}
    events = [("message_start", {"type": "message_start", "message": {**body, "content": [], "stop_reason": None,
                                                                      "stop_sequence": None, "usage": start_usage}}),
              ("ping", {"type": "ping"})]
    for index, block in enumerate(body["content"]):
        kind = block["type"]
        start = {"text": {"type": "text", "text": ""},
                 "thinking": {"type": "thinking", "thinking": "", "signature": ""},
                 "tool_use": {**block, "input": {}}}.get(kind, block)
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        deltas = []
        if kind == "text":
            half = len(block["text"]) // 2
            deltas = [{"type": "text_delta", "text": piece} for piece in (block["text"][:half], block["text"][half:])
                      if piece]
        elif kind == "tool_use":
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": raw[i:i + 40]} for i in range(0, len(raw), 40)]
        elif kind == "thinking":
            deltas = ([{"type": "thinking_delta", "thinking": block["thinking"]}] if block["thinking"] else [])
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                   for delta in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": body["stop_reason"],
                                                                       "stop_sequence": None},
                                     "usage": body["usage"]}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _handler(api: FakeMessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # each event is written at once, as the API streams them: no wait for the last one's ACK (Nagle)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path.split("?")[0] != "/v1/messages":
                self._send(error_reply(404, "not_found_error", f"no route {self.path}"))
                return
            body = json.loads(raw)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = api._next(Request(self.path, headers, body, time.monotonic(), request_problem(body)))
            if not (headers.get("x-api-key") or headers.get("authorization")):
                reply = error_reply(401, "authentication_error", "x-api-key header is required")
            if reply.drop:
                self._cut()
                return
            if reply.pause_after is None:
                time.sleep(reply.delay_s)
            if body.get("stream") and reply.status == 200:
                self._stream(reply)
            else:
                self._send(reply)

        def _send(self, reply: Reply) -> None:
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True   # the client gave up waiting (a timeout test)

        def _stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            events = sse_events(reply.body)
            try:
                for count, (name, data) in enumerate(events):
                    if count == reply.cut_after:
                        if reply.stream_error is None:
                            self._cut()
                            return
                        self._chunk(f"event: error\ndata: {json.dumps(reply.stream_error)}\n\n")
                        break
                    if count == reply.pause_after:
                        time.sleep(reply.delay_s)
                    self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _cut(self) -> None:
            """Close the connection mid-reply, as a dropped network does."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True

        def log_message(self, format: str, *args) -> None:   # keep test output quiet
            pass

    return Handler
