"""What one call cost: its tokens from the API's usage, priced per million tokens by the agent's plan.

Thinking tokens are output tokens. Cache writes cost by their lifetime, each at its own price
(`cache_write` for 5 minutes, `cache_write_1h` for an hour). Where the API splits the writes by
lifetime (`usage.cache_creation`), that split is priced; otherwise every write has the lifetime
that the lab asked for.
"""
from __future__ import annotations

from lab.agents.backends.claude.models import Prices
from lab.agents.turns import Usage


def cache_control(ttl: str) -> dict:
    """The breakpoint marker; the 5-minute default is sent without a ttl, as every API version takes it."""
    return {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}


def field(usage, name: str):
    """A usage field, whether the SDK parsed it into a model or, being older than the field, kept a plain dict."""
    if isinstance(usage, dict):
        return usage.get(name)
    return getattr(usage, name, None)


def cache_writes(usage, ttl: str) -> tuple[int, int]:
    """Tokens written to the cache for 5 minutes and for 1 hour."""
    split = field(usage, "cache_creation")
    if split is not None:
        return field(split, "ephemeral_5m_input_tokens") or 0, field(split, "ephemeral_1h_input_tokens") or 0
    written = field(usage, "cache_creation_input_tokens") or 0
    return (0, written) if ttl == "1h" else (written, 0)


def tokens(usage, ttl: str) -> dict[str, int]:
    """The call's tokens by how they are priced (the keys of models.Prices)."""
    five_minutes, one_hour = cache_writes(usage, ttl)
    return {"input": field(usage, "input_tokens") or 0, "output": field(usage, "output_tokens") or 0,
            "cache_write": five_minutes, "cache_write_1h": one_hour,
            "cache_read": field(usage, "cache_read_input_tokens") or 0}


def priced(usage, model: str, prices: Prices, ttl: str) -> Usage:
    """The call's tokens and dollars."""
    counts = tokens(usage, ttl)
    call = Usage(model, counts["input"], counts["output"], counts["cache_write"] + counts["cache_write_1h"],
                 counts["cache_read"])
    call.dollars = prices.of(counts)
    return call


def context_tokens(usage) -> int:
    """How long the prompt of the call was, cached or not: what the next call starts from."""
    return ((field(usage, "input_tokens") or 0) + (field(usage, "cache_read_input_tokens") or 0)
            + (field(usage, "cache_creation_input_tokens") or 0))
