"""The phone-store invariants, each a checker that names what it finds.

A checker compares a real SQLite file with what the app's code believed happened (a
`Ledger`, filled by whoever ran the operations) and returns `Anomaly` objects; an empty
list means the invariant holds. Invariants (review labels where the review has one):

- `contributions`: every upload the backend acknowledged has exactly one local row with
  the values that were sent. Kinds: *lost write* (no row; `R1`), *dropped write* (no
  row because Kotlin's insert() returned -1, on a lock timeout or a constraint: Android
  swallows both; `R1`), *overwrite* (a row with
  other values, e.g. REPLACE from the other side; `R1`).
- `sessions`: at most one active tracking session per user; stopping is idempotent (two
  stop calls never both stop the same session); `duration_ms = stopped_at - started_at`.
  Kinds: *double stop* (`R2`), *two active sessions* (`R2b`), *wrong duration* and
  *negative duration* (`R2c`; the app times sessions with the wall clock).
- `daily_pot`: the cached pot never moves backwards relative to the newest backend state
  the phone has seen. Kind: *stale cache* (`R3`).
- `upload_retries`: each failed attempt is counted once (read-then-write of retry_count
  without a transaction loses increments). Kind: *lost update* (`R4`, not in the review).
- `queue`: a multi-step operation is all or nothing; the retry worker's "save the
  contribution, then dequeue it" never leaves an upload both saved and still queued
  (after a crash it would be sent again). Kind: *torn operation* (`R5`, not in the
  review). Queue ids and contribution ids are the same batch id.
- `integrity`: `PRAGMA integrity_check` is ok. Kind: *corruption*.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.phone.app import Contribution


@dataclass(frozen=True)
class Anomaly:
    """One broken invariant: its kind, the review's label, and the evidence."""

    kind: str
    label: str
    detail: str
    history: tuple[str, ...] = ()


@dataclass
class Ledger:
    """What the app's code believed, recorded as operations returned.

    `acknowledged`: contributions whose upload the backend acknowledged (the app then
    meant to save them locally); `kotlin_minus_one`: ids whose Kotlin save returned -1;
    `stops`: session ids returned by stop calls (None when nothing was active);
    `pot_seen`: (user, backend_updated_at, uploads_today) the phone received;
    `retries`: number of update_upload_retry calls per queue id.
    """

    acknowledged: list[Contribution] = field(default_factory=list)
    kotlin_minus_one: set[str] = field(default_factory=set)
    stops: list[int | None] = field(default_factory=list)
    pot_seen: list[tuple[str, int, int]] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    history: list[str] = field(default_factory=list)


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


def check_contributions(conn: sqlite3.Connection, ledger: Ledger) -> list[Anomaly]:
    """Every acknowledged upload has exactly its row (see the module docstring)."""
    found = {r[0]: r[1:] for r in _rows(
        conn, "SELECT id, timestamp, samples_count, geohash, success FROM contributions")}
    anomalies = []
    for c in ledger.acknowledged:
        row = found.get(c.id)
        if row is None:
            kind = "dropped write" if c.id in ledger.kotlin_minus_one else "lost write"
            anomalies.append(Anomaly(kind, "R1", f"contribution {c.id} acknowledged, no row",
                                     tuple(ledger.history)))
        elif tuple(row) != (c.timestamp, c.samples_count, c.geohash, int(c.success)):
            if c.id in ledger.kotlin_minus_one:  # never written: another row had the id
                anomalies.append(Anomaly("dropped write", "R1",
                                         f"contribution {c.id} acknowledged, Kotlin's insert "
                                         f"returned -1; the row holds other values",
                                         tuple(ledger.history)))
                continue
            anomalies.append(Anomaly("overwrite", "R1",
                                     f"contribution {c.id}: sent {c.samples_count} samples at "
                                     f"{c.timestamp}, row holds {row[1]} at {row[0]}",
                                     tuple(ledger.history)))
    return anomalies


