"""ClaudeBackend: a step makes at most one successful API call, so the loop records each call's cost at once.

A summary before a context reset is a step of its own for that reason: the call after it may fail,
and the summary's cost is already in the ledger by then. A streamed call that broke and was tried
again adds what it cost to its step's; where the step fails, its BackendError carries that cost.
"""
from __future__ import annotations

import copy
import logging
import os
import time
from datetime import datetime
from typing import TYPE_CHECKING

import anthropic

from lab.agents.backends.claude import prompts
from lab.agents.backends.claude.conversation import (answering_without_thinking, assistant_blocks, calls_of, describe,
                                                     digest, interrupted, with_user)
from lab.agents.backends.claude.plan import plan_for
from lab.agents.backends.claude.pricing import cache_control, context_tokens, priced
from lab.agents.backends.claude.retries import PromptTooLong, call_with_retries
from lab.agents.backends.claude.streaming import streamed
from lab.agents.turns import AgentWorld, BackendError, Message, ToolResult, Turn, Usage

if TYPE_CHECKING:
    from lab.config import Config

log = logging.getLogger("lab.agents.backends.claude")

TOKENS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")


class ClaudeBackend:
    name = "claude"

    def __init__(self, cfg: Config, world: AgentWorld, saved: dict | None = None):
        self.cfg, self.world = cfg.claude, world
        self.plan = plan_for(self.cfg, world.name)
        self.model = self.plan.model
        api_key = os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise BackendError("the claude backend needs ANTHROPIC_API_KEY in the environment")
        # max_retries=0: we retry ourselves, so that every retry is counted and logged, a broken stream's too.
        # The timeout bounds connecting and each wait for the stream's next event, not the whole reply.
        self.client = anthropic.Anthropic(api_key=api_key, base_url=self.cfg.base_url, max_retries=0,
                                          timeout=anthropic.Timeout(self.plan.timeout_s,
                                                                    connect=min(5.0, self.plan.timeout_s)))
        self.cache = cache_control(self.cfg.cache_ttl)
        self.system = [{"type": "text", "text": prompts.system_prompt(world), "cache_control": self.cache}]
        self.tools = copy.deepcopy(world.tools)
        if self.tools:
            self.tools[-1]["cache_control"] = self.cache
        saved = saved or {}
        self.messages: list[dict] = list(saved.get("messages", []))
        self.pending: list[dict] = list(saved.get("pending", []))   # tool_result blocks for the next call
        self.pending += interrupted(self.messages, self.pending)
        self.fresh: bool = saved.get("fresh", not self.messages)   # the next step starts a new iteration
        self.reset_due: bool = saved.get("reset_due", False)      # the last call passed context_tokens
        self.iteration: int = saved.get("iteration", 0)
        self.totals: dict = {"calls": 0, "retries": 0, "broken_streams": 0, "resets": 0, "dollars": 0.0,
                             **{k: 0 for k in TOKENS}, **saved.get("totals", {})}
        if not self.fresh and self._settings_changed(saved.get("settings")):
            self._restart_from_last_steps([], "the model or its thinking changed since this conversation began")

    # ---- the Backend protocol -----------------------------------------------------------------
    def step(self, inbox: list[Message]) -> Turn:
        started = time.monotonic()
        usage = Usage(model=self.model)
        notes = [{"type": "text", "text": prompts.inbox_text(m)} for m in inbox]
        try:
            if self.fresh:
                turn = self._begin(notes, usage)
            elif self.reset_due:
                turn = self._summarise(notes, usage)
            else:
                turn = self._go_on(notes, usage)
        except BackendError as exc:
            if usage.dollars or usage.input_tokens or usage.output_tokens:   # broken streams before the failure
                usage.duration_s = time.monotonic() - started
                exc.spent = usage
            raise
        usage.duration_s = time.monotonic() - started
        return turn

    def observe(self, results: list[ToolResult]) -> None:
        # Before what is already pending (a cut-off call's notice), so that results follow the calls' order.
        self.pending = [{"type": "tool_result", "tool_use_id": r.call_id, "content": r.output or "(no output)",
                         "is_error": r.is_error} for r in results] + self.pending

    def state(self) -> dict:
        return {"messages": list(self.messages), "pending": list(self.pending), "fresh": self.fresh,
                "reset_due": self.reset_due, "iteration": self.iteration, "totals": dict(self.totals),
                "settings": self.plan.settings}

    # ---- the three kinds of step --------------------------------------------------------------
    def _begin(self, notes: list[dict], usage: Usage) -> Turn:
        self.iteration += 1
        request = [{"role": "user", "content": [self._opening(), *notes]}]
        try:
            response = self._create(request, usage)
        except PromptTooLong as exc:
            raise BackendError(f"the opening of iteration {self.iteration} alone is too long: {exc} "
                               f"(the notebook has {len(self.world.notebook()):,} characters)") from None
        return self._record(request, response, usage)

    def _go_on(self, notes: list[dict], usage: Usage) -> Turn:
        blocks = self.pending + notes
        if not blocks and self.messages[-1]["role"] == "assistant":
            blocks = [{"type": "text", "text": prompts.GO_ON}]   # after a text reply cut off at max_tokens
        request = with_user(self.messages, blocks)
        try:
            response = self._create(request, usage)
        except PromptTooLong:
            return Turn(usage=usage, step=self._restart_from_last_steps(
                notes, "the prompt passed the model's context window"))
        return self._record(request, response, usage)

    def _summarise(self, notes: list[dict], usage: Usage) -> Turn:
        """The conversation passed context_tokens: the model summarises it, and it restarts from that."""
        request = with_user(self.messages, self.pending + [{"type": "text", "text": prompts.SUMMARY_REQUEST}])
        try:
            response = self._create(request, usage, tool_choice={"type": "none"})
        except PromptTooLong:
            return Turn(usage=usage, step=self._restart_from_last_steps(notes, "too long to summarise"))
        self._count(response, usage)
        summary = "\n".join(b.text for b in response.content if b.type == "text").strip() or prompts.EMPTY_SUMMARY
        self._restart(self._opening(summary=summary), notes)
        return Turn(text=summary, usage=usage, step="context reset: fresh conversation from a summary")

    # ---- conversations ------------------------------------------------------------------------
    def _settings_changed(self, saved: dict | None) -> bool:
        """Whether the saved conversation cannot go on under this plan: another model wrote its thinking blocks, or
        its thinking or effort changed; a conversation saved before settings were kept is checked for what
        extended thinking requires of it."""
        if saved is not None:
            return saved != self.plan.settings
        return bool(self.plan.thinking) and answering_without_thinking(self.messages)

    def _opening(self, **reset) -> dict:
        return prompts.opening(self.iteration, self.world.notebook(), **reset)

    def _restart(self, opening: dict, notes: list[dict]) -> None:
        self.messages = [{"role": "user", "content": [opening, *notes]}]
        self.pending, self.reset_due, self.fresh = [], False, False
        self.totals["resets"] += 1

    def _restart_from_last_steps(self, notes: list[dict], why: str) -> str:
        """A reset without a model's summary, for a conversation that cannot be sent again; returns the step line."""
        answered = [{"role": "user", "content": self.pending}] if self.pending else []
        self._restart(self._opening(last_steps=digest(self.messages + answered)), notes)
        step = f"context reset: {why}; fresh conversation from the notebook and the last steps"
        self._warn(step)
        return step

    def _record(self, request: list[dict], response, usage: Usage) -> Turn:
        self._count(response, usage)
        self.reset_due = context_tokens(response.usage) > self.cfg.context_tokens
        stop = response.stop_reason
        if stop == "refusal":   # the API's advice: drop the refused turn and start over
            self.messages, self.pending, self.fresh = request, [], True
            self._warn(f"the model refused to go on (stop_reason refusal); iteration {self.iteration} ends")
            return Turn(usage=usage, step=f"refusal: the model declined to continue; iteration {self.iteration} "
                                          "ends and the next step starts a fresh conversation")
        content = assistant_blocks(response.content)
        text = "\n".join(b.text for b in response.content if b.type == "text" and b.text)
        if stop == "model_context_window_exceeded":   # no room left to answer its calls, which may be cut short
            said = [b for b in content if b["type"] == "text"]
            self.messages, self.pending = request + [{"role": "assistant", "content": said}], []
            return Turn(usage=usage, step=self._restart_from_last_steps(
                [], "the reply filled the model's context window"))
        self.messages, self.pending = request + [{"role": "assistant", "content": content}], []
        calls = calls_of(content)
        step = describe(calls, text)
        if stop == "max_tokens" and content[-1]["type"] == "tool_use":
            cut = calls.pop()   # its input may be truncated: never run it
            self.pending = [{"type": "tool_result", "tool_use_id": cut.id, "is_error": True,
                             "content": prompts.cut_off_call(self.plan.max_tokens)}]
            step = f"reply cut off at max_tokens in a {cut.name} call: not run, asked to work in smaller steps"
            step += f"; {describe(calls, text)}" if calls else ""
        elif stop == "max_tokens" and not calls:
            step = "reply cut off at max_tokens; continuing"
        self.fresh = not calls and not self.pending and stop != "max_tokens"
        if self.fresh:
            step = f"iteration {self.iteration} over; the next step starts a fresh conversation"
        return Turn(text=text, calls=calls, usage=usage, step=step)

    # ---- calls and their cost -----------------------------------------------------------------
    def _create(self, messages: list[dict], usage: Usage, **extra):
        messages = copy.deepcopy(messages)
        messages[-1]["content"][-1]["cache_control"] = self.cache   # the conversation so far is cached too
        params = dict(model=self.model, max_tokens=self.plan.max_tokens, system=self.system, tools=self.tools,
                      messages=messages, **self.plan.options(), **extra)
        return call_with_retries(lambda: streamed(self.client, params, lambda spent: self._broke(spent, usage)),
                                 self.cfg, self.plan.timeout_s, on_retry=lambda: self._retried(usage))

    def _retried(self, usage: Usage) -> None:
        usage.retries += 1
        self.totals["retries"] += 1

    def _broke(self, spent, usage: Usage) -> None:
        """A stream that broke after it began: what the API reported of its usage is charged to the step."""
        self._charge(spent, usage)
        self.totals["broken_streams"] += 1

    def _count(self, response, usage: Usage) -> None:
        self._charge(response.usage, usage)
        self.totals["calls"] += 1

    def _charge(self, reported, usage: Usage) -> None:
        call = priced(reported, self.model, self.plan.prices, self.cfg.cache_ttl)
        for key in (*TOKENS, "dollars"):
            setattr(usage, key, getattr(usage, key) + getattr(call, key))
            self.totals[key] += getattr(call, key)

    def _warn(self, what: str) -> None:
        log.warning("%s %s: %s", datetime.now().astimezone().isoformat(timespec="seconds"), self.world.name, what)
