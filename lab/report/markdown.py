"""The report as Markdown: a header, then one section per question a reader asks of a lab run.

Agents wrote much of what it quotes (titles, paths, diffs, flag evidence); the whole document is made
inert (lab.inert) at the end, so `cat report.md` in a terminal shows their control characters, never obeys them.
"""
from __future__ import annotations

import json
import re
import time

from lab.inert import inert, inert_line
from lab.report.figures import PGR_FIGURE, SPEND_FIGURE
from lab.scorer.cluster_view import describe_cluster
from lab.report.gather import FlagRecord, MethodDiff, Report
from lab.score_text import board_row, pgr, score

DIFF_LINES = 200
EVIDENCE_CHARS = 200


# ---- cells ----------------------------------------------------------------------------------------
def cell(value) -> str:
    """Text that stays inside one table cell: no line breaks, pipes escaped."""
    return re.sub(r"\s*\n\s*", " ", str(value)).replace("|", "\\|").strip() or "-"


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def code(text: str | None) -> str:
    return f"`{text}`" if text else "-"


def literal(text: str) -> str:
    """Text as written, on one line, in a code span that its own backticks cannot close."""
    text = inert_line(text).strip()
    if not text:
        return "-"
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t)) if t is not None else "-"


def compact(evidence: dict) -> str:
    """A flag's evidence on one line: key=value, numbers rounded, long ones cut."""
    def value(v) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, (dict, list)):
            return json.dumps(v, separators=(",", ":"), default=str)
        return str(v)

    text = ", ".join(f"{k}={value(v)}" for k, v in evidence.items())
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS - 1] + "…"


# ---- sections -------------------------------------------------------------------------------------
def header(r: Report) -> str:
    t = r.totals
    best = r.best
    hours = f" ({(r.last - r.first) / 3600:.1f} h)" if r.first is not None and r.last is not None else ""
    lines = [
        f"# Lab report: {r.root.name}",
        "",
        f"- **Lab**: `{r.root}`",
        f"- **Covers**: {when(r.first)} to {when(r.last)}{hours}" if r.first is not None
        else "- **Covers**: nothing recorded yet",
        f"- **Agents**: {len(r.agents)}",
        f"- **Totals**: ${t['dollars']:,.2f}{_budget_left(t)}, {t['tokens_in'] + t['tokens_out']:,} tokens "
        f"({t['tokens_in']:,} in, {t['tokens_out']:,} out), {t['experiments']:,} experiments, "
        f"{t['scorer_queries']:,} scorer queries, {r.submissions:,} submissions ({r.scored:,} on the leaderboard), "
        f"{r.post_count:,} forum posts",
        f"- **Spend rate**: {_rates(r)}",
        (f"- **Best private dev PGR**: {score(best.score_of(r.private) or best.score_of(r.dev))} (public "
         f"{score(best.score_of(r.dev))}) by {best.agent} "
         f"(submission #{best.id}" + (f", commit `{best.commit_sha[:10]}`" if best.commit_sha else "") + ")")
        if best else "- **Best private dev PGR**: no scored submissions yet",
        f"- **The person's actions**: {r.actions:,} (steering, starts and stops, reviews, posts)",
        f"- **The lab now**: {'; '.join([r.now, *(f'warning: {w}' for w in r.warnings)])}",
        f"- **Generated**: {when(r.generated)} by `lab report`",
    ]
    return "\n".join(lines)


