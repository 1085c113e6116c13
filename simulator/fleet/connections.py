"""The Flutter side's open SQLite connection, one per fully simulated phone.

Review §2.1: Flutter reaches the file through `DatabaseHelper.instance` (`final db =
await database;`), which opens it once and keeps it for the app process's life; the
Kotlin side opens it per operation (`db.use {}`), and the runner does the same for it.
Keeping Flutter's connection also makes §2.3's journal-mode mismatch behave as on the
phone: Kotlin's `PRAGMA journal_mode` is refused while Flutter holds the file in WAL.
And it is cheaper: opening, reading the schema and closing per Flutter operation was a
third of the load generator's time with 1,000 full phones (py-spy).

Invariants: at most `limit` connections are open (the least recently used app is
closed first, as Android reclaims a background app; it opens again on next use); a
connection dropped because its app died has its open transaction rolled back at once
(a dead process holds no lock), is closed once no operation still uses it, and is
never handed out again.
"""

from __future__ import annotations

import resource
import sqlite3
from collections import OrderedDict
from pathlib import Path

from simulator.drivers.blocking import connect_as_app

APP_BUSY_TIMEOUT_S = 2.5  # how long the app's connections wait on a lock
FDS_PER_CONNECTION = 3  # the file, its -wal and its -shm
FDS_KEPT_FREE = 2_000  # sockets, the run's own files


def default_limit() -> int:
    """As many connections as the process's open-file limit allows, keeping room."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 100_000
    return max(16, (soft - FDS_KEPT_FREE) // FDS_PER_CONNECTION)


class AppConnections:
    """Open Flutter connections by phone index."""

    def __init__(self, journal_mode: str | None, busy_timeout_s: float = APP_BUSY_TIMEOUT_S,
                 limit: int | None = None) -> None:
        self.journal_mode = journal_mode
        self.busy_timeout_s = busy_timeout_s
        self.limit = limit if limit is not None else default_limit()
        self._open: OrderedDict[int, sqlite3.Connection] = OrderedDict()
        self._users: dict[int, int] = {}  # id(connection) -> operations using it
        self._dropped: set[int] = set()  # id(connection) of dead apps, closed when unused
        self.opened = 0

    def acquire(self, phone: int, path: Path) -> sqlite3.Connection:
        conn = self._open.get(phone)
        if conn is None:
            while len(self._open) >= self.limit:
                oldest, _ = next(iter(self._open.items()))
                self.drop(oldest)
            conn = connect_as_app(path, self.journal_mode, self.busy_timeout_s)
            self._open[phone] = conn
            self.opened += 1
        else:
            self._open.move_to_end(phone)
        self._users[id(conn)] = self._users.get(id(conn), 0) + 1
        return conn

    def release(self, conn: sqlite3.Connection) -> None:
        left = self._users.get(id(conn), 1) - 1
        if left > 0:
            self._users[id(conn)] = left
            return
        self._users.pop(id(conn), None)
        if id(conn) in self._dropped:
            self._dropped.discard(id(conn))
            conn.close()

    def drop(self, phone: int) -> None:
        """The phone's app died (or was reclaimed): its connection goes, rolling back
        what it had open, as soon as no running operation uses it."""
        conn = self._open.pop(phone, None)
        if conn is None:
            return
        if conn.in_transaction:  # a dead process's locks go with it, at once
            conn.execute("ROLLBACK")
        if self._users.get(id(conn)):
            self._dropped.add(id(conn))
        else:
            conn.close()

    def close_all(self) -> None:
        for phone in list(self._open):
            self.drop(phone)
