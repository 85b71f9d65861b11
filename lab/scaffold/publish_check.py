"""What one publish may bring into the research repository, measured on the bundle's pack before git takes any of it.

An agent's bundle is hostile bytes, and its size says little: git compresses a 300 MB line of one character to a
few hundred kilobytes, so a bundle within its byte limit can hold a commit message or files that a reader would
inflate to gigabytes. So every entry of the bundle's pack is read here, in order: the object's kind and size from
its header (a delta's result size from the first bytes of the delta), checked against the limits before any of it
is inflated; each zlib stream is then inflated only to find where it ends, in bounded chunks that are thrown away,
and never past what the limits allow. Nothing is written, no ref moves and no git process sees an object of the
publish until every one of them is within the limits.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.errors import Blocked

CHUNK = 1 << 20
HEADER_BYTES = 1 << 20       # the bundle's text header (its refs and prerequisites)
COMMIT, TREE, BLOB, TAG, OFS_DELTA, REF_DELTA = 1, 2, 3, 4, 6, 7
KINDS = {COMMIT: "commit", TREE: "tree", BLOB: "blob", TAG: "tag"}


class PublishRefused(Blocked):
    """A publish that brings an object past the limits, or a bundle that is not one; nothing of it was taken."""


@dataclass(frozen=True)
class PublishLimits:
    """What one publish may bring (lab.toml [agents] git_*)."""

    message_bytes: int = 64 << 10        # a commit or tag object: its message and headers
    blob_bytes: int = 64 << 20           # a file (blob) or a folder listing (tree)
    publish_bytes: int = 256 << 20       # every object of the publish, unpacked
    objects: int = 20_000                # objects in the publish

    @classmethod
    def of(cls, agents) -> "PublishLimits":
        return cls(int(agents.git_message_kb * 1024), int(agents.git_blob_mb * (1 << 20)),
                   int(agents.git_publish_mb * (1 << 20)), int(agents.git_publish_objects))

    def limit_of(self, kind: str) -> int:
        return self.message_bytes if kind in ("commit", "tag") else self.blob_bytes


@dataclass(frozen=True)
class Measured:
    objects: int
    unpacked_bytes: int


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}".replace(".0 ", " ")
    return f"{n:,} bytes"


class _Pack:
    """The bundle's bytes, read forward once; zlib streams inflated in place and thrown away."""

    def __init__(self, handle):
        self.handle, self.buffer, self.at = handle, b"", 0   # at: offset of the next byte in the pack

    def _more(self) -> bytes:
        chunk = self.buffer or self.handle.read(CHUNK)
        self.buffer = b""
        if not chunk:
            raise PublishRefused("your bundle is cut short: its pack ends inside an object")
        return chunk

    def take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            more = self.handle.read(CHUNK)
            if not more:
                raise PublishRefused("your bundle is cut short: its pack ends inside an object")
            self.buffer += more
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        self.at += n
        return taken

    def inflate(self, expected: int, keep: int = 0) -> bytes:
        """Inflate the zlib stream here, which must make exactly `expected` bytes; the first `keep` of them."""
        stream, kept, made = zlib.decompressobj(), b"", 0
        pending = b""
        while not stream.eof:
            if not pending:
                pending = self._more()
                self.at += len(pending)
            try:
                out = stream.decompress(pending, CHUNK)
            except zlib.error:
                raise PublishRefused("your bundle's pack holds a damaged object") from None
            pending = stream.unconsumed_tail
            made += len(out)
            if made > expected:
                raise PublishRefused("your bundle's pack holds an object larger than its header says")
            if len(kept) < keep:
                kept += out[:keep - len(kept)]
        rest = stream.unused_data + pending
        self.buffer, self.at = rest + self.buffer, self.at - len(rest)
        if made != expected:
            raise PublishRefused("your bundle's pack holds an object smaller than its header says")
        return kept


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise PublishRefused("your bundle's pack holds a damaged delta")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        shift, at = shift + 7, at + 1
        if not byte & 0x80:
            return value, at


def _hash_bytes(pack: _Pack) -> int:
    """Skip the bundle's header (version, capabilities, prerequisites, refs) up to its blank line; the length of
    its object ids."""
    first = pack.handle.readline(HEADER_BYTES)
    if first not in (b"# v2 git bundle\n", b"# v3 git bundle\n"):
        raise PublishRefused("your branch's bundle is not a git bundle")
    hash_bytes, read = 20, len(first)
    while (line := pack.handle.readline(HEADER_BYTES)) != b"\n":
        read += len(line)
        if not line or not line.endswith(b"\n") or read > HEADER_BYTES:
            raise PublishRefused("your branch's bundle has a damaged or oversized header")
        if line.strip() == b"@object-format=sha256":
            hash_bytes = 32
    return hash_bytes