def leaderboard(r: Report) -> str:
    out = ["## Leaderboard", ""]
    if not r.leaderboard:
        return "\n".join(out + ["No scored submissions yet (`lab score --baselines` scores the scaffold's baselines)."])
    heldout = r.heldout
    shown = f"All {r.scored}" if len(r.leaderboard) == r.scored else f"The top {len(r.leaderboard)} of {r.scored}"
    out.append(f"{shown} scored submissions, best private dev PGR first; disqualified ones "
               f"are left out (see Flags). PGR is the mean ± standard error over seeds. *Public* is `{r.dev}`, the "
               f"dev set the agents see and evaluate on; *private* is `{r.private}`, fresh texts of the same task "
               f"that no agent has seen, which ranks them; " + (", ".join(f"`{d}`" for d in heldout) +
                                                                " are held out: the agents never see them either."
                                                                if heldout else "there are no held-out sets.")
               + " *Follows teacher*: of the texts where two teachers disagree, on data no agent has seen, how many the "
                 "predictions moved with the teacher they are given (+) and how many against it (-).")
    out.append("")
    headers = ["rank", "submission", "agent", "commit", "method", "private dev", "public dev",
               *[f"{d} (held-out)" for d in heldout], "follows teacher", "open flags"]
    rows = [[rank, f"#{e.id}", e.agent, code((e.commit_sha or "")[:10]), code(e.path),
             *board_row(e, r.private, r.dev, heldout)] for rank, e in enumerate(r.leaderboard, start=1)]
    return "\n".join(out + [table(headers, rows)])


def over_time(r: Report) -> str:
    out = ["## PGR over time", "", f"![Best private dev PGR so far per agent]({PGR_FIGURE})", ""]
    agents = {n: p for n, p in r.best_over_time.items() if n != "lab" and p}
    if not agents and not r.best_over_time.get("lab"):
        out.append("No agent has a scored submission yet.")
    else:
        out.append(f"Each agent's best private dev PGR so far, a dot at each improvement; the thick grey line is the "
                   f"lab's best ({len(agents)} agents with a scored submission). Disqualified submissions "
                   f"do not count.")
    if r.baselines:
        out += ["", "Baselines (dashed): " + ", ".join(f"`{n}` {pgr(v)}" for n, v in r.baselines.items()) + "."]
    return "\n".join(out)


def _budget_left(totals: dict) -> str:
    budget = totals["dollars_budget"]
    return f" (${max(0.0, budget - totals['dollars']):,.2f} left of the ${budget:,.2f} budget)" if budget else ""


def _rates(r: Report) -> str:
    """Dollars an hour: of an agent's working hour, on average, and of the lab's, over the hours the report covers."""
    agent_hours = sum(a.active_hours for a in r.agents)
    per_agent = (f"${r.totals['dollars'] / agent_hours:,.2f} an agent-hour over {agent_hours:,.1f} agent-hours"
                 if agent_hours else "no agent-hours yet")
    hours = (r.last - r.first) / 3600 if r.first is not None and r.last is not None else 0.0
    lab = f"${r.totals['dollars'] / hours:,.2f} an hour for the lab over its {hours:,.1f} h" if hours else ""
    return "; ".join(part for part in (per_agent, lab) if part)


def spend(r: Report) -> str:
    out = ["## Spend and experiments per agent", ""]
    if not r.agents:
        return "\n".join(out + ["No agents have run yet."])
    rows = [[a.name, a.backend, a.model, a.state, f"{a.tokens_in:,}", f"{a.tokens_out:,}", f"${a.dollars:,.2f}",
             f"${a.dollars_per_hour:,.2f}" if a.dollars_per_hour is not None else "-",
             f"{a.experiments:,}", f"{a.scorer_queries:,}", f"{a.submissions:,}", pgr(a.best_pgr),
             f"{a.active_hours:.2f}"] for a in r.agents]
    headers = ["agent", "backend", "model", "state", "tokens in", "tokens out", "dollars", "dollars an hour",
               "experiments", "scorer queries", "submissions", "best private PGR", "active hours"]
    return "\n".join(out + [table(headers, rows), "", f"![Dollars and experiments per agent]({SPEND_FIGURE})"])


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def method(rank: int, d: MethodDiff) -> str:
    out = [f"### {rank}. {d.agent}: submission #{d.submission}, private dev PGR {pgr(d.pgr)}", "",
           f"Commit `{d.commit}`, method `{d.path}`; its diff against `main` (the scaffold it grew from):", ""]
    if d.diff is None:
        return "\n".join(out + [f"*No diff: {d.missing}.*"])
    if not d.diff.strip():
        return "\n".join(out + ["*The commit changes nothing relative to the scaffold.*"])
    lines = d.diff.splitlines()
    shown = "\n".join(lines[:DIFF_LINES])
    fence = _fence(shown)
    out += [f"{fence}diff", shown, fence]
    if len(lines) > DIFF_LINES:
        out += ["", f"*Diff truncated: the first {DIFF_LINES} of {len(lines):,} lines "
                    f"(`git diff main...{d.commit[:10]}` in the research repository prints it all).*"]
    return "\n".join(out)


