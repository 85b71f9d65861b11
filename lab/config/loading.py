"""Loading lab.toml: its settings validated against the schema (lab.config.schema), or one line that names the key at
fault, its line and the closest valid key."""
from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lab.config.schema import SOURCE_KEY, Config
from lab.errors import ConfigError
from lab.suggest import closest
from lab.toml_lines import key_line


def _describe(error: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in error["loc"] if p != "root") or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    if kind == "value_error":
        return str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
    return f"{loc}: {error['msg'][0].lower()}{error['msg'][1:]}, got {error.get('input')!r}"


def _expected_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return [k for k in model.model_fields if k != "root"]


def _unknown_key(loc: tuple) -> str:
    """What follows "unknown key": the closest valid key where one is close, and every valid key."""
    expected = _expected_keys(Config, loc)
    if not expected:
        return ""
    guess = closest(str(loc[-1]), expected)
    return f"{f'; did you mean {guess!r}?' if guess else ''} (expected one of: {', '.join(expected)})"


def parse(data: dict, root: Path, source: str = "lab.toml", text: str | None = None) -> Config:
    """The validated settings, or a ConfigError of one line that names the key (with its line, where `text`, the
    file's own text, shows it)."""
    if "root" in data:
        raise ConfigError(f"{source}: root: unknown key")
    try:
        return Config(**data, root=root)
    except ValidationError as exc:
        error = exc.errors()[0]
        line = _describe(error)
        if error["type"] == "extra_forbidden":
            line += _unknown_key(tuple(error["loc"]))
        number = key_line(text, tuple(error["loc"])) if text is not None else None
        where = f"{source}, line {number}" if number else source
        raise ConfigError(f"{where}: {line}") from None


def load(path: Path | str, remember: bool = False) -> Config:
    """lab.toml, validated. With `remember`, the validated settings are also kept in the lab's state folder (where
    it exists), for read-only commands to find without validating the same file again (lab.config.cache)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (expected a lab.toml; pass --config FILE)")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    cfg = parse(data, root=path.resolve().parent, source=str(path), text=raw.decode())
    cfg.__dict__[SOURCE_KEY] = hashlib.sha256(raw).digest()   # Config.source_sha256
    if remember:
        from lab.config import cache

        cache.remember(path, cfg)
    return cfg
