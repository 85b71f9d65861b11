"""About what Claude agents cost an hour, said before they start: each agent's plan priced over a measured agent-hour.

An agent-hour's tokens, by kind, are what bench/bench_claude_cost.py measured of its scripted research
episode for each model of the lineup, at the model's default effort (the `hour` of each model in
models.toml); a model with no measured hour is priced over the mean of the measured ones. The tokens are
priced with the agent's own prices, a person's overrides included, and its cache lifetime. It is an
estimate of a typical hour: a run's own rate is what `lab status` shows once the agents are working.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.agents.backends.claude.models import TOKEN_KINDS, known, lineup
from lab.agents.backends.claude.plan import AgentPlan, plan_for

if TYPE_CHECKING:
    from lab.config import Config


def typical_hour() -> dict[str, float]:
    """The mean of the lineup's measured agent-hours."""
    models = [known(name) for name in lineup()]
    hours = [m.hour for m in models if m is not None and m.hour]
    return {kind: sum(h.get(kind, 0) for h in hours) / len(hours) for kind in TOKEN_KINDS} if hours else {}


def hour_tokens(plan: AgentPlan, ttl: str) -> dict[str, float]:
    tokens = dict(plan.table.hour) if plan.table and plan.table.hour else typical_hour()
    if ttl == "1h":   # measured with 5-minute writes: the same writes, for an hour
        tokens["cache_write_1h"] = tokens.get("cache_write_1h", 0) + tokens.pop("cache_write", 0)
    return tokens


def per_hour(plan: AgentPlan, ttl: str) -> float:
    return plan.prices.of(hour_tokens(plan, ttl))


@dataclass(frozen=True)
class Outlook:
    plans: list[AgentPlan]
    hourly: dict[str, float]       # agent -> about how many dollars an hour
    agent_budget: float            # dollars; 0: no limit
    lab_budget: float

    @property
    def lab_hourly(self) -> float:
        return sum(self.hourly.values())

    @property
    def models(self) -> str:
        """The agents' models, e.g. "claude-sonnet-5-5 x8, claude-opus-5-5 x1"."""
        counts = Counter(plan.model for plan in self.plans)
        return ", ".join(f"{model} x{count}" for model, count in counts.items())

    def lines(self) -> list[str]:
        """What the person reads before saying yes: the agents, their models, the budgets, the hourly cost."""
        groups: dict[str, list[AgentPlan]] = {}
        for plan in self.plans:
            groups.setdefault(plan.describe(), []).append(plan)
        lines = [f"  {len(same)} agent{'s' if len(same) > 1 else ''} on {described}: about "
                 f"${self.hourly[same[0].agent]:.2f} an agent-hour" for described, same in groups.items()]
        lines += self.overrides()
        agent = f"${self.agent_budget:.2f} an agent" if self.agent_budget else "no limit an agent"
        lab = f"${self.lab_budget:.2f} the lab" if self.lab_budget else "no limit for the lab"
        lines.append(f"  budget: {agent}, {lab} ([budget.agent] and [budget.lab] dollars in lab.toml)")
        lasts = (f": the lab's budget lasts about {self.lab_budget / self.lab_hourly:.1f} hours"
                 if self.lab_budget and self.lab_hourly else "")
        lines.append(f"  about ${self.lab_hourly:.2f} an hour in all{lasts}")
        return lines

    def overrides(self) -> list[str]:
        """A line for each model whose prices lab.toml sets over the table's: a price left from another model shows."""
        lines, seen = [], set()
        for plan in self.plans:
            if plan.overridden and plan.table and plan.model not in seen:
                seen.add(plan.model)
                keys = ", ".join(f"{key} ${getattr(plan.prices, key):g} (the table's: "
                                 f"${getattr(plan.table.prices, key):g})" for key in plan.overridden)
                lines.append(f"  prices of {plan.model} from lab.toml, not the table: {keys}")
        return lines

    def line(self) -> str:
        """The same in one line, for a refusal."""
        budget = f"against a ${self.lab_budget:g} budget" if self.lab_budget else "with no dollar budget"
        return (f"{len(self.plans)} Claude agents ({self.models}) at about ${self.lab_hourly:.2f} an hour, "
                f"{budget}")


def outlook(cfg: Config, names: list[str] | None = None) -> Outlook:
    """The plans of the agents that would start (every agent, or those named), and about what each costs an hour;
    a ConfigError where one cannot be planned (a model with no known price, a setting its model refuses)."""
    plans = [plan_for(cfg.claude, name) for name in names or cfg.agents.names]
    return Outlook(plans, {plan.agent: per_hour(plan, cfg.claude.cache_ttl) for plan in plans},
                   cfg.budget.agent.dollars, cfg.budget.lab.dollars)