def methods(r: Report) -> str:
    out = ["## The best methods", ""]
    if not r.diffs:
        return "\n".join(out + ["No agent has a scored submission with a commit yet."])
    out.append(f"The best submission of each of the top {len(r.diffs)} agents, with what its commit changes.")
    return "\n\n".join(["\n".join(out), *(method(i, d) for i, d in enumerate(r.diffs, start=1))])


def resolution(f: FlagRecord) -> str:
    return f.resolution if f.resolution == "open" else f"{f.resolution}: {f.reason or '(no reason given)'}"


def flags(r: Report) -> str:
    out = ["## Flags and their resolution", ""]
    if not r.flags:
        return "\n".join(out + ["No submission raised a flag."])
    counts = {k: sum(f.resolution == k for f in r.flags) for k in ("open", "cleared", "disqualified")}
    out.append(f"{len(r.flags)} flags on {len({f.submission for f in r.flags})} submissions: "
               + ", ".join(f"{n} {k}" for k, n in counts.items()) + ". Open flags wait for a person's review.")
    rows = [[f"#{f.submission}", f.agent, f.kind, f.message, compact(f.evidence) if f.evidence else "-",
             resolution(f)] for f in r.flags]
    return "\n".join(out + ["", table(["submission", "agent", "flag", "message", "evidence", "resolution"], rows)])


def blocked(r: Report) -> str:
    attempts = r.blocked
    out = ["## Blocked attempts to reach outside the sandbox", ""]
    if not attempts:
        return "\n".join(out + ["No agent tried to reach outside its sandbox."])
    total = sum(a.attempts for a in attempts)
    out.append(f"{total:,} tool call{'' if total == 1 else 's'} by {len(attempts)} agent"
               f"{'' if len(attempts) == 1 else 's'} reached for something outside the agent's sandbox (a link out "
               f"of its worktree, a path it may not touch) and {'was' if total == 1 else 'were'} refused; each "
               f"came back to the agent as a tool error. Below the counts, each agent's latest attempts.")
    out += ["", table(["agent", "attempts", "latest"], [[a.agent, f"{a.attempts:,}", when(a.latest[0][0])]
                                                        for a in attempts])]
    for a in attempts:
        out += ["", f"**{a.agent}**:", ""]
        out += [f"- {when(t)}: {literal(summary)}" for t, summary in a.latest]
    return "\n".join(out)


def posts(r: Report) -> str:
    out = ["## The forum's most voted findings", ""]
    if not r.posts:
        return "\n".join(out + ["The forum is empty."])
    out.append(f"The top {len(r.posts)} of {r.post_count} posts by votes (`lab forum read ID` for a whole thread).")
    rows = [[i, f"#{p.id}", p.kind, p.author, f"{p.votes:+d}", p.comments, pgr(p.pgr, p.pgr_se), p.title]
            for i, p in enumerate(r.posts, start=1)]
    return "\n".join(out + ["", table(["rank", "post", "kind", "author", "votes", "comments", "PGR", "title"], rows)])


def cluster(r: Report) -> str:
    """Where the method runs ran, where that is more than this machine."""
    engine = (r.cluster or {}).get("engine", "local")
    if engine == "local" and set(r.nodes) <= {"local"}:
        return ""
    out = ["## Where method runs ran", ""]
    if r.cluster:
        out += [literal(line) for line in describe_cluster(r.cluster)[:1]] + [""]
    rows = [[code(node[:12]), f"{n['runs']:,}", f"{n['retried']:,}", f"{n['seconds'] / 60:,.1f}"]
            for node, n in r.nodes.items()]
    out.append(table(["node", "runs", "retried after a node died", "run minutes"], rows))
    return "\n".join(out)


def render(r: Report) -> str:
    sections = [header(r), leaderboard(r), over_time(r), spend(r), methods(r), flags(r), blocked(r), cluster(r),
                posts(r)]
    sections = [s for s in sections if s]
    return inert("\n\n".join(sections) + "\n")
