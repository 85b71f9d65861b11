"""Where the `hf` task's models are: a folder, or a Hub id already in the local Hugging Face cache.

Nothing is downloaded: the lab runs offline, so a model missing from the cache is an error that
says how to fetch it once.
"""
from __future__ import annotations

import stat
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import TestbedError

if TYPE_CHECKING:
    from lab.settings import Settings


@lru_cache(maxsize=16)
def resolve_model(spec: str, root: Path) -> Path:
    """The folder holding a model's config, weights and tokenizer."""
    folder = (root / spec).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise TestbedError(f"model folder {folder} has no config.json (expected a transformers model folder)")
        return folder.resolve()
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        return Path(snapshot_download(spec, local_files_only=True))
    except LocalEntryNotFoundError:
        raise TestbedError(f"model {spec!r} is neither a folder nor in the local Hugging Face cache (fetch it once "
                           f"with `hf download {spec}`, or give a folder)") from None
    except ValueError as exc:    # a malformed id
        raise TestbedError(f"model {spec!r} is neither a folder nor a Hub id: {exc}") from None


def bind_root(model_dir: Path) -> Path:
    """What a sandbox must see for the model to load: in the Hub cache a snapshot's files are links into
    the repository's blobs, so the whole `models--org--name` folder; otherwise the folder itself."""
    model_dir = Path(model_dir)
    if model_dir.parent.name == "snapshots" and model_dir.parents[1].name.startswith("models--"):
        return model_dir.parents[1]
    return model_dir


def model_folders(cfg: Settings) -> list[Path]:
    """What sandboxed commands and method runs must see read-only, at the same path: the strong model
    (whose folder the data's meta.json names). Nothing for the embedded task."""
    hf = cfg.task.hf
    if cfg.task.kind != "hf" or hf is None:     # task.kind = "hf" comes with [task.hf] (lab.config)
        return []
    return [bind_root(resolve_model(hf.strong, cfg.root))]


def unreadable_by_others(folder: Path) -> list[Path]:
    """Files and folders under `folder` that a sandbox's unprivileged user could not read or enter."""
    found = []
    for path in [Path(folder), *Path(folder).rglob("*")]:
        try:
            mode = path.stat().st_mode      # through links, as a reader would
        except OSError:
            continue
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            found.append(path)
    return found
