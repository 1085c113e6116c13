"""A SQLite file's pages and bytes: `file_stats` reads the page totals (`page_count`,
`freelist_count`), the rows of every table and, per table and index, the pages, payload
and unused bytes from the `dbstat` virtual table (`ObjectBytes`); without dbstat,
`FileStats.objects` is empty and only the page totals are reported.

Invariants:
- Accounting: dbstat's pages + free pages + `other_pages` (the pointer-map pages of an
  auto-vacuum file) = `page_count`; `file_bytes` = `page_count` x `page_size_bytes`
  (read after a checkpoint, so a WAL file's pages are in the main file).
- Reading only: nothing here writes a row (a WAL file is checkpointed, no more).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ObjectBytes:
    """One b-tree of the file (a table or an index), from `dbstat`."""

    name: str
    table: str  # the table it belongs to (itself for a table)
    kind: str  # "table" or "index"
    pages: int  # b-tree and overflow pages
    overflow_pages: int
    allocated_bytes: int  # pages x page size
    payload_bytes: int  # the records' bytes stored in its cells
    unused_bytes: int  # free bytes inside its pages


@dataclass(frozen=True)
class FileStats:
    """A file's pages and rows; `objects` is empty when this SQLite has no dbstat."""

    file_bytes: int  # the main file's size on disk
    page_size_bytes: int
    page_count: int
    freelist_pages: int
    freelist_bytes: int
    other_pages: int | None  # pointer-map pages (auto-vacuum); None without dbstat
    auto_vacuum: str
    journal_mode: str
    dbstat_available: bool
    rows: dict[str, int]
    objects: tuple[ObjectBytes, ...]

    def table_bytes(self, table: str) -> int:
        """Bytes of `table` and all its indexes (0 without dbstat)."""
        return sum(o.allocated_bytes for o in self.objects if o.table == table)

    def object(self, name: str) -> ObjectBytes | None:
        """The b-tree named `name`, if the file has it."""
        return next((o for o in self.objects if o.name == name), None)


def dbstat_available(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite was built with the dbstat virtual table."""
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def _pragma(conn: sqlite3.Connection, name: str) -> Any:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def _objects(conn: sqlite3.Connection, page_size: int) -> tuple[ObjectBytes, ...]:
    rows = conn.execute(
        "SELECT s.name, COALESCE(m.tbl_name, s.name), COALESCE(m.type, 'table'), COUNT(*), "
        "SUM(s.pagetype = 'overflow'), SUM(s.payload), SUM(s.unused) "
        "FROM dbstat AS s LEFT JOIN sqlite_schema AS m ON m.name = s.name "
        "GROUP BY s.name ORDER BY s.name").fetchall()
    return tuple(ObjectBytes(str(n), str(t), str(k), int(p), int(o), int(p) * page_size,
                             int(pay), int(u)) for n, t, k, p, o, pay, u in rows)


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    return {t: int(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}


def file_stats(conn: sqlite3.Connection) -> FileStats:
    """Pages, rows and per-b-tree bytes of the main database of `conn` (not in a
    transaction). A WAL file is checkpointed first, so the main file holds every page."""
    mode = str(_pragma(conn, "journal_mode")).upper()
    if mode == "WAL":
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    path = next(str(r[2]) for r in conn.execute("PRAGMA database_list") if r[1] == "main")
    page_size, pages = int(_pragma(conn, "page_size")), int(_pragma(conn, "page_count"))
    free = int(_pragma(conn, "freelist_count"))
    has_dbstat = dbstat_available(conn)
    objects = _objects(conn, page_size) if has_dbstat else ()
    other = pages - free - sum(o.pages for o in objects) if has_dbstat else None
    auto_vacuum = {0: "NONE", 1: "FULL", 2: "INCREMENTAL"}[int(_pragma(conn, "auto_vacuum"))]
    return FileStats(os.path.getsize(path), page_size, pages, free, free * page_size, other,
                     auto_vacuum, mode, has_dbstat, _row_counts(conn), objects)
