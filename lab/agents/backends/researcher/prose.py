"""What the researcher writes: commit messages, forum posts of results and submissions, notebook lines,
and the lessons its experiments teach."""
from __future__ import annotations

import json
import math

from lab.agents.backends import recipes
from lab.agents.backends.researcher import knowledge
from lab.agents.backends.researcher.context import Context
from lab.agents.backends.researcher.state import Experiment, Known, Parent, Submission, TeacherDependence, mean
from lab.agents.turns import ToolResult


def commit_message(exp: Experiment) -> str:
    """The recipe, why it is tried and, once seeds are scored (a state from before `run`), their dev PGR."""
    scored = f"dev PGR {exp.mean:+.4f} over {len(exp.pgrs)} seed(s); " if exp.pgrs else ""
    return (f"{exp.tag}: {recipes.describe(exp.recipe)}\n\n{scored}{exp.why}\n"
            f"recipe: {json.dumps(exp.recipe, sort_keys=True)}")


def verdict(ctx: Context, exp: Experiment) -> str:
    """How the experiment compares with its parent, given the noise; "" where the parent has no PGR."""
    parent = exp.parent
    if parent is None or parent.pgr is None:
        return ""
    delta, margin = exp.mean - parent.pgr, knowledge.noise(ctx.state) / math.sqrt(len(exp.pgrs))
    return "better than" if delta > margin else "worse than" if delta < -margin else "within noise of"


def result_post(ctx: Context, exp: Experiment, flagged: Known | Parent | None) -> tuple[dict, str]:
    """The forum post of an experiment's result (good or bad) and its notebook line. `flagged`: the
    flagged recipe on the line it builds on, which the post names."""
    noise = knowledge.noise(ctx.state)
    pgr, n = exp.mean, len(exp.pgrs)
    acc = mean(exp.accs)
    desc = recipes.describe(exp.recipe)
    parent, judged = exp.parent, verdict(ctx, exp)
    lines = [f"Recipe: {desc}.", f"Why: {exp.why}."]
    if judged and parent is not None and parent.pgr is not None:     # what verdict() compared
        lines.append(f"Builds on {knowledge.who(parent)} (PGR {parent.pgr:+.3f}): {judged} it by "
                     f"{pgr - parent.pgr:+.3f}.")
    if flagged is not None:
        lines.append(f"Builds on {flagged_line(flagged, knowledge.is_parent_of(flagged, exp))}.")
    spread = f" (seeds: {', '.join(f'{p:+.3f}' for p in exp.pgrs)})" if n > 1 else ""
    lines.append(f"Dev accuracy {acc:.4f}, PGR {pgr:+.4f} over {n} seed(s){spread}; one seed's noise is "
                 f"about ±{noise:.2f}.")
    lines.append(f"Run it: python method.py --data /data --out runs/x.jsonl --seed 0 (commit "
                 f"{(exp.commit or 'uncommitted')[:10]}).")
    lines.append(f"recipe: {json.dumps(recipes.canonical(exp.recipe), sort_keys=True)}")
    metrics = {"pgr": round(pgr, 4), "acc": round(acc, 4), "seeds": n, "recipe": recipes.canonical(exp.recipe)}
    if n > 1:
        metrics["pgr_se"] = round(noise / math.sqrt(n), 4)
    if parent and parent.commit:
        metrics["parent_commit"] = parent.commit
    if flagged is not None:
        metrics["parent_flags"] = sorted(flagged.flags)
    args = {"kind": "result", "title": f"{desc}: dev PGR {pgr:+.3f} ({n} seed{'s' if n > 1 else ''})",
            "body": "\n".join(lines), "metrics": metrics}
    if exp.commit:
        args["commit"] = exp.commit
    note = f"- {exp.tag} {desc}: PGR {pgr:+.3f} ({n} seed{'s' if n > 1 else ''})" + (
        f", {judged} parent {parent.pgr:+.3f}" if judged and parent is not None else "") + (
        f" [{exp.commit[:10]}]" if exp.commit else "")
    return args, note


