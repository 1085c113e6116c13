"""The blocking driver: runs an operation's effects on a `sqlite3` connection.

Invariant: every effect is executed exactly once, in order, on the given connection; a
`sqlite3.Error` is thrown back into the operation (not swallowed), so the operation's own
error handling decides what happens, as the app's code would.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from simulator.phone.effects import Cursor, Operation, Sql, T


def connect(path: str | Path, *, timeout_s: float = 0.0) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit effects).

    `timeout_s` is SQLite's busy timeout; 0 is SQLite's default (fail at once).
    """
    return sqlite3.connect(path, timeout=timeout_s, isolation_level=None,
                           check_same_thread=False)


def connect_as_app(path: str | Path, journal_mode: str | None,
                   timeout_s: float) -> sqlite3.Connection:
    """A connection opened as one side of the app opens it: asking for its
    `journal_mode`, which SQLite refuses while another connection holds the file in WAL;
    Android goes on with the mode the file has, and so does this."""
    conn = connect(path, timeout_s=timeout_s)
    if journal_mode:
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchall()
    return conn


def execute(conn: sqlite3.Connection, cursor: Cursor[Any], effect: Sql) -> None:
    """Run one SQL effect on `conn` and feed its rows, or its error, to `cursor`."""
    try:
        rows = conn.execute(effect.statement, effect.params).fetchall()
    except sqlite3.Error as exc:
        cursor.throw(exc)
    else:
        cursor.send(rows)


def run(conn: sqlite3.Connection, operation: Operation[T]) -> T:
    """Execute `operation` to completion on `conn` and return its result."""
    cursor = Cursor(operation)
    while cursor.pending is not None:
        execute(conn, cursor, cursor.pending)
    return cursor.outcome()  # type: ignore[no-any-return]


def run_on(path: str | Path, operation: Operation[T]) -> T:
    """Execute `operation` on its own connection to `path`, closed when it is done."""
    conn = connect(path)
    try:
        return run(conn, operation)
    finally:
        conn.close()


def file_bytes(operations: Iterable[Operation[Any]]) -> bytes:
    """The bytes of a new SQLite file after `operations` ran on it, in order, on one
    connection. Closing that last connection checkpoints a WAL, so the bytes are the
    whole file: a start state to copy cheaply (building a schema costs fsyncs)."""
    with tempfile.TemporaryDirectory(prefix="ggsim-start-") as directory:
        path = Path(directory) / "greengains.db"
        conn = connect(path)
        try:
            for operation in operations:
                run(conn, operation)
        finally:
            conn.close()
        return path.read_bytes()
