"""Each agent's plan: its model, its prices, and the request options that model takes; or one line saying what to set.

Built from lab.toml's [claude] section over the table of models (models.py). Nothing a model refuses is
ever planned: no "disabled" to a model that always thinks, no budget_tokens to one that rejects it, no
effort to one that takes none. Where lab.toml asks for what a model cannot do, or names a model the table
does not know without pricing it, a ConfigError names the agent, the model and the keys to set. `lab start`
plans every agent before anything starts; the supervisor and each agent's backend plan again from the same
file, so that all three agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.agents.backends.claude.models import PRICE_KEYS, Model, Prices, known, lineup
from lab.errors import ConfigError

if TYPE_CHECKING:
    from lab.config import ClaudeSection, Config

DEFAULT_MAX_TOKENS = 16000   # of a model the table does not know
# The SDK's own estimate of how long a reply may take, which it uses to refuse long non-streaming calls: an hour
# for 128,000 output tokens; never below its default timeout of ten minutes.
SDK_HOUR_TOKENS = 128_000
SDK_DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class AgentPlan:
    agent: str
    model: str
    table: Model | None           # what the table knows of the model; None: a model priced by lab.toml alone
    prices: Prices
    thinking: dict | None         # the request's `thinking`; None: not sent
    effort: str | None            # the request's output_config.effort; None: not sent
    max_tokens: int
    timeout_s: float              # the SDK client's timeout: connecting, and each wait for the stream's next event
    overridden: tuple[str, ...] = ()   # the price keys lab.toml set over the table's

    def options(self) -> dict:
        """The request's thinking and output_config, as the SDK's stream() takes them."""
        options: dict = {}
        if self.thinking is not None:
            options["thinking"] = dict(self.thinking)
        if self.effort is not None:
            options["output_config"] = {"effort": self.effort}
        return options

    @property
    def settings(self) -> dict:
        """What a conversation is tied to: thinking blocks belong to the model, and the effort of a conversation
        that thinks between tools may not change within it."""
        return {"model": self.model, "thinking": self.thinking, "effort": self.effort}

    def describe(self) -> str:
        """The model and how it thinks, e.g. "claude-sonnet-5-5 (adaptive thinking, effort high)"."""
        thinking = self.thinking or {}
        words = {"adaptive": "adaptive thinking", "between_tools": "thinking between tool calls only",
                 "disabled": "no thinking", "enabled": f"thinking budget {thinking.get('budget_tokens')}",
                 None: "no thinking" if self.table else "its own default thinking"}[thinking.get("type")]
        effort = f", effort {self.effort}" if self.effort else ""
        return f"{self.model} ({words}{effort})"


def plans(cfg: Config) -> list[AgentPlan]:
    """Every agent's plan; the first agent whose settings cannot be planned raises its ConfigError."""
    return [plan_for(cfg.claude, name) for name in cfg.agents.names]


def plan_for(claude: ClaudeSection, agent: str) -> AgentPlan:
    """The plan of one agent, from lab.toml's [claude] section (lab.config.schema.ClaudeSection)."""
    model = claude.model_for(agent)
    table = known(model)
    prices, overridden = _prices(claude, model, table, agent)
    max_tokens = _max_tokens(claude, model, table)
    effort = _effort(claude, agent, model, table)
    thinking = _thinking(claude, agent, model, table, effort, max_tokens)
    timeout_s = claude.timeout_s or max(SDK_DEFAULT_TIMEOUT_S, 3600.0 * max_tokens / SDK_HOUR_TOKENS)
    return AgentPlan(agent, model, table, prices, thinking, effort, max_tokens, timeout_s, overridden)


def _where(claude: ClaudeSection, model: str) -> str:
    return "[claude.prices]" if model == claude.model else f'[claude.model_prices."{model}"]'


