"""What one call cost: its tokens from the API's usage, priced per million tokens for the agent's model.

Cache writes cost by their lifetime: a 5-minute write at `prices.cache_write` (1.25 times the input
price in Anthropic's list), a 1-hour write at twice the input price. Where the API splits the writes
by lifetime (`usage.cache_creation`), that split is priced; otherwise every write has the lifetime
that the lab asked for.
"""
from __future__ import annotations

from lab.agents.turns import Usage

ONE_HOUR_WRITE = 2.0   # times the input price


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


def priced(usage, model: str, prices, ttl: str) -> Usage:
    """The call's tokens and dollars (prices: lab.config.Prices, dollars per million tokens)."""
    five_minutes, one_hour = cache_writes(usage, ttl)
    read = field(usage, "cache_read_input_tokens") or 0
    call = Usage(model, usage.input_tokens, usage.output_tokens, five_minutes + one_hour, read)
    call.dollars = (usage.input_tokens * prices.input + usage.output_tokens * prices.output
                    + five_minutes * prices.cache_write + one_hour * ONE_HOUR_WRITE * prices.input
                    + read * prices.cache_read) / 1e6
    return call


def context_tokens(usage) -> int:
    """How long the prompt of the call was, cached or not: what the next call starts from."""
    return (usage.input_tokens + (field(usage, "cache_read_input_tokens") or 0)
            + (field(usage, "cache_creation_input_tokens") or 0))
