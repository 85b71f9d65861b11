"""The claude backend: the Messages API with tool use, prompt caching, our own retries, and cost accounting.

Each iteration is a fresh conversation from the same cached prefix (tools, then the system prompt)
plus a first user message holding the agent's notebook; the assistant ending its turn without a
tool call ends the iteration. A conversation that grows past `claude.context_tokens` is summarised
by the model and restarted from that summary and the notebook.
"""
from __future__ import annotations

import copy
import logging
import os
import random
import time

import anthropic

from lab.agents.turns import AgentWorld, BackendError, Message, ToolCall, ToolResult, Turn, Usage

log = logging.getLogger(__name__)

CACHE = {"type": "ephemeral"}
MAX_WAIT_S = 60.0
RETRIED_STATUS = {408, 429}          # and every 5xx, 529 (overloaded) included
TOKENS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")

RULES = """\
Rules of the lab:
- Work only through your tools. Shell commands run in your sandbox, in your worktree, with no network.
- Never try to read hidden labels, held-out data or the scorer's files; the lab checks, and a method
  that peeks is rejected and flagged.
- A result needs at least 5 seeds; one seed is noise. Report PGR with its standard error.
- Post results to the forum, good and bad, with the commit id of the code that produced them.
- Submit only a commit that beats your best submission by more than its standard error.
- Keep your notebook current: it is all you keep from one iteration to the next."""

ITERATIONS = """\
How an iteration works: each iteration is a fresh conversation from this prompt plus your notebook.
Read the forum and the leaderboard, pick one idea, implement it in your worktree, run it over seeds,
commit, and post what you found. When the iteration's work is done, update your notebook and end your
turn with a short summary and no tool call: the next iteration then begins fresh. A conversation that
grows too long is summarised by you and restarted from that summary and your notebook."""

SUMMARY_REQUEST = (
    "This conversation is about to pass the context limit and will be restarted. Write a summary for "
    "yourself to continue from: the idea you are working on, what you tried and found (numbers and commit "
    "ids), what is still running or uncommitted, and your next steps. Your notebook will be shown beside it.")


def system_prompt(world: AgentWorld) -> str:
    where = f" Your worktree is {world.worktree}." if world.worktree else ""
    return (f"You are {world.name}, a research agent in a lab of agents studying weak-to-strong supervision."
            f"{where}\nYour research direction, to start from: {world.direction}\n\n{RULES}\n\n{ITERATIONS}\n\n"
            f"The research repository's README:\n<readme>\n{world.readme}\n</readme>")


def inbox_text(message: Message) -> str:
    if message.author == "person":
        return f"Message from the person running the lab: {message.text}"
    return f"Note from the {message.author}: {message.text}"


def dollars(usage: Usage, prices) -> float:
    return (usage.input_tokens * prices.input + usage.output_tokens * prices.output
            + usage.cache_write_tokens * prices.cache_write + usage.cache_read_tokens * prices.cache_read) / 1e6


def interrupted(messages: list[dict], pending: list[dict]) -> list[dict]:
    """Error results for the tool calls of a last assistant message that a restart left unanswered."""
    if not messages or messages[-1]["role"] != "assistant":
        return []
    answered = {block["tool_use_id"] for block in pending}
    return [{"type": "tool_result", "tool_use_id": block["id"], "content": "interrupted by a restart",
             "is_error": True} for block in messages[-1]["content"]
            if block["type"] == "tool_use" and block["id"] not in answered]


def with_user(messages: list[dict], blocks: list[dict]) -> list[dict]:
    """messages plus a user turn of blocks, merged into the last message if that is a user's (roles alternate)."""
    if messages and messages[-1]["role"] == "user":
        return messages[:-1] + [{"role": "user", "content": messages[-1]["content"] + blocks}]
    return messages + [{"role": "user", "content": blocks}]


