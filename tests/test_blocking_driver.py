"""The blocking driver runs effects in order and throws SQLite errors into the core."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from simulator.drivers.blocking import connect, run
from simulator.phone.effects import Operation, Sql


def insert_or_minus_one(row_id: str) -> Operation[int]:
    """Like Android's SQLiteDatabase.insert(): -1 instead of an exception."""
    try:
        yield Sql("INSERT INTO t VALUES (?)", (row_id,))
    except sqlite3.IntegrityError:
        return -1
    rows = yield Sql("SELECT rowid FROM t WHERE id = ?", (row_id,))
    return int(rows[0][0])


def test_effects_run_in_order_and_errors_reach_the_operation(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
    assert run(conn, insert_or_minus_one("a")) == 1
    assert run(conn, insert_or_minus_one("b")) == 2
    assert run(conn, insert_or_minus_one("a")) == -1  # the constraint failure, handled
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2
    assert conn.isolation_level is None  # autocommit: transactions are explicit effects
