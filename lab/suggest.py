""""Did you mean": the one valid name closest to a mistyped one, for the one-line errors of the CLI and lab.toml."""
from __future__ import annotations

import difflib


def closest(word: str, choices: list[str], cutoff: float = 0.6) -> str | None:
    """The choice most like `word`, where one stands out; None where none is close, or several are equally close
    (agent-1 ... agent-9 for "agent-x": naming one of them would be a guess)."""
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in choices), reverse=True)
    if not scored or scored[0][0] < cutoff or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]


def did_you_mean(word: str, choices: list[str]) -> str:
    """ "did you mean 'x'? " where one choice is close, else ""."""
    found = closest(word, choices)
    return f"did you mean {found!r}? " if found else ""
