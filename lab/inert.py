"""Text from agents, made inert before a terminal shows it: no control character or escape sequence gets through.

Agents write commit messages, forum posts, notebooks, file names and method output; the person reads them
in `lab` commands, the TUI and the report. A terminal obeys what such text may carry (ESC and the C1
controls start sequences that clear the screen, retitle the window or write the clipboard; CR and BS
overwrite what was printed; bidi overrides and marks reorder what is seen; the line and paragraph
separators break a line where a reader sees none; a byte-order mark hides), so each of those characters is
replaced by a visible stand-in: C0 controls by their Unicode control pictures (ESC -> ␛, CR -> ␍, BEL -> ␇),
DEL by ␡, C1, bidi controls and marks (U+200E, U+200F), U+2028, U+2029 and U+FEFF by their code point
(<U+009B>). Newlines and tabs are kept; `inert_line` shows
a newline as ␤ too, for fields that must stay on one line. Dependency-free: the CLI, the TUI and
the report use it.
"""
from __future__ import annotations

import dataclasses
import re

# every C0 control but tab (09) and newline (0A); DEL and the C1 controls; the bidi marks, embeddings, overrides
# and isolates; the line and paragraph separators; the byte-order mark (zero width no-break space)
_OTHERS = "\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_OTHERS}]")
_UNSAFE_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_OTHERS}]")


def _picture(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)      # the Control Pictures block mirrors C0: U+241B is ESC's
    if code == 0x7F:
        return "\u2421"                # ␡
    return f"<U+{code:04X}>"


_PICTURES = {chr(c): _picture(chr(c)) for c in [*range(0x20), *range(0x7F, 0xA0), 0x200E, 0x200F, 0x2028, 0x2029,
                                                *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]}
_LINE_PICTURES = {**_PICTURES, "\n": "\u2424", "\t": " "}      # ␤


def inert(text: str | None) -> str:
    """The text with every control character but newline and tab shown as a harmless picture; None is ''."""
    # a regex finds the rare unsafe characters in C; str.translate would look up every character instead
    return _UNSAFE.sub(lambda m: _PICTURES[m.group()], text) if text else ""


def inert_line(text: str | None) -> str:
    """As inert, for a field that must stay on one line: newlines shown as ␤, tabs as spaces."""
    return _UNSAFE_IN_LINE.sub(lambda m: _LINE_PICTURES[m.group()], text) if text else ""


def inert_data(value):
    """Every string inside plain data (dicts, lists, tuples, dataclasses) made inert; other values as they are."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, dict):
        return {inert_data(k): inert_data(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):      # a named tuple
        return type(value)(*(inert_data(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(inert_data(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: inert_data(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value