def check_bundle(bundle: Path, limits: PublishLimits, kinds_of: Callable[[list[str]], dict[str, str]]) -> Measured:
    """Measure every object of the bundle against the limits; PublishRefused at the first one past them.
    kinds_of names the kind of objects the research repository already holds (the bases of a thin pack's deltas)."""
    with open(bundle, "rb") as handle:
        pack = _Pack(handle)
        hash_bytes = _hash_bytes(pack)
        head = pack.take(12)
        version, count = int.from_bytes(head[4:8], "big"), int.from_bytes(head[8:12], "big")
        if head[:4] != b"PACK" or version not in (2, 3):
            raise PublishRefused("your branch's bundle holds no git pack")
        if count > limits.objects:
            raise PublishRefused(f"the publish brings {count:,} objects; one publish may bring at most "
                                 f"{limits.objects:,} (commit in smaller steps)")
        kind_at: dict[int, str] = {}       # entry offset -> kind, or "ref:<id>" where a base outside the pack decides
        waiting: list[tuple[str, int]] = []
        unpacked = inflated = 0
        for _ in range(count):
            start = pack.at
            byte = pack.take(1)[0]
            code, size, shift = (byte >> 4) & 7, byte & 0x0F, 4
            while byte & 0x80:
                if shift > 63:
                    raise PublishRefused("your bundle's pack holds a damaged object header")
                byte = pack.take(1)[0]
                size |= (byte & 0x7F) << shift
                shift += 7
            if code in KINDS:                 # the object's own limit first: the more telling refusal
                _check(KINDS[code], size, limits)
            inflated += size
            if inflated > limits.publish_bytes:
                raise _too_much(limits)
            if code in KINDS:
                kind = KINDS[code]
                pack.inflate(size)
                result = size
            elif code in (OFS_DELTA, REF_DELTA):
                kind = _delta_base(pack, code, start, kind_at, hash_bytes)
                _, at = _varint(header := pack.inflate(size, keep=20), 0)
                result, _ = _varint(header, at)
                if kind.startswith("ref:"):
                    waiting.append((kind[4:], result))
                else:
                    _check(kind, result, limits)
            else:
                raise PublishRefused(f"your bundle's pack holds an object of unknown type {code}")
            kind_at[start] = kind
            unpacked += result
            if unpacked > limits.publish_bytes:
                raise _too_much(limits)
    if waiting:
        known = kinds_of(sorted({base for base, _ in waiting}))
        for base, result in waiting:
            if base not in known:
                raise PublishRefused(f"your bundle's pack holds a delta against {base[:10]}, an object neither in "
                                     "the pack nor in the research repository")
            _check(known[base], result, limits)
    return Measured(count, unpacked)


def _delta_base(pack: _Pack, code: int, start: int, kind_at: dict[int, str], hash_bytes: int) -> str:
    """The kind a delta's result has: its base's, found earlier in the pack or (by id) in the research repository."""
    if code == REF_DELTA:
        return "ref:" + pack.take(hash_bytes).hex()
    byte = pack.take(1)[0]
    distance = byte & 0x7F
    while byte & 0x80:
        if distance > 1 << 63:
            raise PublishRefused("your bundle's pack holds a damaged delta")
        byte = pack.take(1)[0]
        distance = ((distance + 1) << 7) | (byte & 0x7F)
    base = kind_at.get(start - distance)
    if base is None:
        raise PublishRefused("your bundle's pack holds a delta whose base is not in it")
    return base


def _check(kind: str, size: int, limits: PublishLimits) -> None:
    if size <= limits.limit_of(kind):
        return
    if kind in ("commit", "tag"):
        raise PublishRefused(f"the publish brings a {kind} of {_size(size)} (message and headers); a {kind} may be "
                             f"at most {_size(limits.message_bytes)}: amend it with a shorter message")
    what = "a file" if kind == "blob" else "a folder listing"
    raise PublishRefused(f"the publish brings {what} of {_size(size)}; one may be at most "
                         f"{_size(limits.blob_bytes)}: keep large files out of git (.gitignore) and amend the commit")


def _too_much(limits: PublishLimits) -> PublishRefused:
    return PublishRefused(f"the publish brings over {_size(limits.publish_bytes)} of objects, unpacked; one publish "
                          "may bring at most that: commit large files out of git, or publish in smaller steps")
