"""lab.toml validated once: the settings pydantic validated, kept in the lab's state folder for the commands that
only read, which then start without loading pydantic or building the schema (about 0.2 s of a 0.4 s command).

The supervisor writes the cache as it starts (`remember`: the config `lab start` validated and handed it, or its
own `config.load(path)`), into `<state>/cache/config.json`, atomically. It is keyed by a hash of lab.toml's exact
bytes as validated, its resolved path and the schema's own source, so an edit to either misses; a missing,
unreadable, foreign or malformed cache is a miss too, and a miss validates the file as before. The state folder is
the lab's own: agents never reach it (they see only their worktree and the dev data), so what the cache says is what
the lab itself validated.

A hit is a tree of `Record`s with the same attributes as the Config it was made from, and the same derived values
(lab.config.derived); what needs pydantic (a model's methods, `model_dump`) is not there, so only commands that
only read use it (`Context.view` in lab.cli.base).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.config.derived import AgentNames, LabPaths, RunLimits, TaskDatasets
from lab.state_layout import StateLayout

if TYPE_CHECKING:
    from lab.config.schema import Config
    from lab.settings import (AgentsSettings, BudgetSettings, ClaudeSettings, ClusterSettings, LabSettings,
                              ScorerSettings, SlicesSettings, TaskSettings)

FORMAT = 1
DEFAULT_STATE_DIR = ".lab"     # LabSection's default; a cache found elsewhere than its own state_dir is a miss
_HERE = Path(__file__).resolve().parent
SCHEMA_SOURCES = (_HERE / "schema.py", _HERE / "loading.py", _HERE / "derived.py",
                  _HERE / "embedded.py")


class Record:
    """One validated section of lab.toml (a model of lab.config.schema), its settings as read-only attributes."""
    _model: str

    def __init__(self, model: str, values: dict[str, Any], fields_set: frozenset[str]):
        self.__dict__.update(values)
        self.__dict__["model_fields_set"] = fields_set
        self.__dict__["_model"] = model

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._model} is read-only")

    def __repr__(self) -> str:
        return f"{self._model}(cached)"


class ConfigRecord(Record, LabPaths):
    # what the record of a validated Config holds, so that it is a lab.settings.Settings: each section's record has
    # the settings of that section's model, as `_value` makes it
    root: Path
    lab: LabSettings
    task: TaskSettings
    scorer: ScorerSettings
    agents: AgentsSettings
    budget: BudgetSettings
    claude: ClaudeSettings
    slices: SlicesSettings
    cluster: ClusterSettings


class AgentsRecord(Record, AgentNames):
    pass


class TaskRecord(Record, TaskDatasets):
    pass


class ScorerRecord(Record, RunLimits):
    pass


RECORDS = {"Config": ConfigRecord, "AgentsSection": AgentsRecord, "TaskSection": TaskRecord,
           "ScorerSection": ScorerRecord}


def cache_key(path: Path, source_sha256: bytes) -> str:
    """The key of lab.toml at `path` whose bytes hash to `source_sha256`, under this schema."""
    digest = hashlib.sha256(f"{FORMAT}\0{path.resolve()}\0".encode())
    digest.update(source_sha256)
    for source in SCHEMA_SOURCES:
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()


# ---- writing -------------------------------------------------------------------------------------------------
def _tree(value: Any) -> object:
    """A validated Config as JSON: each model tagged with its class and the fields set in lab.toml."""
    fields = getattr(type(value), "model_fields", None)
    if fields is not None:
        return {"model": [type(value).__name__, sorted(value.model_fields_set),
                          {name: _tree(getattr(value, name)) for name in fields}]}
    if isinstance(value, dict):
        return {"dict": {str(k): _tree(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"list": [_tree(v) for v in value]}
    if isinstance(value, Path):
        return {"path": str(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"lab.toml's settings hold a {type(value).__name__}, which the cache cannot keep")


def remember(path: Path, cfg: Config) -> bool:
    """Keep `cfg`, lab.toml at `path` as load() validated it; False where it could not be written (a config not
    loaded from a file, no state folder yet, a full disk, no permission): the cache is only ever a shortcut."""
    if cfg.source_sha256 is None or not cfg.state_dir.is_dir():
        return False
    target = cfg.state.config_cache
    document = json.dumps({"key": cache_key(Path(path), cfg.source_sha256), "config": _tree(cfg)}).encode()
    temp = None
    try:
        target.parent.mkdir(exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            out.write(document)
        os.replace(temp, target)
        return True
    except OSError:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        return False


# ---- reading -------------------------------------------------------------------------------------------------
class BadCache(ValueError):
    """The cache file is not one this module wrote."""


def _value(node: object) -> Any:
    if not isinstance(node, dict):
        if node is None or isinstance(node, (str, int, float, bool)):
            return node
        raise BadCache(f"unexpected {type(node).__name__}")
    if len(node) != 1:
        raise BadCache("a node with more than one tag")
    (kind, body), = node.items()
    if kind == "model":
        name, fields_set, values = body
        return RECORDS.get(name, Record)(str(name), {str(k): _value(v) for k, v in values.items()},
                                         frozenset(fields_set))
    if kind == "dict":
        return {str(k): _value(v) for k, v in body.items()}
    if kind == "list":
        return [_value(v) for v in body]
    if kind == "path":
        return Path(body)
    raise BadCache(f"unknown tag {kind!r}")


def load(path: Path | str) -> ConfigRecord | None:
    """The validated settings of lab.toml at `path` as the lab last validated this very file; None on a miss."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        lab = tomllib.loads(raw.decode()).get("lab", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    state = lab.get("state_dir", DEFAULT_STATE_DIR) if isinstance(lab, dict) else None
    if not isinstance(state, str):
        return None
    state_dir = (path.resolve().parent / state).resolve()
    try:
        document = json.loads(StateLayout(state_dir).config_cache.read_bytes())
        if not isinstance(document, dict) or document.get("key") != cache_key(path, hashlib.sha256(raw).digest()):
            return None
        cfg = _value(document["config"])
    except (OSError, KeyError, TypeError, ValueError, AttributeError):   # BadCache and JSON errors are ValueErrors
        return None
    if not isinstance(cfg, ConfigRecord) or cfg.state_dir != state_dir:
        return None
    return cfg
