"""publish_check on bundles made by real git: every object of a pack is measured before git takes any of it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lab.scaffold.publish_check import PublishLimits, PublishRefused, check_bundle

ENV = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
       "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x"}
ROOMY = PublishLimits(message_bytes=1 << 20, blob_bytes=16 << 20, publish_bytes=64 << 20, objects=1000)


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], env=ENV, input=input, capture_output=True,
                          check=True).stdout.decode().strip()


def commit(repo: Path, files: dict[str, bytes], message: str = "a step") -> str:
    for name, data in files.items():
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-F", "-", input=message.encode())
    return git(repo, "rev-parse", "HEAD")


def bundle(repo: Path, *revs: str) -> Path:
    path = repo.parent / f"{len(list(repo.parent.glob('*.bundle')))}.bundle"
    git(repo, "bundle", "create", "-q", str(path), *revs)
    return path


def nothing_known(ids: list[str]) -> dict[str, str]:
    return {}


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, {"a.txt": b"hello\n"}, "first")
    return path


def test_an_ordinary_publish_is_measured_unpacked(repo):
    commit(repo, {"b.txt": b"b" * 100_000}, "second")
    measured = check_bundle(bundle(repo, "main"), ROOMY, nothing_known)
    assert measured.objects == 6 and measured.unpacked_bytes > 100_000


def test_a_long_message_is_refused_however_well_it_compresses(repo):
    commit(repo, {"b.txt": b"b"}, "s" * 300_000)
    path = bundle(repo, "main")
    assert path.stat().st_size < 10_000
    with pytest.raises(PublishRefused, match="commit of .* at most 64 KB"):
        check_bundle(path, PublishLimits(message_bytes=64 << 10), nothing_known)


def test_a_large_file_and_a_large_total_are_refused(repo):
    commit(repo, {"big.txt": b"z" * (3 << 20)})
    with pytest.raises(PublishRefused, match="a file of 3 MB; one may be at most 1 MB"):
        check_bundle(bundle(repo, "main"), PublishLimits(blob_bytes=1 << 20), nothing_known)
    big = git(repo, "rev-parse", "HEAD")
    (repo / "big.txt").unlink()
    commit(repo, {f"part{i}.txt": bytes([65 + i]) * (900 << 10) for i in range(4)})
    with pytest.raises(PublishRefused, match="over 2 MB of objects, unpacked"):
        check_bundle(bundle(repo, f"{big}..main"), PublishLimits(blob_bytes=1 << 20, publish_bytes=2 << 20),
                     nothing_known)
    with pytest.raises(PublishRefused, match="at most 5"):
        check_bundle(bundle(repo, "main"), PublishLimits(objects=5), nothing_known)


def test_a_delta_is_measured_by_the_object_it_makes_not_by_its_own_size(repo):
    text = b"".join(b"line %d of a long file\n" % i for i in range(40_000))   # about 1 MB, incompressible enough
    commit(repo, {"data.txt": text})
    commit(repo, {"data.txt": text + b"one more line\n"})
    path = bundle(repo, "main")
    packed = subprocess.run(["git", "-C", str(repo), "verify-pack", "-v", str(_pack_of(path))], env=ENV,
                            capture_output=True, text=True, check=True).stdout
    assert " blob " in packed and any(len(line.split()) >= 7 for line in packed.splitlines() if " blob " in line)
    assert check_bundle(path, ROOMY, nothing_known).unpacked_bytes > 2 * len(text)
    with pytest.raises(PublishRefused, match="a file of"):
        check_bundle(path, PublishLimits(blob_bytes=len(text) - 1), nothing_known)


def test_a_thin_packs_delta_takes_its_kind_from_the_repository(repo):
    text = b"".join(b"row %d, some text to delta against\n" % i for i in range(30_000))
    base = commit(repo, {"data.txt": text})
    commit(repo, {"data.txt": text + b"changed\n"})
    path = bundle(repo, f"{base}..main")
    asked: list[list[str]] = []
    blob_id = git(repo, "rev-parse", f"{base}:data.txt")

    def known(ids):
        asked.append(ids)
        return {blob_id: "blob"} if blob_id in ids else {}

    measured = check_bundle(path, ROOMY, known)
    assert asked == [[blob_id]] and measured.unpacked_bytes > len(text)
    with pytest.raises(PublishRefused, match="a file of"):
        check_bundle(path, PublishLimits(blob_bytes=len(text)), known)
    with pytest.raises(PublishRefused, match="neither in the pack nor in the research repository"):
        check_bundle(path, ROOMY, nothing_known)


def test_a_damaged_or_foreign_bundle_is_refused(repo, tmp_path):
    commit(repo, {"b.txt": os.urandom(50_000)})
    path = bundle(repo, "main")
    data = path.read_bytes()
    start = data.index(b"PACK")
    cases = {"cut.bundle": data[:start + 200],
             "flipped.bundle": data[:start + 40] + bytes(b ^ 0x5A for b in data[start + 40:start + 80]) + data[start + 80:],
             "foreign.bundle": b"not a bundle\n" + data,
             "nopack.bundle": data[:start] + b"JUNK" + data[start + 4:]}
    for name, damaged in cases.items():
        (tmp_path / name).write_bytes(damaged)
        with pytest.raises(PublishRefused):
            check_bundle(tmp_path / name, ROOMY, nothing_known)


def _pack_of(bundle_path: Path) -> Path:
    """The bundle's pack as a file of its own, with an index (for verify-pack)."""
    data = bundle_path.read_bytes()
    pack = bundle_path.with_suffix(".pack")
    pack.write_bytes(data[data.index(b"PACK"):])
    subprocess.run(["git", "index-pack", str(pack)], env=ENV, capture_output=True, check=True)
    return pack
