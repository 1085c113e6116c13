"""Power loss on a phone's SQLite files, the way SQLite's own crash tests model it
(test/crash*.test and its "crash" VFS): writes reach the disk only when the file is
synced; what was written since a file's last sync may, at the moment power goes, be on
the disk, missing, or torn (some of its sectors written, others not).

A SIGKILL cannot show this: the operating system's page cache outlives the process, so
every write a killed process made is still read back. Power loss drops the page cache.

Mechanism: apsw lets Python provide an SQLite VFS. `RecordingVFS` passes every call
through to the real file system (the run goes on normally) and logs each write,
truncate, sync and delete in order, numbered. After the run, `disk_after_cut(log, cut,
rng)` rebuilds what the disk would hold had power gone right after operation `cut`: each
file as of its last sync before the cut, then each later write kept, dropped or torn at
`SECTOR` granularity by seeded draws (a later write over the same bytes wins only if it
is kept). One run thus yields any number of power cuts, each deterministic by seed. Why
a recording and not a VFS that stops the run: the same workload is judged at every cut,
and no exception has to travel through SQLite's error paths at the cut.

The kernel writes dirty pages back by itself once they are old enough (Linux's
`vm.dirty_expire_centisecs`, 30 s by default): with `written_back_ms`, an unsynced write
older than that at the cut (by the workload's clock, `WriteLog.now_ms`) is on the disk.
Without it, nothing unsynced survives for sure: the worst case SQLite's tests assume.

Simplifications, stated: a file's existence is durable from its first sync (SQLite
syncs the directory of a new journal only in some modes); a delete is durable at once;
the `-shm` file is dropped at a cut (it is memory shared between connections, rebuilt
from the WAL by the first connection after a reboot); writes are not reordered across
a sync of the same file. Invariant: everything synced before the cut is on the rebuilt
disk exactly; nothing written after the cut is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

SECTOR = 512  # the unit a torn write is cut into (SQLite's crash tests use 512 too)
KEEP, DROP, TEAR = "keep", "drop", "tear"


@dataclass(frozen=True)
class Op:
    """One logged file operation. `kind`: write (bytes at offset), truncate (to offset),
    sync, delete."""

    number: int
    path: str
    kind: str
    offset: int = 0
    data: bytes = b""
    at_ms: int = 0  # the workload's clock when it was made


@dataclass
class WriteLog:
    """The operations of a run, in order, and each file's content when logging began."""

    initial: dict[str, bytes | None] = field(default_factory=dict)  # None: absent
    ops: list[Op] = field(default_factory=list)
    now_ms: int = 0  # the workload's clock, set by the workload

    def note(self, path: str) -> None:
        """Remember `path`'s content before this run first touches it (durable: the run
        starts from a synced disk)."""
        if path not in self.initial:
            file = Path(path)
            self.initial[path] = file.read_bytes() if file.exists() else None

    def add(self, path: str, kind: str, offset: int = 0, data: bytes = b"") -> None:
        self.note(path)
        self.ops.append(Op(len(self.ops) + 1, path, kind, offset, data, self.now_ms))

    @property
    def count(self) -> int:
        return len(self.ops)


def _apply(image: bytearray, op: Op) -> None:
    if op.kind == "write":
        end = op.offset + len(op.data)
        if len(image) < op.offset:
            image.extend(bytes(op.offset - len(image)))
        image[op.offset:end] = op.data
    elif op.kind == "truncate":
        del image[op.offset:]


def _torn(op: Op, rng: random.Random) -> list[Op]:
    """The sectors of a write that made it to the disk: each one independently."""
    first = op.offset - op.offset % SECTOR
    kept = []
    for start in range(first, op.offset + len(op.data), SECTOR):
        lo, hi = max(start, op.offset), min(start + SECTOR, op.offset + len(op.data))
        if rng.random() < 0.5:
            kept.append(Op(op.number, op.path, "write", lo, op.data[lo - op.offset:
                                                                hi - op.offset]))
    return kept