def describe(calls: list[ToolCall], text: str) -> str:
    """A few words for `lab status`: the first call and its main argument, or the first line of text."""
    if not calls:
        return (text.strip().splitlines() or ["(no text)"])[0][:80]
    head = next((v for v in calls[0].arguments.values() if isinstance(v, str)), "")
    head = (head.strip().splitlines() or [""])[0][:60]
    more = f" (+{len(calls) - 1} more)" if len(calls) > 1 else ""
    return f"calling {calls[0].name}: {head}{more}" if head else f"calling {calls[0].name}{more}"


class ClaudeBackend:
    name = "claude"

    def __init__(self, cfg, world: AgentWorld, saved: dict | None = None):
        self.cfg, self.world = cfg.claude, world
        api_key = os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise BackendError("the claude backend needs ANTHROPIC_API_KEY in the environment")
        # max_retries=0: we retry ourselves, so that every retry is counted and logged.
        self.client = anthropic.Anthropic(api_key=api_key, base_url=self.cfg.base_url, max_retries=0,
                                          timeout=self.cfg.timeout_s)
        self.system = [{"type": "text", "text": system_prompt(world), "cache_control": CACHE}]
        self.tools = copy.deepcopy(world.tools)
        if self.tools:
            self.tools[-1]["cache_control"] = CACHE
        saved = saved or {}
        self.messages: list[dict] = list(saved.get("messages", []))
        self.pending: list[dict] = list(saved.get("pending", []))   # tool_result blocks for the next call
        self.pending += interrupted(self.messages, self.pending)
        self.fresh: bool = saved.get("fresh", not self.messages)   # the next step starts a new iteration
        self.reset_due: bool = saved.get("reset_due", False)      # the last call passed context_tokens
        self.iteration: int = saved.get("iteration", 0)
        self.totals: dict = {"calls": 0, "retries": 0, "resets": 0, "dollars": 0.0, **{k: 0 for k in TOKENS},
                             **saved.get("totals", {})}

    # ---- the Backend protocol -----------------------------------------------------------------
    def step(self, inbox: list[Message]) -> Turn:
        started = time.monotonic()
        usage = Usage(model=self.cfg.model)
        notes = [{"type": "text", "text": inbox_text(m)} for m in inbox]
        note = ""
        if self.fresh:
            self.iteration += 1
            request = [{"role": "user", "content": [self._opening(), *notes]}]
        elif self.reset_due:
            # Kept at once, so that a failure of the call after it does not pay for the summary again.
            self.messages = [{"role": "user", "content": [self._opening(self._summarise(usage))]}]
            self.pending, self.reset_due = [], False
            self.totals["resets"] += 1
            request = with_user(self.messages, notes)
            note = "context reset: fresh conversation from a summary"
        else:
            blocks = self.pending + notes
            if not blocks and self.messages[-1]["role"] == "assistant":
                blocks = [{"type": "text", "text": "Go on."}]   # after a reply cut off at max_tokens
            request = with_user(self.messages, blocks)
        response = self._create(request, usage)
        turn = self._record(request, response, usage)
        usage.duration_s = time.monotonic() - started
        turn.step = f"{note}; {turn.step}" if note else turn.step
        return turn

    def observe(self, results: list[ToolResult]) -> None:
        self.pending += [{"type": "tool_result", "tool_use_id": r.call_id, "content": r.output or "(no output)",
                          "is_error": r.is_error} for r in results]

    def state(self) -> dict:
        return {"messages": list(self.messages), "pending": list(self.pending), "fresh": self.fresh,
                "reset_due": self.reset_due, "iteration": self.iteration, "totals": dict(self.totals)}

    # ---- conversations ------------------------------------------------------------------------
    def _opening(self, summary: str | None = None) -> dict:
        """The first user message of a conversation: what changes between conversations, after the cache."""
        text = (f"Iteration {self.iteration}. Your notebook as it is now:\n"
                f"<notebook>\n{self.world.notebook()}\n</notebook>\n\n")
        if summary is None:
            text += "Begin: read the forum and the leaderboard, choose what to try next, and work through your tools."
        else:
            text += (f"Your conversation grew past the context limit and was restarted. Your summary of it:\n"
                     f"<summary>\n{summary}\n</summary>\n\nContinue from where you were.")
        return {"type": "text", "text": text}

    def _summarise(self, usage: Usage) -> str:
        request = with_user(self.messages, self.pending + [{"type": "text", "text": SUMMARY_REQUEST}])
        response = self._create(request, usage, tool_choice={"type": "none"})
        self._count(response, usage)
        text = "\n".join(b.text for b in response.content if b.type == "text").strip()
        return text or "(the summary came back empty: rely on your notebook)"

    def _record(self, request: list[dict], response, usage: Usage) -> Turn:
        self._count(response, usage)
        u = response.usage
        context = u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
        self.reset_due = context > self.cfg.context_tokens
        content, calls = [], []
        for block in response.content:
            if block.type == "text" and block.text:
                content.append({"type": "text", "text": block.text})
            elif block.type == "tool_use":
                content.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
                calls.append(ToolCall(block.id, block.name, dict(block.input)))
        text = "\n".join(b["text"] for b in content if b["type"] == "text")
        content = content or [{"type": "text", "text": "(no reply)"}]   # the API refuses an empty message
        self.messages = request + [{"role": "assistant", "content": content}]
        self.pending = []
        self.fresh = not calls and response.stop_reason != "max_tokens"
        step = describe(calls, text)
        if self.fresh:
            step = f"iteration {self.iteration} over; the next step starts a fresh conversation"
        elif not calls:
            step = "reply cut off at max_tokens; continuing"
        return Turn(text=text, calls=calls, usage=usage, step=step)

    def _count(self, response, usage: Usage) -> None:
        u = response.usage
        call = Usage(self.cfg.model, u.input_tokens, u.output_tokens, u.cache_creation_input_tokens or 0,
                     u.cache_read_input_tokens or 0)
        call.dollars = dollars(call, self.cfg.prices)
        for key in (*TOKENS, "dollars"):
            setattr(usage, key, getattr(usage, key) + getattr(call, key))
            self.totals[key] += getattr(call, key)
        self.totals["calls"] += 1

    # ---- one API call, with retries -----------------------------------------------------------
    def _create(self, messages: list[dict], usage: Usage, **extra):
        messages = copy.deepcopy(messages)
        messages[-1]["content"][-1]["cache_control"] = CACHE   # the conversation so far is cached too
        tries, attempt = self.cfg.max_retries + 1, 0
        while True:
            try:
                return self.client.messages.create(model=self.cfg.model, max_tokens=self.cfg.max_tokens,
                                                   system=self.system, tools=self.tools, messages=messages, **extra)
            except anthropic.APIStatusError as exc:
                reason = f"HTTP {exc.status_code} {exc.type or 'error'}: {exc.api_message or exc.message}"
                if exc.status_code not in RETRIED_STATUS and exc.status_code < 500:
                    raise BackendError(f"claude API refused the request ({reason})") from None
                wait = _retry_after(exc.response.headers.get("retry-after"))
            except anthropic.APITimeoutError:
                reason, wait = f"no reply within {self.cfg.timeout_s:g} s", None
            except anthropic.APIConnectionError as exc:
                reason, wait = f"connection failed: {exc.__cause__ or exc.message}", None
            attempt += 1
            if attempt == tries:
                raise BackendError(f"claude API call failed after {tries} tries; last: {reason}")
            if wait is None:
                wait = min(self.cfg.retry_base_s * 2 ** (attempt - 1), MAX_WAIT_S) * random.uniform(0.5, 1.0)
            log.warning("claude API try %d of %d failed (%s); retrying in %.1f s", attempt, tries, reason, wait)
            usage.retries += 1
            self.totals["retries"] += 1
            time.sleep(wait)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a retry-after header, capped; None when absent or not a number of seconds."""
    try:
        return min(max(float(value), 0.0), MAX_WAIT_S) if value is not None else None
    except ValueError:
        return None