def _prices(claude: ClaudeSection, model: str, table: Model | None, agent: str) -> tuple[Prices, tuple[str, ...]]:
    mine = claude.prices_for(model)
    given = {key: getattr(mine, key) for key in PRICE_KEYS if getattr(mine, key) is not None}
    if table is None:
        missing = [key for key in PRICE_KEYS if key not in given]
        if missing:
            whose = "claude.model" if model == claude.model else f'claude.models."{agent}"'
            raise ConfigError(f"lab.toml: {whose} is {model!r}, which has no known price: set {_where(claude, model)} "
                              f"{_listed(missing)} (dollars per million tokens), or choose a model the price table "
                              f"knows ({', '.join(lineup())})")
        return Prices(**given), tuple(given)
    table_prices = {key: getattr(table.prices, key) for key in PRICE_KEYS}
    overridden = tuple(key for key in given if given[key] != table_prices[key])
    return Prices(**{**table_prices, **given}), overridden


def _max_tokens(claude: ClaudeSection, model: str, table: Model | None) -> int:
    if claude.max_tokens is None:
        return table.max_tokens if table else DEFAULT_MAX_TOKENS
    if table and claude.max_tokens > table.max_output:
        raise ConfigError(f"lab.toml: claude.max_tokens ({claude.max_tokens}) is more than {model} writes in one reply "
                          f"({table.max_output})")
    return claude.max_tokens


def _effort(claude: ClaudeSection, agent: str, model: str, table: Model | None) -> str | None:
    asked = claude.effort_for(agent)
    key = f'claude.efforts."{agent}"' if agent in claude.efforts else "claude.effort"
    if table is None:
        return asked        # the person's word for a model the table does not know
    if not table.efforts:
        # a lab-wide effort means nothing to an agent whose own model takes none; asking it of that model does
        if asked and (agent in claude.efforts or model == claude.model):
            raise ConfigError(f"lab.toml: {key} = {asked!r}, but {model} ({agent}) takes no effort parameter"
                              + ("; its thinking is extended: set claude.thinking_budget" if table.thinking ==
                                 "extended" else ""))
        return None
    effort = asked or table.default_effort
    if effort not in table.efforts:
        raise ConfigError(f"lab.toml: {key} = {effort!r}, but {model} ({agent}) takes effort "
                          f"{_listed(table.efforts, 'or')}")
    return effort


def _thinking(claude: ClaudeSection, agent: str, model: str, table: Model | None, effort: str | None,
              max_tokens: int) -> dict | None:
    if claude.thinking == "adaptive":
        if table is None:
            return None     # the model's own default: nothing is sent that it might refuse
        if table.thinking in ("always", "adaptive"):
            return {"type": "adaptive"}
        if not claude.thinking_budget:
            return None
        if claude.thinking_budget >= max_tokens:
            raise ConfigError(f"lab.toml: claude.thinking_budget ({claude.thinking_budget}) must be below {model}'s "
                              f"max_tokens ({max_tokens}): thinking tokens count toward max_tokens")
        return {"type": "enabled", "budget_tokens": claude.thinking_budget}
    if table is None:
        raise ConfigError(f'lab.toml: claude.thinking = "off", but how {model} ({agent}) turns thinking off is not '
                          'known: set thinking = "adaptive" (nothing is then sent: the model\'s own default)')
    if table.thinking_off is None:
        raise ConfigError(f'lab.toml: claude.thinking = "off", but {model} ({agent}) always thinks and refuses '
                          'thinking off: set thinking = "adaptive" and a lower effort (claude.effort or '
                          'claude.efforts)')
    if table.off_efforts and effort not in table.off_efforts:
        raise ConfigError(f'lab.toml: claude.thinking = "off", but {model} ({agent}) turns thinking off only at effort '
                          f"{_listed(table.off_efforts, 'or')}, not {effort}")
    return None if table.thinking_off == "omit" else {"type": table.thinking_off}


def _listed(items, last: str = "and") -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"