def submission_post(exp: Experiment, sub: Submission) -> tuple[dict, str]:
    """The forum post of what the scorer made of a submission, and its notebook line."""
    desc = recipes.describe(exp.recipe)
    seeds = sub.seeds or []
    n = len(seeds) if isinstance(seeds, list) else seeds
    title = f"submitted {exp.committed[:10]} ({desc}): dev PGR {sub.pgr:+.3f} ± {sub.se:.3f} over {n} seeds"
    body = (f"The scorer re-ran {exp.tag} ({desc}) from commit {exp.committed[:10]} over seeds {seeds}: dev PGR "
            f"{sub.pgr:+.4f} ± {sub.se:.4f}, accuracy {sub.acc:.4f} (my own {len(exp.pgrs)} seeds: "
            f"{exp.mean:+.4f}).")
    if sub.teacher is not None and teacher_words(sub.teacher):
        body += f"\nTeacher dependence: {teacher_words(sub.teacher)}."
    if sub.flags:
        body += (f"\nThe scorer flagged it {describe_flags(sub.flags, sub.teacher)}. I will not build on this line "
                 "or submit it again.")
    body += f"\nrecipe: {json.dumps(recipes.canonical(exp.recipe), sort_keys=True)}"
    metrics = {"pgr": sub.pgr, "pgr_se": sub.se, "acc": sub.acc, "seeds": n,
               "submission": sub.submission, "recipe": recipes.canonical(exp.recipe)}
    if sub.flags:
        metrics["flags"] = sorted(sub.flags)
    note = f"- submitted {exp.committed[:10]} ({desc}): {sub.pgr:+.3f} ± {sub.se:.3f} (#{sub.submission})"
    return {"kind": "result", "title": title, "body": body, "commit": exp.committed, "metrics": metrics}, note


def flagged_submission_note(exp: Experiment, sub: Submission) -> str:
    return (f"- submission #{sub.submission} ({exp.committed[:10]}, {recipes.describe(exp.recipe)}) was FLAGGED by "
            f"the scorer: {describe_flags(sub.flags, sub.teacher)}; not building on its line or submitting it again")


def flagged_line(flagged: Known | Parent, is_parent: bool) -> str:
    """What an experiment builds on where the scorer flagged it: "#N (agent-2's 0a1b2c3d4e), which
    the scorer flagged ignores_teacher: ..." (or "the line of #N ..." where the flag is further up)."""
    ref = f"#{flagged.flagged_in} ({knowledge.who(flagged)})" if flagged.flagged_in else knowledge.who(flagged)
    teacher = flagged.teacher if isinstance(flagged, Known) else None
    return (f"{ref if is_parent else f'the line of {ref}'}, which the scorer flagged "
            f"{describe_flags(flagged.flags, teacher)}")


def describe_flags(flags: dict[str, str], teacher: TeacherDependence | None = None) -> str:
    def one(kind: str, message: str) -> str:
        if not message and kind == "ignores_teacher" and teacher is not None:
            message = teacher_words(teacher)
        return f"{kind}: {message}" if message else kind
    return "; ".join(one(kind, message) for kind, message in sorted(flags.items()))


def teacher_words(t: TeacherDependence) -> str:
    if t.pgr is None or t.counterfactual_pgr is None:
        return ""
    words = f"PGR {t.pgr:+.3f} with the teacher's labels, {t.counterfactual_pgr:+.3f} with them shuffled"
    if t.difference is not None:
        words += f" (difference {t.difference:+.3f}" + (
            f" ± {t.difference_se:.3f})" if t.difference_se is not None else ")")
    return words


def notebook_text(ctx: Context, line: str) -> str:
    """The notes waiting to be written, this line, and every fifth experiment the lessons so far."""
    lines = ctx.state.take_notes() + [line]
    if ctx.state.experiments % 5 == 0:
        lines.append(lessons(ctx))
    return "\n".join(lines)


def lessons(ctx: Context) -> str:
    """What the experiments so far say about each dimension, and the best recipe known."""
    s = ctx.state
    parts = []
    for dim, deltas in sorted(s.effects.items(), key=lambda kv: -sum(kv[1]) / len(kv[1])):
        effect = mean(deltas)
        parts.append(f"{dim} {'helped' if effect > 0 else 'hurt'} ({effect:+.3f} over {len(deltas)})")
    ranked, _ = knowledge.unflagged_first(s, knowledge.ranked(s))
    best = ""
    if ranked:
        top = ranked[0]
        flagged = " (flagged by the scorer)" if knowledge.flagged_line(s, top) else ""
        best = (f" Best known: {recipes.describe(top.recipe)} at {top.pgr:+.3f} ({top.seeds} seeds, "
                f"{knowledge.who(top)}){flagged}.")
    return f"Lessons after {s.experiments} experiments: {'; '.join(parts) or 'none yet'}.{best}"


def insight_post(ctx: Context) -> dict:
    return {"kind": "insight", "title": f"{ctx.agent}: what {ctx.state.experiments} experiments on "
                                        f"{ctx.focus.label} say", "body": lessons(ctx)}


def first_line(result: ToolResult) -> str:
    """The line of a failed tool result worth quoting: a shell's last line of output, else the first."""
    text = (result.data or {}).get("error") or result.output or ""
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("[")]
    return (lines[-1] if result.name == "shell" and lines else text.strip().splitlines()[0] if text.strip() else "")