def check_sessions(conn: sqlite3.Connection, ledger: Ledger) -> list[Anomaly]:
    """One active session per user, idempotent stops, consistent durations."""
    anomalies = []
    stopped = Counter(s for s in ledger.stops if s is not None)
    for session_id, times in sorted(stopped.items()):
        if times > 1:
            anomalies.append(Anomaly("double stop", "R2",
                                     f"session {session_id} stopped by {times} calls",
                                     tuple(ledger.history)))
    columns = {r[1] for r in _rows(conn, "PRAGMA table_info(tracking_sessions)")}
    user = "user_id" if "user_id" in columns else "NULL"
    for who, active in _rows(conn, f"SELECT {user}, COUNT(*) FROM tracking_sessions "
                                   f"WHERE stopped_at IS NULL GROUP BY {user}"):
        if active > 1:
            anomalies.append(Anomaly("two active sessions", "R2b",
                                     f"user {who} has {active} active sessions",
                                     tuple(ledger.history)))
    for sid, started, stopped_at, duration in _rows(
            conn, "SELECT id, started_at, stopped_at, duration_ms FROM tracking_sessions "
                  "WHERE stopped_at IS NOT NULL"):
        if duration != stopped_at - started:
            anomalies.append(Anomaly("wrong duration", "R2c",
                                     f"session {sid}: duration {duration} ms, stopped - "
                                     f"started = {stopped_at - started}", tuple(ledger.history)))
        elif duration < 0:  # wall-clock times: a clock set back during the session
            anomalies.append(Anomaly("negative duration", "R2c",
                                     f"session {sid}: stopped {-duration} ms before it started "
                                     "(the phone's clock went back)", tuple(ledger.history)))
    return anomalies


def check_daily_pot(conn: sqlite3.Connection, ledger: Ledger) -> list[Anomaly]:
    """The cache is at least as new as the newest backend state the phone saw."""
    newest: dict[str, tuple[int, int]] = {}
    for user, updated_at, uploads in ledger.pot_seen:
        if user not in newest or updated_at >= newest[user][0]:
            newest[user] = (updated_at, uploads)
    cached = {r[0]: r[1] for r in _rows(conn, "SELECT user_id, uploads_today FROM "
                                              "daily_pot_cache")}
    anomalies = []
    for user, (updated_at, uploads) in sorted(newest.items()):
        if user in cached and cached[user] < uploads:
            anomalies.append(Anomaly("stale cache", "R3",
                                     f"user {user}: cache holds {cached[user]} uploads today, "
                                     f"backend said {uploads} at {updated_at}",
                                     tuple(ledger.history)))
    return anomalies


def check_upload_retries(conn: sqlite3.Connection, ledger: Ledger) -> list[Anomaly]:
    """Every failed attempt is counted in retry_count."""
    counts = {r[0]: r[1] for r in _rows(conn, "SELECT id, retry_count FROM upload_queue")}
    return [Anomaly("lost update", "R4",
                    f"upload {uid}: {calls} failed attempts recorded as {counts.get(uid)}",
                    tuple(ledger.history))
            for uid, calls in sorted(ledger.retries.items())
            if uid in counts and counts[uid] != calls]


def check_queue(conn: sqlite3.Connection, ledger: Ledger | None = None) -> list[Anomaly]:
    """No upload is both saved as a contribution and still queued (a torn completion)."""
    history = tuple(ledger.history) if ledger else ()
    return [Anomaly("torn operation", "R5",
                    f"upload {uid} is saved as a contribution and still queued", history)
            for (uid,) in _rows(conn, "SELECT q.id FROM upload_queue q JOIN contributions c "
                                      "ON c.id = q.id ORDER BY q.id")]


def check_integrity(conn: sqlite3.Connection) -> list[Anomaly]:
    """`PRAGMA integrity_check` says ok."""
    result = [r[0] for r in _rows(conn, "PRAGMA integrity_check")]
    return [] if result == ["ok"] else [Anomaly("corruption", "-", "; ".join(result[:5]))]


def check_all(conn: sqlite3.Connection, ledger: Ledger) -> list[Anomaly]:
    """Every invariant, integrity first."""
    return (check_integrity(conn) + check_contributions(conn, ledger)
            + check_sessions(conn, ledger) + check_daily_pot(conn, ledger)
            + check_upload_retries(conn, ledger) + check_queue(conn, ledger))
