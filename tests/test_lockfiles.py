"""The lockfiles that `make lab` and `make test` install from agree with pyproject.toml: every dependency pinned at a
version its requirement allows, the runtime's lock without the test and Ray extras, torch left to TORCH.

`make lock` rewrites both after pyproject.toml changes; this fails until someone does.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name, _, version = line.partition(";")[0].strip().partition("==")
            found[canonicalize_name(name)] = version
    return found


@pytest.mark.parametrize("lock, extras", [("lab.lock", []), ("test.lock", ["test", "ray"])])
def test_each_lock_pins_every_requirement_at_an_allowed_version(lock, extras):
    pinned = pins(lock)
    wanted = [Requirement(r) for r in [*PROJECT["dependencies"],
                                       *(r for extra in extras for r in PROJECT["optional-dependencies"][extra])]]
    for req in wanted:
        name = canonicalize_name(req.name)
        if name == "torch":
            assert name not in pinned, "torch is TORCH's to choose (a CPU or a CUDA build)"
            continue
        assert name in pinned, f"{req} is not in requirements/{lock}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"requirements/{lock} pins {name}=={pinned[name]}, outside {req}: run `make lock`"


def test_the_runtime_lock_leaves_out_the_test_and_ray_extras():
    runtime = pins("lab.lock")
    for extra in ("test", "ray"):
        for req in PROJECT["optional-dependencies"][extra]:
            assert canonicalize_name(Requirement(req).name) not in runtime, req
    with_tests = pins("test.lock")
    assert {name: with_tests.get(name) for name in runtime} == runtime     # `make test` after `make lab` changes none
