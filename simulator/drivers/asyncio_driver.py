"""The asyncio driver: runs an operation's effects on an `aiosqlite` connection.

Same contract as the blocking driver (every effect once, in order; a `sqlite3.Error` is
thrown back into the operation), for fleet runs where thousands of phones share one
event loop. aiosqlite runs each connection's statements on its own thread, so a busy
timeout waits there without stopping the loop.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from simulator.phone.effects import Cursor, Operation, T


async def connect(path: str | Path, *, timeout_s: float = 0.0) -> aiosqlite.Connection:
    """An aiosqlite connection in autocommit mode (transactions are explicit effects)."""
    return await aiosqlite.connect(path, timeout=timeout_s, isolation_level=None)


async def run(conn: aiosqlite.Connection, operation: Operation[T]) -> T:
    """Execute `operation` to completion on `conn` and return its result."""
    cursor = Cursor(operation)
    while (effect := cursor.pending) is not None:
        try:
            async with conn.execute(effect.statement, effect.params) as result:
                rows = [tuple(row) for row in await result.fetchall()]
        except sqlite3.Error as exc:
            cursor.throw(exc)
        else:
            cursor.send(rows)
    return cursor.outcome()  # type: ignore[no-any-return]
