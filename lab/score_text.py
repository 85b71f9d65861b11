"""The text of each score figure, one function per figure, for the agents' tools, the CLI, the TUI and the report.

Each surface lays the figures out its own way (a Markdown table, a Rich table, aligned columns, a line); a figure
reads the same on all of them. What an agent may be told is lab.scorer.told's business: this only writes text.
"""
from __future__ import annotations

from collections.abc import Iterable

from lab.store.scores import Following, Score, Submission


def pgr(value: float | None, se: float | None = None, tight: bool = False) -> str:
    """A PGR (or another signed mean: the teacher following) to three places, ± its standard error where there is
    one; "-" where there is no figure. `tight` drops the spaces around ±, for the TUI's narrow tables."""
    if value is None:
        return "-"
    return f"{value:+.3f}" + (f"{'±' if tight else ' ± '}{se:.3f}" if se is not None else "")


def score(s: Score | None, tight: bool = False) -> str:
    """A dataset's PGR ± SE; "failed" where its runs failed, "-" where it was not scored."""
    if s is None:
        return "-"
    if s.failed:
        return "failed"
    return pgr(s.pgr, s.pgr_se, tight)


def follows_teacher(f: Following | None) -> str:
    """"+12/-1": texts the predictions moved with the teacher and against it, for tables; "-" where there was no
    teacher check."""
    return f"+{f.with_teacher}/-{f.against}" if f else "-"


def teacher_check(f: Following) -> str:
    """The teacher check in one line, for people (and the ignores_teacher flag's message)."""
    return (f"its predictions moved with the teacher on {f.with_teacher} texts and against it on {f.against} "
            f"(z {f.z:+.1f}), where two teachers disagree, over {f.pairs} pairs of runs on {', '.join(f.sets)}; "
            f"following {pgr(f.following, f.se)} (1: copies it, 0: ignores it)")


def flags(kinds: Iterable[str]) -> str:
    """Flag kinds in a cell: "heldout_gap, failed"; "-" for none."""
    return ", ".join(kinds) or "-"


def board_row(sub: Submission, private: str, dev: str, heldout: Iterable[str], tight: bool = False) -> list[str]:
    """A leaderboard row's figures, side by side: the private replica's PGR (which ranks it), the public dev set's,
    each held-out set's, how far it follows the teacher, and its open flags."""
    return [score(sub.score_of(private), tight), score(sub.score_of(dev), tight),
            *[score(sub.score_of(d), tight) for d in heldout], follows_teacher(sub.following),
            flags(sub.open_flag_kinds)]
