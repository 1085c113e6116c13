"""The app's database operations, written once as sans-I/O generators.

Flutter side (`DatabaseHelper`, review §1, §2, §5.5) and Kotlin side
(`NativeBackendUploader.saveContributionToDatabase`, §2.2). Every operation yields its
SQL as `Sql` effects and behaves on errors as the modelled platform code does:

- sqflite raises (`sqflite_insert_raises`): a Flutter operation lets `sqlite3.Error`
  propagate, after rolling back its own transaction if it opened one;
- Android's `insert()` returns -1 (`android_insert_returns_minus_one`): the Kotlin save
  swallows the error and reports -1, so a busy or conflicting save is silently lost.

What a profile switches (`simulator.phone.profiles`): transactions around multi-step
operations (`BEGIN IMMEDIATE ... COMMIT`), REPLACE or ABORT on the Flutter insert,
user scoping (v3 columns), and the journal mode each side asks for when it opens.
Time is passed in (`now_ms`); nothing here reads a clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from simulator.instants import DAY_MS as DAY_MS
from simulator.phone import schema
from simulator.phone.effects import Operation, Rows, Sql
from simulator.phone.profiles import FixProfile


@dataclass(frozen=True)
class Contribution:
    """One uploaded batch as the app records it locally."""

    id: str
    timestamp: int
    samples_count: int
    geohash: str | None
    success: bool
    created_at: int
    user_id: str | None = None
    session_id: int | None = None


def _columns(c: Contribution, profile: FixProfile) -> tuple[str, tuple[Any, ...]]:
    names = ["id", "timestamp", "samples_count", "geohash", "success", "created_at"]
    values: list[Any] = [c.id, c.timestamp, c.samples_count, c.geohash, int(c.success),
                         c.created_at]
    if profile.user_scoping:
        names += ["user_id", "session_id"]
        values += [c.user_id, c.session_id]
    marks = ", ".join("?" * len(names))
    return f"({', '.join(names)}) VALUES ({marks})", tuple(values)


def _transaction(profile: FixProfile, body: Operation[Any]) -> Generator[Sql, Rows, Any]:
    """Run `body` inside BEGIN IMMEDIATE ... COMMIT when the profile says so; roll back
    and re-raise on an error (as sqflite's db.transaction does)."""
    if not profile.transactions:
        return (yield from body)
    yield Sql("BEGIN IMMEDIATE")
    try:
        result = yield from body
    except sqlite3.Error:
        yield Sql("ROLLBACK")
        raise
    yield Sql("COMMIT")
    return result


# -- opening a connection -------------------------------------------------------------


def open_connection(journal_mode: str, busy_timeout_ms: int) -> Operation[str]:
    """What each side does when it opens the file: set the busy timeout and ask for its
    journal mode. If the mode cannot change (another connection holds the file), Android
    logs "Proceeding without changing the journal mode" and goes on: so does this.
    Returns the mode the file is really in."""
    yield Sql(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    try:
        rows = yield Sql(f"PRAGMA journal_mode = {journal_mode}")
    except sqlite3.OperationalError:
        rows = yield Sql("PRAGMA journal_mode")
    return str(rows[0][0]).upper()


# -- Flutter: DatabaseHelper ----------------------------------------------------------


def insert_contribution(c: Contribution, profile: FixProfile) -> Operation[None]:
    """sqflite `insert(conflictAlgorithm: replace)` as shipped; ABORT with the fix."""
    verb = "INSERT OR REPLACE" if profile.flutter_conflict == "REPLACE" else "INSERT"
    columns, values = _columns(c, profile)
    yield Sql(f"{verb} INTO contributions {columns}", values)


def start_tracking_session(now_ms: int, profile: FixProfile,
                           user_id: str | None = None) -> Operation[int]:
    """Insert a new active session; returns its id."""
    if profile.user_scoping:
        yield Sql("INSERT INTO tracking_sessions (started_at, user_id) VALUES (?, ?)",
                  (now_ms, user_id))
    else:
        yield Sql("INSERT INTO tracking_sessions (started_at) VALUES (?)", (now_ms,))
    rows = yield Sql("SELECT last_insert_rowid()")
    return int(rows[0][0])


def get_active_tracking_session(profile: FixProfile,
                                user_id: str | None = None) -> Operation[Rows]:
    """The newest session with no stop time (at most one row)."""
    if profile.user_scoping:
        return (yield Sql("SELECT * FROM tracking_sessions WHERE stopped_at IS NULL "
                          "AND user_id = ? ORDER BY started_at DESC LIMIT 1", (user_id,)))
    return (yield Sql("SELECT * FROM tracking_sessions WHERE stopped_at IS NULL "
                      "ORDER BY started_at DESC LIMIT 1"))


def stop_tracking_session(now_ms: int, profile: FixProfile, ended_reason: str | None = None,
                          user_id: str | None = None) -> Operation[int | None]:
    """Review §2.5 fix 3's code: find the active session, then stop it. Without a
    transaction two calls can both find it and both stop it (R2). Returns the stopped
    session's id, or None when there was none."""

    def body() -> Operation[int | None]:
        rows = yield from get_active_tracking_session(profile, user_id)
        if not rows:
            return None
        session_id, started_at = int(rows[0][0]), int(rows[0][1])
        yield Sql("UPDATE tracking_sessions SET stopped_at = ?, duration_ms = ?, "
                  "ended_reason = ? WHERE id = ?",
                  (now_ms, now_ms - started_at, ended_reason, session_id))
        return session_id

    result: int | None = yield from _transaction(profile, body())
    return result


POT_COLUMNS = ["user_id", "total_credits", "uploads_today", "uploads_required", "is_unlocked",
               "has_claimed_today", "last_claim_date", "last_synced_at", "cached_at"]


def cache_daily_pot(pot: dict[str, Any], profile: FixProfile | None = None) -> Operation[None]:
    """Cache a pot state. As shipped (review §3.2): INSERT OR REPLACE, whatever is
    there, so a slow fetch can overwrite a newer state (R3). With `pot_versioning`
    (§3.4): one conditional upsert that keeps the row whose `backend_updated_at` is
    newer; `pot` must then carry `backend_updated_at`."""
    if profile is None or not profile.pot_versioning:
        yield Sql(f"INSERT OR REPLACE INTO daily_pot_cache ({', '.join(POT_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(POT_COLUMNS))})",
                  tuple(pot[n] for n in POT_COLUMNS))
        return
    names = [*POT_COLUMNS, "backend_updated_at"]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
    yield Sql(f"INSERT INTO daily_pot_cache ({', '.join(names)}) "
              f"VALUES ({', '.join('?' * len(names))}) "
              f"ON CONFLICT(user_id) DO UPDATE SET {updates} "
              f"WHERE excluded.backend_updated_at >= "
              f"COALESCE(daily_pot_cache.backend_updated_at, 0)",
              tuple(pot[n] for n in names))


def get_state(key: str) -> Operation[str | None]:
    """app_state value of `key`, or None."""
    rows = yield Sql("SELECT value FROM app_state WHERE key = ?", (key,))
    return str(rows[0][0]) if rows else None


def set_state(key: str, value: str, now_ms: int) -> Operation[None]:
    """Upsert one app_state entry."""
    yield Sql("INSERT OR REPLACE INTO app_state (key, value, updated_at) VALUES (?, ?, ?)",
              (key, value, now_ms))


def enqueue_upload(upload_id: str, payload: str, now_ms: int) -> Operation[None]:
    """Put a failed upload in the queue (review §3.2, C2)."""
    yield Sql("INSERT OR REPLACE INTO upload_queue (id, payload, created_at, retry_count, "
              "next_retry_at) VALUES (?, ?, ?, 0, ?)", (upload_id, payload, now_ms, now_ms))


def update_upload_retry(upload_id: str, error: str, next_retry_at: int,
                        profile: FixProfile) -> Operation[int]:
    """Read the retry count, then write it back plus one (review §2.4: no transaction as
    shipped, so two workers can both read the same count). Returns the new count."""

    def body() -> Operation[int]:
        rows = yield Sql("SELECT retry_count FROM upload_queue WHERE id = ?", (upload_id,))
        count = (int(rows[0][0] or 0) if rows else 0) + 1
        yield Sql("UPDATE upload_queue SET retry_count = ?, last_error = ?, next_retry_at = ? "
                  "WHERE id = ?", (count, error, next_retry_at, upload_id))
        return count

    result: int = yield from _transaction(profile, body())
    return result


def complete_queued_upload(upload_id: str, c: Contribution,
                           profile: FixProfile) -> Operation[None]:
    """The retry worker's success path (review §7 item 8): record the contribution, then
    take the upload off the queue. Two writes: without a transaction a kill between them
    leaves the upload both saved and queued (it is sent again: a torn operation)."""

    def body() -> Operation[None]:
        columns, values = _columns(c, profile)
        yield Sql(f"INSERT INTO contributions {columns}", values)
        yield Sql("DELETE FROM upload_queue WHERE id = ?", (upload_id,))

    yield from _transaction(profile, body())


def clean_old_data(now_ms: int, days_to_keep: int = 90) -> Operation[int]:
    """Delete contributions older than `days_to_keep` days (review §5.2); returns rows."""
    yield Sql("DELETE FROM contributions WHERE timestamp < ?", (now_ms - days_to_keep * DAY_MS,))
    rows = yield Sql("SELECT changes()")
    return int(rows[0][0])


QUEUE_MAX_AGE_MS = 7 * DAY_MS  # review §5.5: upload_queue entries older than this go


def expire_stale_uploads(now_ms: int) -> Operation[list[str]]:
    """Review §5.5 step 3: delete the upload_queue entries created more than 7 days
    before `now_ms` (phone clock); returns their ids, oldest first.

    Those entries are uploads the backend never acknowledged, so they are lost for good.
    The review's code is the DELETE alone (sqflite's `delete()` count is ignored); the
    SELECT before it is the simulator's, so a driver can tell its ledgers which batches
    went. Both statements use one cutoff, so the ids are exactly the rows the DELETE
    removes unless another connection writes the queue between them: one that enqueues
    writes `created_at` = its present, which the cutoff keeps, and one that dequeues
    (a delivery) only makes an id name a batch the backend has. A driver that runs the
    two statements back to back (the fleet: SQL on its loop, no await between) has
    neither."""
    cutoff = now_ms - QUEUE_MAX_AGE_MS
    rows = yield Sql("SELECT id FROM upload_queue WHERE created_at < ? "
                     "ORDER BY created_at, id", (cutoff,))
    yield Sql("DELETE FROM upload_queue WHERE created_at < ?", (cutoff,))
    return [str(r[0]) for r in rows]


def queued_upload_ids() -> Operation[list[str]]:
    """The ids of every upload the queue holds (for the driver's ledgers)."""
    rows = yield Sql("SELECT id FROM upload_queue", ())
    return [str(r[0]) for r in rows]


def is_queued(upload_id: str) -> Operation[bool]:
    """Whether the queue holds `upload_id`."""
    rows = yield Sql("SELECT 1 FROM upload_queue WHERE id = ?", (upload_id,))
    return bool(rows)


def next_retry_at() -> Operation[int | None]:
    """When the queue's earliest entry is due (phone clock), or None when it is empty."""
    rows = yield Sql("SELECT MIN(next_retry_at) FROM upload_queue", ())
    value = rows[0][0]
    return None if value is None else int(value)


def perform_maintenance(now_ms: int) -> Operation[list[str]]:
    """Review §5.5: old contributions, stopped sessions over 30 days, queue entries over
    7 days, then VACUUM (which SQLite refuses inside a transaction, so it is never
    wrapped in one). Returns the ids of the queue entries it deleted
    (`expire_stale_uploads`)."""
    yield from clean_old_data(now_ms, 90)
    yield Sql("DELETE FROM tracking_sessions WHERE stopped_at IS NOT NULL AND started_at < ?",
              (now_ms - 30 * DAY_MS,))
    deleted = yield from expire_stale_uploads(now_ms)
    yield Sql("VACUUM")
    return deleted


def app_start(now_ms: int, profile: FixProfile) -> Operation[list[str] | None]:
    """What the app does with its database at start: performMaintenance() when the
    profile has the fix (review §5.5, §7 item 6); as shipped, nothing (cleanOldData is
    "never called automatically", §5.2). Returns None when maintenance did not run, else
    the ids of the upload_queue entries it deleted (possibly none): unacknowledged
    uploads, lost for good."""
    if not profile.auto_maintenance:
        return None
    return (yield from perform_maintenance(now_ms))


# -- Kotlin: NativeBackendUploader ----------------------------------------------------


KOTLIN, FLUTTER = "kotlin", "flutter"


def kotlin_side_save(c: Contribution, profile: FixProfile) -> tuple[str, Operation[Any]]:
    """The Kotlin upload flow's local save, and which side's connection runs it: its own
    `insert()` as shipped, or, with the single-writer fix (review §2.5 fix 1), Flutter's
    insertContribution over the MethodChannel (Kotlin never opens the file)."""
    if profile.single_writer:
        return FLUTTER, insert_contribution(c, profile)
    return KOTLIN, kotlin_save_contribution(c, profile)


def kotlin_save_contribution(c: Contribution, profile: FixProfile) -> Operation[int]:
    """`db.insert("contributions", null, values)`: a plain INSERT whose failure (constraint
    or lock timeout) is swallowed and reported as -1, as Android's insert() does.
    Returns the new rowid or -1."""
    columns, values = _columns(c, profile)
    try:
        yield Sql(f"INSERT INTO contributions {columns}", values)
    except sqlite3.Error:
        return -1
    rows = yield Sql("SELECT last_insert_rowid()")
    return int(rows[0][0])


# -- Flutter: the queries of Appendix B ------------------------------------------------


def get_today_tile_coverage(now_ms: int, profile: FixProfile,
                            user_id: str | None = None) -> Operation[Rows]:
    """(geohash, uploads, successful samples) for today's UTC day."""
    day = (now_ms - now_ms % DAY_MS, now_ms - now_ms % DAY_MS + DAY_MS)
    if profile.user_scoping:
        return (yield Sql(schema.TILE_COVERAGE_V3, (user_id, *day)))
    return (yield Sql(schema.TILE_COVERAGE_V2, day))


def get_streak(now_ms: int, profile: FixProfile, user_id: str | None = None) -> Operation[int]:
    """Consecutive UTC days with a successful contribution, ending today or yesterday."""
    if profile.user_scoping:
        rows = yield Sql(schema.STREAK_DAYS_V3, (user_id,))
    else:
        rows = yield Sql(schema.STREAK_DAYS_V2)
    days = {date.fromisoformat(r[0]) for r in rows}
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()
    cursor = today if today in days else today - timedelta(days=1)
    streak = 0
    while cursor in days:
        streak += 1
        cursor -= timedelta(days=1)
    return streak


def fresh_install(profile: FixProfile, now_ms: int) -> list[Operation[Any]]:
    """What a newly installed app does to its empty database, in order: open it as the
    Flutter side does, create (and upgrade to) the profile's schema, run its start."""
    return [open_connection(profile.flutter_journal_mode, 0),
            schema.open_schema(profile.schema_version), app_start(now_ms, profile)]
