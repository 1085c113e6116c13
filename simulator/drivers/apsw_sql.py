"""Run the phone core's SQL effects on an apsw connection (a connection that can use a
VFS written in Python: `power_vfs.RecordingVFS`).

The core handles errors as the platform code does, by `sqlite3` exception class (a
constraint failure, a lock timeout); apsw raises its own classes, so each is translated
to the `sqlite3` class the standard library raises for the same SQLite result code.
Invariant, as `blocking.execute`: each effect runs once, in order, and its rows or its
translated error go back into the operation.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import apsw

from simulator.phone.effects import Cursor, Sql

# apsw class -> the sqlite3 class for the same result code (Modules/_sqlite/util.c)
_TRANSLATION: list[tuple[type[BaseException], type[sqlite3.Error]]] = [
    (apsw.ConstraintError, sqlite3.IntegrityError),
    (apsw.CorruptError, sqlite3.DatabaseError),
    (apsw.NotADBError, sqlite3.DatabaseError),
    (apsw.SQLError, sqlite3.OperationalError),
    (apsw.Error, sqlite3.OperationalError),  # busy, locked, I/O, full, read-only, ...
]


def connect(path: str | Path, vfs: str) -> apsw.Connection:
    """A connection to `path` through the registered VFS `vfs` (autocommit, as
    `blocking.connect`: transactions are explicit effects)."""
    return apsw.Connection(str(path), vfs=vfs)


def translated(exc: apsw.Error) -> sqlite3.Error:
    """The `sqlite3` error the standard library would raise for `exc`."""
    for apsw_class, sqlite_class in _TRANSLATION:
        if isinstance(exc, apsw_class):
            return sqlite_class(str(exc))
    return sqlite3.OperationalError(str(exc))


def execute(conn: apsw.Connection, cursor: Cursor[Any], effect: Sql) -> None:
    """Run one SQL effect on `conn` and feed its rows, or its translated error, back."""
    try:
        rows = list(conn.execute(effect.statement, effect.params))
    except apsw.Error as exc:
        cursor.throw(translated(exc))
    else:
        cursor.send(rows)
