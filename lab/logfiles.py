"""The supervisor's and the runners' logs: timestamped lines in files that rotate by size.

Each of those processes is started with its stdout and stderr on its log file (`run/supervisor.log`,
`run/logs/agent-N.log`), so that a crash's traceback lands there too. `log_to(path)` sends the process's
`logging` records to the same file, each line stamped with the time, and rotates the file when it grows past
MAX_BYTES (keeping BACKUPS older ones: `agent-3.log.1`, ...). On rotation, stdout and stderr move to the new
file with it, so a later traceback still lands in the current log, where `lab start` and the supervisor read
the last line of a process that died.
"""
from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

MAX_BYTES = 10 * 2**20
BACKUPS = 3
FORMAT = "%(asctime)s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class _Rotating(RotatingFileHandler):
    """Rotates the log, and where this process's stdout and stderr are that log file, points them at the new one."""

    def __init__(self, path: Path, max_bytes: int, backups: int):
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.std_fds = [fd for fd in (1, 2) if _same_file(fd, path)]

    def doRollover(self) -> None:
        super().doRollover()
        if self.stream is not None:
            for fd in self.std_fds:
                os.dup2(self.stream.fileno(), fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, theirs = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def log_to(path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
    """Send this process's log records to `path`, timestamped and rotating: the lab's own (loggers under `lab`) from
    INFO up, other libraries' from WARNING up (httpx, say, logs every request at INFO). A second call for the same
    path changes nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if not any(isinstance(h, _Rotating) and Path(h.baseFilename) == path.absolute() for h in root.handlers):
        handler = _Rotating(path, max_bytes, backups)
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("lab").setLevel(logging.INFO)
