"""Tool input checked against the tool's JSON schema before its handler runs.

The subset of JSON Schema that the tools use: type (a name or a list of names), properties, required,
additionalProperties (false, or a schema for the other fields), enum, minimum, maximum and items;
description, title and default are annotations. `check_schema` refuses any other keyword, so that a
tool never declares a constraint that nobody enforces. jsonschema is not a dependency of the lab,
and these few rules are all the tools need.
"""
from __future__ import annotations

import math
from typing import Any

KEYWORDS = {"type", "properties", "required", "additionalProperties", "enum", "minimum", "maximum", "items",
            "description", "title", "default"}
TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


def check_schema(schema: dict, where: str = "schema") -> None:
    """Raise ValueError where a schema uses a keyword or a type this validator does not enforce."""
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise ValueError(f"{where}: unsupported JSON schema keywords {sorted(unknown)} (supported: {sorted(KEYWORDS)})")
    for name in _type_names(schema):
        if name not in TYPES:
            raise ValueError(f"{where}: unknown type {name!r} (expected one of: {', '.join(TYPES)})")
    for name, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.{name}")
    for key in ("additionalProperties", "items"):
        if isinstance(schema.get(key), dict):
            check_schema(schema[key], f"{where}.{key}")


def violations(schema: dict, value: Any, path: str = "") -> list[str]:
    """Every way value breaks schema, each naming its field ("offset: expected an integer, got ...")."""
    names = _type_names(schema)
    if names and not any(_is(value, name) for name in names):
        return [f"{_label(path)}: expected {' or '.join(_article(n) for n in names)}, got {_describe(value)}"]
    found = []
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        found.append(f"{_label(path)}: {_describe(value)} is not one of {', '.join(map(_show, schema['enum']))}")
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{_label(path)}: {_show(value)} is below the minimum {_show(schema['minimum'])}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{_label(path)}: {_show(value)} is above the maximum {_show(schema['maximum'])}")
    if isinstance(value, dict):
        found += _object_violations(schema, value, path)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += violations(schema["items"], item, f"{path}[{i}]")
    return found


def _object_violations(schema: dict, value: dict, path: str) -> list[str]:
    properties = schema.get("properties") or {}
    found = [f"{_label(_join(path, name))}: missing (required)" for name in schema.get("required") or []
             if name not in value]
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            found += violations(properties[name], item, _join(path, name))
        elif extra is False:
            known = ", ".join(properties) or "none"
            found.append(f"{_label(_join(path, name))}: unknown field (expected: {known})")
        elif isinstance(extra, dict):
            found += violations(extra, item, _join(path, name))
    return found


def _type_names(schema: dict) -> list[str]:
    kind = schema.get("type")
    return [] if kind is None else [kind] if isinstance(kind, str) else list(kind)


def _is(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    # JSON has one kind of number: true is not 1, and 2.0 is an integer
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return name == "number" or float(value).is_integer()


def _same(value: Any, option: Any) -> bool:
    return value == option and isinstance(value, bool) == isinstance(option, bool)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _label(path: str) -> str:
    return path or "the arguments"


def _article(name: str) -> str:
    return {"object": "an object", "array": "an array", "integer": "an integer", "null": "null"}.get(name, f"a {name}")


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else "null" if value is None else str(value).lower() \
        if isinstance(value, bool) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _show(value)
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, (int, float)):
        return f"the number {_show(value)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"
