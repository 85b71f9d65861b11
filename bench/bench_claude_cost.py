"""Dollars per Claude agent-hour and the cache-read share, for each model of today's lineup.

    python bench/bench_claude_cost.py [--hours 2] [--ttl 5m|1h|both] [--models M ...] [--seed 0] [--toml]

The real claude backend (the real SDK, every call streamed over real HTTP, the lab's prompts, tools, cache
breakpoints, resets and prices) runs a scripted research episode against the loopback Messages API
(tests/fake_messages_api.py), which keeps a prompt cache as the API does and reports each call's input,
cache-write and cache-read tokens from what was sent; the episode's clock is simulated, so cache lifetimes
expire as they would. `--toml` prints each model's measured agent-hour as models.toml's `hour` line (what
`lab start` prices to say about what an hour costs). The study this lab follows reports $22 an agent-hour;
the goal here is a cache-read share of at least 80 % of the prompt tokens.

Turn sizes, drawn per turn from a seeded generator (assumptions, from the lab's own tools and limits):
- a reply: the model's thinking (per model, at its default effort: THINKING below; none for Haiku 4.5, whose
  thinking the lab leaves off unless thinking_budget is set), a sentence of text half the time, and one tool
  call, chosen as a research agent in this lab uses them (TOOLS below: shell runs of experiments most, then
  edits, reads, evaluations, commits, forum and notebook); its input sized as such a call is (a command, a
  1-6 KB file, a 0.1-1 KB edit);
- a tool's result: what that tool returns here (shell output up to the lab's 10,000-character cut, a file
  read, a forum page), and how long it takes (experiments: a median of 25 s, one run in ten 1-4 minutes);
- a reply takes the model's time to first token plus its output at the model's speed (SPEED below);
- an iteration ends, with a short summary and no call, one turn in forty; the notebook grows with each.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

STUDY_DOLLARS_PER_AGENT_HOUR = 22.0
GOAL_CACHE_READ_SHARE = 0.80
# thinking tokens a turn, on average, at the model's default effort; its output speed (tokens/s) and time to the
# first token (s): the lineup's published latency classes (slower, moderate, fast, fastest)
THINKING = {"claude-fable-5-1": 1100, "claude-opus-5-5": 600, "claude-sonnet-5-5": 700, "claude-haiku-4-5": 0}
SPEED = {"claude-fable-5-1": (45, 2.5), "claude-opus-5-5": (60, 1.8), "claude-sonnet-5-5": (85, 1.2),
         "claude-haiku-4-5": (150, 0.6)}
END_ITERATION = 1 / 40
CODE = "    loss = weights * torch.nn.functional.binary_cross_entropy(p, teacher_soft, reduction='none')\n"
WORDS = "the teacher's labels near 0.5 are noisy so the strong probe should trust its own confident predictions "


def text(rng: random.Random, low: int, high: int, source: str = WORDS) -> str:
    size = rng.randint(low, high)
    return (source * (size // len(source) + 1))[:size]


def experiment_s(rng: random.Random) -> float:
    if rng.random() < 0.1:
        return rng.uniform(60, 240)
    return min(300.0, rng.lognormvariate(math.log(25), 0.7))


# name, weight, input, result size in characters, seconds
TOOLS = [
    ("shell", 34, lambda r: {"command": f"python method.py --data $DATA --out runs/p{r.randint(1, 99)}.jsonl --seed "
                                        f"{r.randint(0, 4)}"}, (300, 6000), experiment_s),
    ("edit_file", 12, lambda r: {"path": "w2s/losses.py", "old": text(r, 100, 600, CODE),
                                 "new": text(r, 100, 800, CODE)}, (60, 120), lambda r: 0.2),
    ("read_file", 12, lambda r: {"path": "w2s/train.py"}, (1500, 10000), lambda r: 0.2),
    ("write_file", 10, lambda r: {"path": f"methods/m{r.randint(1, 99)}.py", "content": text(r, 1000, 6000, CODE)},
     (60, 80), lambda r: 0.2),
    ("evaluate", 8, lambda r: {"predictions": "runs/p.jsonl"}, (300, 600), lambda r: 2.0),
    ("git_commit", 5, lambda r: {"message": text(r, 30, 90)}, (60, 100), lambda r: 0.5),
    ("forum_read", 5, lambda r: {"limit": 20}, (2000, 6000), lambda r: 0.3),
    ("notebook", 5, lambda r: {"action": "append", "text": text(r, 200, 800)}, (40, 80), lambda r: 0.1),
    ("forum_post", 4, lambda r: {"kind": "result", "title": text(r, 30, 80), "body": text(r, 400, 1500)},
     (40, 80), lambda r: 0.3),
    ("leaderboard", 3, lambda r: {"limit": 10}, (800, 2500), lambda r: 0.3),
    ("submit", 2, lambda r: {"commit": "HEAD", "path": "method.py"}, (150, 300), lambda r: 1.0),
]


@dataclass
class Episode:
    """The scripted agent: the replies the loopback API serves, the results and times of their tool calls."""
    model: str
    rng: random.Random
    now: float = 0.0
    pending_s: float = 0.0          # the tool time of the last reply's call, spent once it is answered
    ids: int = 0
    notebook: str = field(default_factory=lambda: "# notes\n" + WORDS * 12)

    def clock(self) -> float:
        return self.now

    def reply(self, request):
        from fake_messages_api import message

        thinking = int(self.rng.expovariate(1 / THINKING[self.model])) if THINKING[self.model] else 0
        if (request.body.get("tool_choice") or {}).get("type") == "none":     # the summary before a reset
            content = [{"type": "text", "text": "SUMMARY: " + text(self.rng, 1500, 3500)}]
            stop = "end_turn"
        elif self.rng.random() < END_ITERATION:
            content = [{"type": "text", "text": "Iteration over. " + text(self.rng, 300, 800)}]
            stop = "end_turn"
            self.notebook += text(self.rng, 200, 500)
        else:
            self.ids += 1
            name, _, make_input, _, _ = self.rng.choices(TOOLS, weights=[t[1] for t in TOOLS])[0]
            content = ([{"type": "text", "text": text(self.rng, 40, 240)}] if self.rng.random() < 0.5 else [])
            content.append({"type": "tool_use", "id": f"toolu_{self.ids:05d}", "name": name,
                            "input": make_input(self.rng)})
            stop = "tool_use"
        visible = sum(len(json.dumps(block)) for block in content) // 4
        return message(content, stop, thinking_tokens=thinking, output_tokens=thinking + visible)

    def answer(self, call) -> tuple[str, float]:
        _, _, _, size, seconds = next(t for t in TOOLS if t[0] == call.name)
        return text(self.rng, *size), seconds(self.rng)


@dataclass
class Measured:
    model: str
    effort: str | None
    hours: float
    calls: int
    resets: int
    dollars: float
    tokens: dict[str, int]

    @property
    def per_hour(self) -> float:
        return self.dollars / self.hours

    @property
    def cache_read_share(self) -> float:
        prompt = self.tokens["input"] + self.tokens["cache_write"] + self.tokens["cache_write_1h"] + \
            self.tokens["cache_read"]
        return self.tokens["cache_read"] / prompt if prompt else 0.0

    def hour(self) -> dict[str, int]:
        return {kind: round(count / self.hours) for kind, count in self.tokens.items()}


def run(model: str, hours: float, ttl: str, seed: int) -> Measured:
    import os

    from fake_messages_api import FakeMessagesAPI

    from lab.agents.backends.claude import ClaudeBackend
    from lab.agents.tools import TOOLS as LAB_TOOLS
    from lab.agents.turns import AgentWorld, ToolResult
    from lab.config import DIRECTIONS, parse

    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-bench-loopback")
    episode = Episode(model, random.Random(seed))
    readme = (ROOT / "lab" / "scaffold" / "template" / "README.md").read_text()
    with FakeMessagesAPI(responder=episode.reply, caching=True, clock=episode.clock) as api, \
            tempfile.TemporaryDirectory() as folder:
        cfg = parse({"claude": {"model": model, "base_url": api.url, "cache_ttl": ttl}}, root=Path(folder))
        world = AgentWorld(name="agent-1", direction=DIRECTIONS[0], readme=readme, tools=LAB_TOOLS,
                           notebook=lambda: episode.notebook, worktree="/work/sandboxes/agent-1")
        backend = ClaudeBackend(cfg, world, None)
        speed, first_token_s = SPEED[model]
        while episode.now < hours * 3600:
            turn = backend.step([])
            episode.now += first_token_s + turn.usage.output_tokens / speed
            results = []
            for call in turn.calls:
                output, seconds = episode.answer(call)
                results.append(ToolResult(call.id, call.name, output))
                episode.now += seconds
            backend.observe(results)
        problems = [r.problem for r in api.requests if r.problem]
        if problems:
            raise SystemExit(f"the loopback API refused a request of {model}: {problems[0]}")
    totals = backend.totals
    tokens = {"input": totals["input_tokens"], "output": totals["output_tokens"],
              "cache_read": totals["cache_read_tokens"], "cache_write": totals["cache_write_tokens"] if ttl == "5m" else 0,
              "cache_write_1h": totals["cache_write_tokens"] if ttl == "1h" else 0}
    return Measured(model, backend.plan.effort, episode.now / 3600, totals["calls"], totals["resets"],
                    totals["dollars"], tokens)


def main() -> None:
    from lab.agents.backends.claude.models import lineup

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0, help="simulated agent-hours per model (default 2)")
    parser.add_argument("--ttl", choices=["5m", "1h", "both"], default="both", help="the prompt cache's lifetime")
    parser.add_argument("--models", nargs="*", default=lineup())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--toml", action="store_true", help="print each model's agent-hour for models.toml")
    args = parser.parse_args()
    ttls = ["5m", "1h"] if args.ttl == "both" else [args.ttl]
    print(f"Claude agents' cost: {args.hours:g} simulated agent-hours per model and cache lifetime, a scripted "
          f"research episode against the loopback Messages API (seed {args.seed})")
    header = (f"{'model':<20} {'effort':<7} {'cache':<5} {'calls':>6} {'resets':>6} {'$/agent-hour':>13} "
              f"{'cache-read share':>17}   tokens an agent-hour: input / cache write / cache read / output")
    print(header)
    print("-" * len(header))
    measured: list[tuple[str, Measured]] = []
    for model in args.models:
        for ttl in ttls:
            m = run(model, args.hours, ttl, args.seed)
            measured.append((ttl, m))
            hour = m.hour()
            print(f"{m.model:<20} {m.effort or '-':<7} {ttl:<5} {m.calls:>6} {m.resets:>6} {m.per_hour:>13.2f} "
                  f"{m.cache_read_share:>16.1%}   {hour['input']:,} / {hour['cache_write'] + hour['cache_write_1h']:,}"
                  f" / {hour['cache_read']:,} / {hour['output']:,}", flush=True)
    print(f"the study's agents: ${STUDY_DOLLARS_PER_AGENT_HOUR:.0f} an agent-hour")
    short = [f"{m.model} ({ttl})" for ttl, m in measured if m.cache_read_share < GOAL_CACHE_READ_SHARE]
    print(f"goal, a cache-read share of at least {GOAL_CACHE_READ_SHARE:.0%}: "
          + (f"not met by {', '.join(short)}" if short else "met by every model and cache lifetime"))
    if args.toml:
        for ttl, m in measured:
            if ttl == "5m":
                hour = m.hour()
                print(f"[models.{m.model}] hour = {{ input = {hour['input']}, output = {hour['output']}, "
                      f"cache_write = {hour['cache_write']}, cache_read = {hour['cache_read']} }}")
    sys.exit(1 if short else 0)


if __name__ == "__main__":
    main()
