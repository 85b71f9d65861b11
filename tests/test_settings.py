"""lab.settings follows lab.config's schema: every model of the schema has its protocol, and every setting of a model
is a member of it. mypy checks the members' types wherever a Config is taken as Settings; this checks that none is
missing, so that code typed with Settings can read every setting of lab.toml."""
from __future__ import annotations

import typing

from pydantic import BaseModel

from lab import config, settings

PROTOCOLS = {
    config.Config: settings.Settings,
    config.LabSection: settings.LabSettings,
    config.TaskSection: settings.TaskSettings,
    config.SplitSizes: settings.SplitSizesSettings,
    config.HfSection: settings.HfSettings,
    config.HfDataset: settings.HfDatasetSettings,
    config.HfTraining: settings.HfTrainingSettings,
    config.ScorerSection: settings.ScorerSettings,
    config.AgentsSection: settings.AgentsSettings,
    config.BudgetSection: settings.BudgetSettings,
    config.Limit: settings.LimitSettings,
    config.ClaudeSection: settings.ClaudeSettings,
    config.Prices: settings.PricesSettings,
    config.SlicesSection: settings.SlicesSettings,
    config.ClusterSection: settings.ClusterSettings,
}


def models_in(model: type[BaseModel]) -> set[type[BaseModel]]:
    """The model and every model its fields hold, however nested (optional, in a dict)."""
    found = {model}
    for field in model.model_fields.values():
        pending = [field.annotation]
        while pending:
            annotation = pending.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found |= models_in(annotation)
            pending += typing.get_args(annotation)
    return found


def test_every_model_of_the_schema_has_a_protocol():
    assert models_in(config.Config) == set(PROTOCOLS)


def test_every_setting_is_a_member_of_its_protocol():
    for model, protocol in PROTOCOLS.items():
        members = {name for name in vars(protocol) if not name.startswith("_")}
        missing = set(model.model_fields) - members
        assert not missing, f"{protocol.__name__} lacks {', '.join(sorted(missing))} of {model.__name__}"
