"""The local schema: v2 as shipped (review §1.1) and the v2 -> v3 upgrade (§1.3, §6.1,
Appendix B), as operations the drivers run.

Invariants:
- the schema version lives in `PRAGMA user_version`, as sqflite keeps it; `open_schema`
  creates v2 on an empty file and upgrades to the wanted version, like sqflite's
  `openDatabase(version:, onCreate:, onUpgrade:)`;
- an upgrade runs inside one transaction, as sqflite runs `onUpgrade`, and sets the new
  version inside it: a crash or a failing statement leaves the file at the old version
  with nothing changed, and running it again on an upgraded file does nothing;
- the SQL text is the one in `fixtures/sql/` (shipped inside the package as well).

Where the review's SQL does not work on SQLite, or does not do what it says, the
working equivalent is used and the finding is in docs/findings-sqlite.md.
"""

from __future__ import annotations

import sqlite3

from simulator.errors import SchemaError as SchemaError
from simulator.fixtures import sql_text
from simulator.phone.effects import Operation, Sql

V2, V3 = 2, 3
CURRENT_USER_KEY = "current_user_id"


def _sql_text(name: str) -> str:
    return sql_text(name)


def _split_script(text: str) -> list[str]:
    """Statements of a plain SQL script (comments kept with their statement)."""
    statements, pending = [], ""
    for line in text.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            body = "\n".join(ln for ln in pending.splitlines() if not ln.strip().startswith("--"))
            if body.strip().rstrip(";").strip():
                statements.append(pending.strip())
            pending = ""
    return statements


def _split_blocks(text: str) -> list[str]:
    """Statements of a script whose statements are separated by lines holding ';;'."""
    blocks = [b.strip() for b in "\n".join(text.splitlines()).split("\n;;")]
    real = []
    for block in blocks:
        code = "\n".join(ln for ln in block.splitlines() if not ln.strip().startswith("--"))
        if code.strip():
            real.append(block)
    return real


def v2_statements() -> list[str]:
    """The review's §1.1 schema, statement by statement."""
    return _split_script(_sql_text("sqlite_v2.sql"))


def v3_upgrade_statements() -> list[str]:
    """The unconditional statements of the v2 -> v3 upgrade, in order."""
    return _split_blocks(_sql_text("sqlite_v3_upgrade.sql"))


def user_version() -> Operation[int]:
    """The schema version stored in the file (0 for a new file)."""
    rows = yield Sql("PRAGMA user_version")
    return int(rows[0][0])


def create_v2() -> Operation[None]:
    """onCreate of the shipped app: the v2 tables, in one transaction."""
    yield Sql("BEGIN IMMEDIATE")
    for statement in v2_statements():
        yield Sql(statement)
    yield Sql(f"PRAGMA user_version = {V2}")
    yield Sql("COMMIT")


def upgrade_to_v3() -> Operation[None]:
    """onUpgrade(oldVersion < 3) of review §6.1, in one transaction (as sqflite runs it).

    A failing statement rolls everything back and is re-raised.
    """
    yield Sql("BEGIN IMMEDIATE")
    try:
        for statement in v3_upgrade_statements():
            yield Sql(statement)
        rows = yield Sql("SELECT value FROM app_state WHERE key = ?", (CURRENT_USER_KEY,))
        if rows:
            user_id = rows[0][0]
            yield Sql("UPDATE contributions SET user_id = ? WHERE user_id IS NULL", (user_id,))
            yield Sql("UPDATE tracking_sessions SET user_id = ? WHERE user_id IS NULL",
                      (user_id,))
        yield Sql(f"PRAGMA user_version = {V3}")
    except sqlite3.Error:
        yield Sql("ROLLBACK")
        raise
    yield Sql("COMMIT")


def open_schema(version: int = V3) -> Operation[int]:
    """Bring the file to `version` (2 or 3), as sqflite's openDatabase does; returns the
    version found before. A file newer than `version` is a `SchemaError` (sqflite would
    call onDowngrade, which the app does not define)."""
    if version not in (V2, V3):
        raise SchemaError(f"schema version must be {V2} or {V3}, got {version}")
    found = yield from user_version()
    if found > version:
        raise SchemaError(f"database is at schema version {found}, newer than {version}")
    if found == 0:
        yield from create_v2()
    if version == V3 and found < V3:
        yield from upgrade_to_v3()
    return found


# The app's slow queries of Appendix B. The review does not give their SQL; these are
# the natural queries for what the methods return, user-scoped from v3 on (§1.3 C3).
TILE_COVERAGE_V2 = """
SELECT geohash, COUNT(*) AS uploads,
       SUM(CASE WHEN success = 1 THEN samples_count ELSE 0 END) AS samples
FROM contributions
WHERE timestamp >= ? AND timestamp < ? AND geohash IS NOT NULL
GROUP BY geohash"""
TILE_COVERAGE_V3 = """
SELECT geohash, COUNT(*) AS uploads,
       SUM(CASE WHEN success = 1 THEN samples_count ELSE 0 END) AS samples
FROM contributions
WHERE user_id = ? AND timestamp >= ? AND timestamp < ? AND geohash IS NOT NULL
GROUP BY geohash"""
STREAK_DAYS_V2 = """
SELECT DISTINCT DATE(timestamp / 1000, 'unixepoch') AS day
FROM contributions WHERE success = 1 ORDER BY day DESC"""
STREAK_DAYS_V3 = """
SELECT DISTINCT DATE(timestamp / 1000, 'unixepoch') AS day
FROM contributions WHERE user_id = ? AND success = 1 ORDER BY day DESC"""
ACTIVE_SESSION_V2 = """
SELECT * FROM tracking_sessions WHERE stopped_at IS NULL ORDER BY started_at DESC LIMIT 1"""
ACTIVE_SESSION_V3 = ACTIVE_SESSION_V2
