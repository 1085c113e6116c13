"""A phone whose app file cannot be written (the `storage` fault): each operation's
connection is set up for the phone's state at the operation's start, with SQLite's own
limits, so every write fails with the error the platform would see.

- full: `PRAGMA max_page_count` at the file's current size; a write that needs a new
  page fails with SQLITE_FULL ("database or disk is full");
- read_only: `PRAGMA query_only`; a write fails with "attempt to write a readonly
  database";
- neither: the limits lifted (a kept connection may carry them from an earlier window).

The app's code decides what a failed write means (`uploader`: Kotlin's `insert()`
returns -1; a Flutter operation raises and is abandoned). `is_storage_error` tells such
an abandoned operation from a bug, so the run counts it instead of failing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_NO_LIMIT = sqlite3.connect(":memory:").execute("PRAGMA max_page_count").fetchone()[0]
STORAGE_ERRORS = ("database or disk is full", "attempt to write a readonly database")


def prepare(state: str | None) -> Callable[[sqlite3.Connection], None]:
    """What to run on an operation's connection before its first statement."""
    def apply(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0] if state == "full" \
            else _NO_LIMIT
        conn.execute(f"PRAGMA max_page_count = {int(pages)}").fetchall()
        conn.execute(f"PRAGMA query_only = {int(state == 'read_only')}").fetchall()
    return apply


def is_storage_error(exc: BaseException) -> bool:
    """Whether `exc` is SQLite refusing a write to a full or read-only file."""
    return isinstance(exc, sqlite3.OperationalError) and any(
        text in str(exc) for text in STORAGE_ERRORS)
