"""docs/configuration.md, generated from lab.toml's schema (lab/config/schema.py) and its fields' own descriptions.

    python -m lab.config.reference            # write docs/configuration.md
    python -m lab.config.reference --check    # exit 1 where the file differs from what the schema makes now

tests/test_config_reference.py fails when the two differ, or when a field has no description.
"""
from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeGuard

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lab.config.schema import Config

OUT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

# not keys of lab.toml: set by loading
INTERNAL = {("root",)}

# how a dict of tables is named in lab.toml, by the field's path
TABLE_KEYS = {"task.sizes": "DATASET", "task.hf.datasets": "NAME", "claude.model_prices": '"MODEL"'}

HEADER = """# Configuration reference

Every key of `lab.toml`, with its type, its default and what it does. Every key is optional unless its default
says *required*; an unknown key or a wrong type is refused with one line naming the key and its line (and the
closest valid key). The repository's `lab.toml` is the embedded default with a comment on each key.

This page is generated from the schema (`lab/config/schema.py`) and its fields' descriptions: do not edit it by
hand. After a change to the schema, run `python -m lab.config.reference`; `tests/test_config_reference.py` fails
until then.
"""


def _optional(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `| None`, and whether it had it."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_model(annotation: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type_name(annotation: Any) -> str:
    annotation, optional = _optional(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        name = " or ".join(json.dumps(a) for a in args)
    elif origin is list:
        name = f"list of {_type_name(args[0])}s"
    elif origin is dict:
        name = "tables (below)" if _is_model(args[1]) else f"table of {_type_name(args[1])}s"
    elif _is_model(annotation):
        name = "table (below)"
    else:
        name = {int: "integer", float: "number", str: "string", bool: "boolean"}.get(annotation, str(annotation))
    return name


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _bounds(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for name, sign in _BOUNDS.items():
            if isinstance(meta, getattr(annotated_types, name.title())):
                parts.append(f"{sign} {getattr(meta, name)}")
        if isinstance(meta, annotated_types.MinLen) and meta.min_length > 0:
            parts.append(f"at least {meta.min_length} item{'s' if meta.min_length > 1 else ''}")
        if isinstance(meta, annotated_types.MaxLen):
            parts.append(f"at most {meta.max_length} items")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "*required*"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "(below)"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        return "`" + json.dumps({k: v.model_dump() for k, v in value.items()}) + "`"
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and len(text) > 60:
        return f"{len(value)} items (lab/config/schema.py)"
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sections(model: type[BaseModel], path: tuple[str, ...], default: BaseModel | None):
    """(name, model, default instance or None) for `model` and every table inside it, depth first."""
    yield path, model, default
    for key, field in model.model_fields.items():
        annotation, _ = _optional(field.annotation)
        sub = getattr(default, key, None) if default is not None else None
        if sub is None and isinstance(field.default, BaseModel):
            sub = field.default
        if _is_model(annotation):
            yield from _sections(annotation, path + (key,), sub if isinstance(sub, BaseModel) else None)
        elif typing.get_origin(annotation) is dict and _is_model(typing.get_args(annotation)[1]):
            name = TABLE_KEYS.get(".".join(path + (key,)), "NAME")
            yield from _sections(typing.get_args(annotation)[1], path + (key, name), None)


def _table(model: type[BaseModel], path: tuple[str, ...], default: BaseModel | None) -> list[str]:
    lines = [f"## [{'.'.join(path)}]", ""]
    doc = model.__dict__.get("__doc__")
    if doc:
        lines += [" ".join(doc.split()), ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    for key, field in model.model_fields.items():
        if (key,) in INTERNAL and not path:
            continue
        kind = _type_name(field.annotation)
        bounds = _bounds(field)
        if bounds:
            kind += f" ({bounds})"
        value = _default(field)
        # a nested table's default may differ from its class's (budget.agent's dollars, hf.weak_training's epochs)
        if default is not None and not field.is_required() and value != "(below)":
            own = getattr(default, key)
            if own != field.get_default(call_default_factory=True):
                value = "unset" if own is None else f"`{json.dumps(own, ensure_ascii=False)}`"
        lines.append(f"| `{key}` | {_cell(kind)} | {_cell(value)} | {_cell(field.description or '')} |")
    return lines + [""]


def undescribed() -> list[str]:
    """Every field of the schema without a description, by its path."""
    missing = []
    for path, model, _ in _sections(Config, (), None):
        for key, field in model.model_fields.items():
            if not field.description:
                missing.append(".".join(path + (key,)))
    return missing


def render() -> str:
    lines = [HEADER]
    for path, model, default in _sections(Config, (), Config.model_construct()):
        if not path:
            continue
        lines += _table(model, path, default)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python -m lab.config.reference", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
