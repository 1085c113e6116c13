"""Temporary directories a ggsim process owns, and removing what a killed one left.

A process killed with SIGKILL (the OOM killer, a CI timeout's last resort) runs no
cleanup: its embedded PostgreSQL keeps running and its phone files stay in /dev/shm,
which is RAM. So every such directory carries an owner file naming the process that
made it, and the next ggsim process that makes a directory of the same kind removes
those whose owner is gone, after `before_remove` (which stops a PostgreSQL still running
there).

The owner is named by pid, boot and start time. On Linux the start time is the kernel's
tick count from /proc/PID/stat, exact and immune to wall-clock steps (psutil's
create_time() is derived from the boot time, which moves when NTP steps the clock, and
a live run taken for dead would lose its database); elsewhere create_time() with a wide
tolerance. An owner in another pid namespace (a container sharing /tmp) cannot be
looked up, so its directories are left alone.

Invariant: a directory whose owner is alive or cannot be judged, that has no readable
owner file (one being made this instant, or not ggsim's), or that belongs to another
user, is never touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psutil

OWNER_FILE = ".ggsim-owner"
_log = logging.getLogger(__name__)


CREATE_TIME_TOLERANCE_S = 5.0  # where only create_time() is known (not Linux)


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), None if unknown."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its end
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime
    except (IndexError, ValueError):
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _identity(pid: int) -> dict[str, Any] | None:
    """What names process `pid` for good (None: no such process)."""
    try:
        created = float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        created = None
    return {"pid": pid, "boot": _read("/proc/sys/kernel/random/boot_id"),
            "pid_ns": _pid_namespace(), "ticks": _start_ticks(pid), "created": created}


def make_owned_dir(prefix: str, parent: str | Path | None = None) -> Path:
    """A new directory (as `tempfile.mkdtemp`) with an owner file naming this process."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (directory / OWNER_FILE).write_bytes(orjson.dumps(_identity(os.getpid())))
    return directory


def owner_alive(directory: Path) -> bool | None:
    """Whether the process that made `directory` still runs (None: cannot tell, or no
    owner file)."""
    try:
        owner = orjson.loads((directory / OWNER_FILE).read_bytes())
        pid = int(owner["pid"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # missing or unreadable: not provably an orphan, so left alone
    if owner.get("pid_ns") != _pid_namespace():
        return None  # another container's process: its pid means nothing here
    if owner.get("boot") is not None and owner["boot"] != _read(
            "/proc/sys/kernel/random/boot_id"):
        return False  # made before the machine restarted
    now = _identity(pid)
    if now is None:
        return False
    if owner.get("ticks") is not None and now["ticks"] is not None:
        return bool(owner["ticks"] == now["ticks"])
    if owner.get("created") is None or now["created"] is None:
        return None
    return bool(abs(float(owner["created"]) - now["created"]) < CREATE_TIME_TOLERANCE_S)


def orphans(prefix: str, parent: str | Path | None = None) -> list[Path]:
    """Directories named `prefix*` in `parent` (default: the temp dir) whose owner died."""
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    try:
        candidates = sorted(where.glob(f"{prefix}*"))
    except OSError:
        return []
    return [d for d in candidates if _ours(d) and owner_alive(d) is False]


def _ours(directory: Path) -> bool:
    try:
        return directory.is_dir() and directory.stat().st_uid == os.getuid()
    except OSError:
        return False


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
        except (OSError, psutil.Error) as exc:
            _log.warning("could not remove %s, left by a killed ggsim: %s", directory, exc)
            continue
        removed.append(directory)
    return removed