def disk_after_cut(log: WriteLog, cut: int, rng: random.Random, *,
                   written_back_ms: int | None = None,
                   fates: tuple[float, float, float] = (0.4, 0.3, 0.3)
                   ) -> dict[str, bytes | None]:
    """What each logged file holds after power goes right after operation `cut` (None:
    the file is not there). An unsynced write at least `written_back_ms` older than the
    cut is on the disk (the kernel wrote it back); any other one is kept whole, dropped
    or torn with the chances `fates`. Deterministic for a given `rng` state."""
    cut_at = log.ops[cut - 1].at_ms if cut else 0
    durable: dict[str, bytearray | None] = {
        path: None if data is None else bytearray(data) for path, data in log.initial.items()}
    pending: dict[str, list[Op]] = {path: [] for path in log.initial}
    for op in log.ops[:cut]:
        if op.kind == "delete":
            durable[op.path], pending[op.path] = None, []
        elif op.kind == "sync":
            image = durable[op.path] if durable[op.path] is not None else bytearray()
            assert image is not None
            for earlier in pending[op.path]:
                _apply(image, earlier)
            durable[op.path], pending[op.path] = image, []
        else:
            pending[op.path].append(op)
    disk: dict[str, bytes | None] = {}
    def old_enough(op: Op) -> bool:
        return written_back_ms is not None and op.at_ms <= cut_at - written_back_ms
    for path, image in durable.items():
        survivors = [kept for op in pending[path]
                     for kept in ([op] if old_enough(op) else _fate(op, rng, fates))]
        if path.endswith("-shm") or (image is None and not survivors):
            disk[path] = None
            continue
        rebuilt = bytearray() if image is None else bytearray(image)
        for op in survivors:
            _apply(rebuilt, op)
        disk[path] = bytes(rebuilt)
    return disk


def _fate(op: Op, rng: random.Random, fates: tuple[float, float, float]) -> list[Op]:
    keep, drop, _ = fates
    draw = rng.random()
    if op.kind == "truncate":  # a truncation is all or nothing
        return [op] if draw < keep + (1 - keep - drop) / 2 else []
    if draw < keep:
        return [op]
    if draw < keep + drop:
        return []
    return _torn(op, rng)


def write_disk(disk: dict[str, bytes | None]) -> None:
    """Put a rebuilt disk in place (the phone after its reboot)."""
    for path, data in disk.items():
        file = Path(path)
        if data is None:
            file.unlink(missing_ok=True)
        else:
            file.write_bytes(data)


class _RecordingFile(apsw.VFSFile):
    """A real file whose writes, truncations and syncs are logged."""

    def __init__(self, vfs: RecordingVFS, name: Any, flags: list[int]) -> None:
        super().__init__("", name, flags)
        self.path = name.filename() if hasattr(name, "filename") else str(name)
        self.log = vfs.log
        self.log.note(self.path)

    def xWrite(self, data: bytes, offset: int) -> None:  # apsw names the methods
        self.log.add(self.path, "write", offset, bytes(data))
        super().xWrite(data, offset)

    def xTruncate(self, newsize: int) -> None:
        self.log.add(self.path, "truncate", newsize)
        super().xTruncate(newsize)

    def xSync(self, flags: int) -> None:
        self.log.add(self.path, "sync")
        super().xSync(flags)


class RecordingVFS(apsw.VFS):
    """The default VFS, with every file's changes logged in `log` (see the module
    docstring). Register once per name; `unregister()` when done."""

    def __init__(self, name: str, log: WriteLog) -> None:
        self.vfs_name, self.log = name, log
        super().__init__(name, "")

    def xOpen(self, name: Any, flags: list[int]) -> apsw.VFSFile:
        return _RecordingFile(self, name, flags)

    def xDelete(self, filename: str, syncdir: bool) -> None:
        self.log.add(filename, "delete")
        super().xDelete(filename, syncdir)
