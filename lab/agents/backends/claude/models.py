"""What the backend knows of each model, read from models.toml: prices, thinking, effort, output limits.

The one table of it: the request's thinking and effort (plan.py), the ledger's prices (pricing.py), the
estimate `lab start` shows (estimate.py) and the cost bench all read it from here. Plain data only: this
module imports neither the SDK nor pydantic.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Mapping

TABLE = Path(__file__).with_name("models.toml")
PRICE_KEYS = ("input", "output", "cache_write", "cache_write_1h", "cache_read")
TOKEN_KINDS = ("input", "output", "cache_write", "cache_write_1h", "cache_read")   # priced by the key of that name


@dataclass(frozen=True)
class Prices:
    """Dollars per million tokens."""
    input: float
    output: float
    cache_write: float       # a 5-minute cache write
    cache_write_1h: float    # a 1-hour cache write
    cache_read: float

    def of(self, tokens: Mapping[str, float]) -> float:
        """Dollars for token counts keyed like the prices."""
        return sum(tokens.get(kind, 0) * getattr(self, kind) for kind in PRICE_KEYS) / 1e6


@dataclass(frozen=True)
class Model:
    name: str
    status: str                          # "current" or "legacy"
    prices: Prices
    thinking: str                        # "always", "adaptive" or "extended"
    thinking_off: str | None             # "disabled", "between_tools", "omit"; None: thinking cannot be off
    off_efforts: tuple[str, ...]         # efforts at which "off" is taken (every effort where empty)
    efforts: tuple[str, ...]             # output_config.effort levels taken; empty: none
    default_effort: str | None
    max_output: int
    max_tokens: int
    hour: dict[str, float] = field(default_factory=dict)   # tokens of a measured agent-hour, by kind


@cache
def _table() -> dict[str, Model]:
    found: dict[str, Model] = {}
    for name, spec in tomllib.loads(TABLE.read_text()).get("models", {}).items():
        model = Model(name, spec["status"], Prices(**spec["prices"]), spec["thinking"], spec.get("thinking_off"),
                      tuple(spec.get("off_efforts", ())), tuple(spec.get("efforts", ())), spec.get("default_effort"),
                      spec["max_output"], spec["max_tokens"], dict(spec.get("hour", {})))
        for alias in [name, *spec.get("aliases", [])]:
            found[alias] = model
    return found


def known(name: str) -> Model | None:
    """The model of that name or alias, or None where the table does not know it."""
    return _table().get(name)


def lineup() -> list[str]:
    """Today's models, as the table lists them (an alias once, under its model's name)."""
    return list(dict.fromkeys(m.name for m in _table().values() if m.status == "current"))
