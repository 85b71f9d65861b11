"""The claude backend: the Messages API with tool use, prompt caching, our own retries, and cost accounting.

Each iteration is a fresh conversation from the same cached prefix (tools, then the system prompt)
plus a first user message holding the agent's notebook; the assistant ending its turn without a
tool call ends the iteration, and so does a refusal. A conversation that grows past
`claude.context_tokens` is summarised by the model and restarted from that summary and the
notebook; one that no longer fits the model's context window (a 400 "prompt is too long", a reply
stopped by `model_context_window_exceeded`) restarts from the notebook and its last steps. A step
makes at most one successful API call, whose tokens and dollars its turn carries to the ledger.

    prompts        what the lab says: system prompt, openings, notes
    conversation   messages as the API takes them; a reply's blocks, thinking kept as received
    pricing        a call's tokens and dollars, per model and cache lifetime
    retries        one call, retried on the signals the SDK honours
    backend        ClaudeBackend: the steps, resets, cut-offs and refusals
"""
from lab.agents.backends.claude.backend import ClaudeBackend

__all__ = ["ClaudeBackend"]
