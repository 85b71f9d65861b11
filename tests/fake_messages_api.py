"""A loopback HTTP server that speaks the Anthropic Messages API, for testing the claude backend.

It answers `POST /v1/messages` by replaying a scripted list of replies in order: assistant
messages (text, tool_use, thinking and redacted_thinking blocks; any stop reason: a cut-off at
max_tokens, a refusal, a full context window), API errors with their real status codes, headers
(retry-after, retry-after-ms, x-should-retry) and bodies (a 400 "prompt is too long"), a dropped
connection, or a reply slower than the client's timeout. It records every request's body and
headers, and checks each request the way the real API does (roles alternate, every tool_use is
answered by a tool_result first in the next user message, at most four cache breakpoints with a
valid ttl, extended thinking's budget below max_tokens, thinking blocks passed back unchanged and
first in the assistant turn whose tool calls are being answered), so a malformed request fails
the test the way it would fail against the real service.

    with FakeMessagesAPI([tool_reply(("toolu_1", "shell", {"command": "ls"})), text_reply("done")]) as api:
        client = anthropic.Anthropic(api_key="test", base_url=api.url)
"""
from __future__ import annotations

import hashlib
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)


@dataclass
class Reply:
    status: int = 200
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False          # close the connection without answering
    delay_s: float = 0.0        # wait this long before answering (past the client's timeout: a timeout)


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


def message(content: list[dict], stop_reason: str, model: str = "claude-sonnet-4-5", **tokens) -> Reply:
    return Reply(body={"id": f"msg_{next(_ids):06d}", "type": "message", "role": "assistant", "model": model,
                       "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                       "usage": usage(**tokens)})


def text_reply(text: str, stop_reason: str = "end_turn", **tokens) -> Reply:
    return message([{"type": "text", "text": text}], stop_reason, **tokens)


def tool_reply(*calls: tuple[str, str, dict], text: str = "", **tokens) -> Reply:
    """An assistant turn that calls tools: each call is (id, name, input)."""
    content = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": i, "name": n, "input": inp} for i, n, inp in calls]
    return message(content, "tool_use", **tokens)


def stopped(reply: Reply, stop_reason: str) -> Reply:
    """The same assistant message with another stop reason: "max_tokens", "refusal", "model_context_window_exceeded"."""
    return Reply(reply.status, {**reply.body, "stop_reason": stop_reason}, reply.headers)


def cut_off(reply: Reply) -> Reply:
    """Cut off at max_tokens: the API sends what was written, a last tool_use's input perhaps incomplete."""
    return stopped(reply, "max_tokens")


def _sign(text: str) -> str:
    return hashlib.sha256(f"fake-messages-api:{text}".encode()).hexdigest()[:32]


def thinking_block(thinking: str) -> dict:
    """A thinking block whose signature this server checks when the block comes back."""
    return {"type": "thinking", "thinking": thinking, "signature": _sign(thinking)}


def redacted_thinking_block(secret: str = "redacted") -> dict:
    return {"type": "redacted_thinking", "data": f"{secret}.{_sign(secret)}"}


def thinking_reply(thinking: str, *calls: tuple[str, str, dict], text: str = "", redacted: bool = False,
                   **tokens) -> Reply:
    """An assistant turn with extended thinking: thinking (and a redacted_thinking) block first, then text and calls."""
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
    return Reply(reply.status, reply.body, reply.headers, delay_s=delay_s)


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


def thinking_problem(body: dict) -> str | None:
    """What the API checks of extended thinking: the budget, the tool choice, the blocks passed back."""
    for index, msg in enumerate(body.get("messages") or []):
        for block in msg["content"] if isinstance(msg["content"], list) else []:
            if block["type"] == "thinking" and block.get("signature") != _sign(block.get("thinking", "")):
                return f"messages.{index}: invalid `signature` in `thinking` block"
            if block["type"] == "redacted_thinking":
                secret, _, signature = block.get("data", "").rpartition(".")
                if signature != _sign(secret):
                    return f"messages.{index}: invalid `data` in `redacted_thinking` block"
    thinking = body.get("thinking")
    if not thinking or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens", 0)
    if budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if budget >= body["max_tokens"]:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
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


class FakeMessagesAPI:
    """The server: a ThreadingHTTPServer on 127.0.0.1, an ephemeral port, served from a thread."""

    def __init__(self, replies: list[Reply] | None = None):
        self.replies = list(replies or [])
        self.requests: list[Request] = []
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
            if request.problem:
                return error_reply(400, "invalid_request_error", request.problem)
            if not self.replies:
                return error_reply(400, "invalid_request_error", "fake server: no scripted reply left")
            return self.replies.pop(0)


def _handler(api: FakeMessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            time.sleep(reply.delay_s)
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

        def log_message(self, format: str, *args) -> None:   # keep test output quiet
            pass

    return Handler
