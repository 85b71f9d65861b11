"""What a Ray task does on the node it lands on: make the method's code and its data view local, run the method
in the node's own sandbox under the batch's limits, and give back the MethodRun (predictions, logs, figures).

The node's cache (`[cluster] node_cache`, one folder per node) holds the view files by SHA-256, each checked
against its hash as it arrives, and each view as a folder of hard links to them. It is the lab's, outside
every sandbox: a method sees its view read-only at /data and nothing else of the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from lab import untrusted
from lab.errors import LabError
from lab.scorer.engines.base import MethodJob, RunSpec
from lab.scorer.engines.shipping import CodeArchive, Manifest, sha256_bytes
from lab.scorer.runner import MethodRun, MethodRunner

class CorruptTransfer(LabError):
    """A file that arrived on a node does not match the hash it was sent under."""


class NodeCache:
    def __init__(self, base: Path, node_id: str):
        self.root = Path(base) / node_id[:16]
        for sub in ("files", "views", "runs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for folder in (Path(base), self.root, self.root / "files", self.root / "views"):
            os.chmod(folder, 0o755)       # the sandbox's uid reads its view through these
        self.fetched = 0

    def file(self, digest: str, ref, get) -> Path:
        """The cached file of this hash, fetched from the object store (and checked) where it is missing."""
        path = self.root / "files" / digest
        if path.is_file():
            return path
        data = get(ref)
        if sha256_bytes(data) != digest:
            raise CorruptTransfer(f"a view file arrived with SHA-256 {sha256_bytes(data)[:12]}, not {digest[:12]}")
        fd, tmp = tempfile.mkstemp(prefix=".in-", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        self.fetched += 1
        return path

    def view(self, manifest: Manifest, get) -> Path:
        """A folder holding the view's files (hard links into the file cache), made once per distinct view."""
        key = hashlib.sha256(json.dumps({n: d for n, (d, _) in manifest.items()}, sort_keys=True).encode())
        folder = self.root / "views" / key.hexdigest()[:32]
        if folder.is_dir():
            return folder
        building = Path(tempfile.mkdtemp(prefix=".view-", dir=folder.parent))
        try:
            for name, (digest, (ref,)) in manifest.items():
                target = building / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(target.parent, 0o755)
                os.link(self.file(digest, ref, get), target)
            os.chmod(building, 0o755)
            try:
                os.rename(building, folder)
            except OSError:      # another run on this node made it meanwhile
                shutil.rmtree(building)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        return folder

    def code(self, archive: CodeArchive) -> Path:
        """A fresh folder with the method's files (the caller removes it after the run)."""
        folder = Path(tempfile.mkdtemp(prefix="code-", dir=self.root / "runs"))
        os.chmod(folder, 0o755)
        for name, (mode, data) in archive.files.items():
            untrusted.write_bytes(folder, name, data)
            os.chmod(folder / name, mode | 0o444)
        return folder


def run_on_node(spec: RunSpec, code: CodeArchive | None, manifest: Manifest | None, job: MethodJob,
                sandbox_kind: str, cache_base: str, gpu_fraction: float | None, board: tuple[str, int]) -> MethodRun:
    """One method run here. Without `code` and `manifest` (a private batch, pinned to the head) the spec's and
    job's own paths are read in place. `board`: the engine's run board (an actor's name) and this run's key
    there, told where the run starts."""
    import ray

    from lab.sandbox import make_sandbox

    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    _tell_board(*board, node_id)
    cache = NodeCache(Path(cache_base), node_id)
    root, view = spec.root, job.view
    made = None
    if code is not None:
        root = made = cache.code(code)
    if manifest is not None:
        view = cache.view(manifest, ray.get)
    env = {}
    gpus = context.get_accelerator_ids().get("GPU") or []
    if gpu_fraction is not None:
        env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus), "LAB_GPU_MEMORY_FRACTION": f"{gpu_fraction:g}"}
    try:
        sandbox = make_sandbox(sandbox_kind, warn=lambda line: None, user=spec.user)
        runner = MethodRunner(sandbox, spec.limits, cache.root / "runs", python=sys.executable,
                              binds=list(spec.binds), forbidden=[Path(p) for p in spec.forbidden])
        run = runner.run(root, spec.entry, view, job.seed, job.label, env=env or None, args=job.args,
                         keep_predictions=spec.keep_predictions, cpu_group=spec.tenant)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    run.node, run.attempts = node_id, attempt_number() + 1
    return run


def attempt_number() -> int:
    """Which attempt of this task this is, from 0 (Ray retries a task whose node or worker died)."""
    import ray

    worker = ray._private.worker.global_worker   # Ray keeps the attempt number only on its core worker
    # which is set on the worker as it connects, and so not among its declared attributes
    return int(worker.core_worker.get_current_task_attempt_number())  # type: ignore[attr-defined]


def _tell_board(name: str, key: int, node_id: str) -> None:
    import ray

    try:
        board = ray.get_actor(name, namespace=ray.get_runtime_context().namespace)
    except ValueError:    # the engine that made it is gone: nobody is watching
        return
    board.started.remote(key, node_id)
