"""The claude backend: the Messages API with tool use, prompt caching, streaming, our own retries, and cost accounting.

Each iteration is a fresh conversation from the same cached prefix (tools, then the system prompt)
plus a first user message holding the agent's notebook; the assistant ending its turn without a
tool call ends the iteration, and so does a refusal. A conversation that grows past
`claude.context_tokens` is summarised by the model and restarted from that summary and the
notebook; one that no longer fits the model's context window (a 400 "prompt is too long", a reply
stopped by `model_context_window_exceeded`) restarts from the notebook and its last steps, and so
does one whose model or thinking changed (thinking blocks are tied to the model that wrote them).
A step makes at most one successful API call, whose tokens and dollars its turn carries to the
ledger, with those of any streamed call that broke before it.

    models         what the backend knows of each model (models.toml): prices, thinking, effort, limits
    plan           each agent's model, prices, thinking, effort, max_tokens and timeout, or one line why not
    estimate       about what an agent-hour costs, for `lab start` to say before it spends
    prompts        what the lab says: system prompt, openings, notes
    conversation   messages as the API takes them; a reply's blocks, thinking kept as received
    pricing        a call's tokens and dollars, per model and cache lifetime
    streaming      one streamed call through the SDK's helper: its message, or the usage it reported
    retries        one call, retried on the signals the SDK honours and on a broken stream
    backend        ClaudeBackend: the steps, resets, cut-offs and refusals

Only `backend` and `streaming` import the SDK, and only when the backend is chosen.
"""
from __future__ import annotations


def __getattr__(name: str):
    if name == "ClaudeBackend":   # the SDK loads with it, not with the table or the plan
        from lab.agents.backends.claude.backend import ClaudeBackend

        return ClaudeBackend
    raise AttributeError(name)


__all__ = ["ClaudeBackend"]
