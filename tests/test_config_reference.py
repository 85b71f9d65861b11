"""docs/configuration.md is what the schema's own field descriptions make now, and every field has one."""
from __future__ import annotations

from lab.config import reference as config_reference


def test_every_field_has_a_description():
    missing = config_reference.undescribed()
    assert not missing, f"lab/config/schema.py: fields without description=: {', '.join(missing)}"


def test_configuration_md_is_current():
    made = config_reference.render()
    written = config_reference.OUT.read_text() if config_reference.OUT.is_file() else ""
    assert written == made, (f"{config_reference.OUT} differs from the schema: run python -m lab.config.reference "
                             "and commit the result")


def test_every_key_of_the_shipped_lab_toml_is_documented():
    import tomllib

    text = config_reference.render()
    data = tomllib.loads((config_reference.OUT.parent.parent / "lab.toml").read_text())
    for section, keys in data.items():
        for key, value in keys.items():
            if isinstance(value, dict):
                continue
            assert f"## [{section}]" in text and f"| `{key}` |" in text, f"{section}.{key} missing from the reference"
