"""A validated config handed to a process the lab starts, so that lab.toml is validated once per start: `lab start`
hands its config to the supervisor, the supervisor its own to the runners' zygote (and to a new zygote after one
died, whatever lab.toml says by then), and the runners the zygote forks inherit it.

The config travels pickled in an anonymous in-memory file whose descriptor the child inherits and is told on its
command line: from parent to child alone, so nothing else can write what the child unpickles. Unpickling a
pydantic model validates nothing: the child holds the very settings its parent validated.
"""
from __future__ import annotations

import os
import pickle

from lab.config.schema import Config


def write(cfg: Config) -> int:
    """A descriptor holding `cfg`, to pass to a child (Popen's pass_fds) and close once the child has started."""
    fd = os.memfd_create("lab-config")
    with open(fd, "wb", closefd=False) as file:
        pickle.dump(cfg, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read(fd: int) -> Config:
    """The config a parent handed this process on `fd`, which is closed after."""
    with open(fd, "rb") as file:
        cfg = pickle.load(file)
    if not isinstance(cfg, Config):
        raise TypeError(f"descriptor {fd} held a {type(cfg).__name__}, not a lab config")
    return cfg
