"""Temporary directories a ggsim process owns, and removing what a killed one left.

A process killed with SIGKILL (the OOM killer, a CI timeout's last resort) runs no
cleanup: its embedded PostgreSQL keeps running and its phone files stay in /dev/shm,
which is RAM. So every such directory carries an owner file naming the process that
made it (its pid and start time, so that a reused pid is not taken for the owner), and
the next ggsim process that makes a directory of the same kind removes those whose
owner is gone, after `before_remove` (which stops a PostgreSQL still running there).

Invariant: a directory whose owner is alive, or that has no owner file (one being
made this instant, or not ggsim's), is never touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson
import psutil

OWNER_FILE = ".ggsim-owner"
_log = logging.getLogger(__name__)


def _process_started(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # alive, but not ours to read: never an orphan
        return -1.0


def make_owned_dir(prefix: str, parent: str | Path | None = None) -> Path:
    """A new directory (as `tempfile.mkdtemp`) with an owner file naming this process."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    pid = os.getpid()
    (directory / OWNER_FILE).write_bytes(orjson.dumps(
        {"pid": pid, "started": _process_started(pid)}))
    return directory


def owner_alive(directory: Path) -> bool | None:
    """Whether the process that made `directory` still runs (None: no owner file)."""
    try:
        owner = orjson.loads((directory / OWNER_FILE).read_bytes())
        pid, started = int(owner["pid"]), float(owner["started"])
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # unreadable: not provably an orphan, so left alone
    now = _process_started(pid)
    return now is not None and (now < 0 or abs(now - started) < 0.01)


def orphans(prefix: str, parent: str | Path | None = None) -> list[Path]:
    """Directories named `prefix*` in `parent` (default: the temp dir) whose owner died."""
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    try:
        candidates = sorted(where.glob(f"{prefix}*"))
    except OSError:
        return []
    return [d for d in candidates if d.is_dir() and owner_alive(d) is False]


def sweep(prefix: str, parent: str | Path | None = None,
          before_remove: Callable[[Path], None] | None = None) -> list[Path]:
    """Remove the orphans of `prefix` in `parent`; returns what was removed. Best effort:
    a directory that cannot be cleaned is logged and left for the next sweep."""
    removed = []
    for directory in orphans(prefix, parent):
        try:
            if before_remove is not None:
                before_remove(directory)
            shutil.rmtree(directory)
        except OSError as exc:
            _log.warning("could not remove %s, left by a killed ggsim: %s", directory, exc)
            continue
        removed.append(directory)
    return removed
