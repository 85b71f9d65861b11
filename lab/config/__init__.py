"""lab.toml, read once per start.

    schema.py      its sections, their settings and checks (pydantic)
    loading.py     load(): the file validated, or one line naming the key at fault
    derived.py     values derived from the settings, shared by the schema and the cache's records
    embedded.py    the embedded task's datasets (names, default sizes) and label packages, as the config knows them
    cache.py       the settings the supervisor validated, which read-only commands load without pydantic
    handover.py    a validated config handed to a process the lab starts, which then validates nothing
    reference.py   docs/configuration.md, generated from the schema (`python -m lab.config.reference`)

`from lab import config; config.load(path)` and `config.Config` work as before the package: the names below are
imported on first use, so that a read-only command can import lab.config.cache without loading pydantic.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.config.loading import load, parse
    from lab.config.schema import (DIRECTIONS, AgentsSection, BudgetSection, ClaudeSection, ClusterSection, Config,
                                   HfDataset, HfSection, HfTraining, LabSection, Limit, Prices, ScorerSection,
                                   SlicesSection, SplitSizes, TaskSection)

__all__ = ["DIRECTIONS", "AgentsSection", "BudgetSection", "ClaudeSection", "ClusterSection", "Config", "HfDataset",
           "HfSection", "HfTraining", "LabSection", "Limit", "Prices", "ScorerSection", "SlicesSection", "SplitSizes",
           "TaskSection", "load", "parse"]
_LOADING = ("load", "parse")     # the others are the schema's


def __getattr__(name: str):
    if name not in __all__:   # a submodule not imported yet, say: nothing is loaded for it here
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{'loading' if name in _LOADING else 'schema'}")
    return getattr(module, name)
