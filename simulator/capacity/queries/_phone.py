"""Review Appendix B's slow queries on the phone's own file, as the app core runs them.

A phone file grows with days of use, not with users: `phone_file.PhoneFile` lives day
after day through the core's own operations (`phone_file.live_day`: uploads, sessions,
the app start with the variant's maintenance), and at each measured day count the three
queries run through the blocking driver on a second connection, as the Flutter side
reads while the Kotlin side writes.

Invariants:
- The days are `phone_file.measure_growth`'s: the same seed gives the same generated
  week, cycled with re-derived ids (`GrowthDays`, checked against `phone_file` by a test),
  so these files are the files whose bytes the phone-file measurement reports.
- "Now" is the last millisecond of the last lived day: today's uploads are all in, and
  the session the last boundary started is still active.
- The plan is SQLite's `EXPLAIN QUERY PLAN` of exactly the statement the operation
  yielded, with its parameters (recorded from a run, not re-typed).
- Nothing is asserted about time; latencies are medians of `runs` runs.
"""

from __future__ import annotations

import os
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from simulator.capacity.phone_file import (
    DAY_MS,
    DEFAULT_SEED,
    START_MS,
    GrowthVariant,
    PhoneFile,
    PlannedUpload,
    live_day,
    outage_uploads,
)
from simulator.capacity.queries._results import PhoneQueries, PhoneQueryRow, SqlitePlan
from simulator.drivers.blocking import connect
from simulator.drivers.blocking import run as run_operation
from simulator.errors import UsageError
from simulator.phone import app, schema
from simulator.phone.effects import Cursor, Operation, Rows, Sql
from simulator.phone.profiles import FixProfile
from simulator.seeds import check_seed
from simulator.sensors import ids

Progress = Callable[[str], None]

SAMPLE_DAYS = 7  # phone_file cycles a generated week
UPLOADS_PER_DAY = 288  # sequence numbers advance by one a window
FULL_PHONE_DAYS = (7, 30, 90, 365)
QUICK_PHONE_DAYS = (7, 30)
FULL_PHONE_RUNS = 50
QUICK_PHONE_RUNS = 20
QUERIES = ("getTodayTileCoverage", "getStreak", "getActiveTrackingSession")
NOW_RULE = "the last millisecond of the last lived day (its uploads all in, a session active)"


def default_phone_variants() -> tuple[GrowthVariant, GrowthVariant]:
    """The app as shipped (v2, no maintenance) and with every fix (v3, whose
    performMaintenance keeps 90 days of contributions and 30 of stopped sessions)."""
    return GrowthVariant(schema.V2, "none"), GrowthVariant(schema.V3, "perform_maintenance")


# -- the days of use ------------------------------------------------------------------


@dataclass(frozen=True)
class GrowthDays:
    """The generated week of phone 0 (`phone_file.outage_uploads`, split by the day its
    upload is due) and each batch's sequence number; `day(d)` is week day d mod 7 moved
    to day d, its ids re-derived from the shifted sequence numbers."""

    seed: int
    week: tuple[tuple[PlannedUpload, ...], ...]
    seqs: tuple[tuple[int, ...], ...]

    def day(self, day: int) -> list[PlannedUpload]:
        s = day % len(self.week)
        shift = day - s
        seqs = np.array(self.seqs[s], dtype=np.int64) + shift * UPLOADS_PER_DAY
        batch_ids = ids.batch_ids(self.seed, np.zeros(seqs.shape, dtype=np.int64), seqs)
        return [PlannedUpload(u.due_ms + shift * DAY_MS, b.decode(),
                              u.timestamp_ms + shift * DAY_MS, u.samples, u.geohash, b"")
                for u, b in zip(self.week[s], batch_ids.tolist(), strict=True)]


def growth_days(seed: int = DEFAULT_SEED) -> GrowthDays:
    """The week `phone_file.measure_growth` cycles, for `seed`."""
    uploads = outage_uploads(check_seed(seed), SAMPLE_DAYS)
    week: list[list[PlannedUpload]] = [[] for _ in range(SAMPLE_DAYS)]
    for u in uploads:
        week[(u.due_ms - START_MS) // DAY_MS].append(u)
    return GrowthDays(seed, tuple(tuple(d) for d in week),
                      tuple(tuple(int(orjson.loads(u.envelope)["seq"]) for u in d)
                            for d in week))


# -- plans ----------------------------------------------------------------------------

_INDEX = re.compile(r"USING (?:AUTOMATIC )?(?:COVERING |PARTIAL )?INDEX (\w+)")


def _classify(text: str) -> tuple[str, str]:
    """("scan", table), ("walk", index), ("search", index) or ("", "") for a plan line."""
    index = _INDEX.search(text)
    if text.startswith("SCAN "):
        rest = text[5:].strip()
        if " USING " not in f" {rest}":
            return ("scan", rest.split()[0]) if rest[:1].isalpha() else ("", "")
        return "walk", index.group(1) if index else rest
    if text.startswith("SEARCH ") and index is not None:
        return "search", index.group(1)
    return "", ""


def sqlite_plan(conn: sqlite3.Connection, statement: str,
                params: tuple[Any, ...] = ()) -> SqlitePlan:
    """SQLite's `EXPLAIN QUERY PLAN` of `statement`, classified (see `SqlitePlan`)."""
    rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
    depth: dict[int, int] = {0: -1}
    steps: list[str] = []
    kinds: dict[str, list[str]] = {"scan": [], "walk": [], "search": [], "": []}
    for node, parent, _, detail in rows:
        depth[int(node)] = depth.get(int(parent), -1) + 1
        steps.append("  " * depth[int(node)] + str(detail))
        kind, name = _classify(str(detail))
        kinds[kind].append(name)
    temp = sum(s.strip().startswith("USE TEMP B-TREE") for s in steps)
    return SqlitePlan(" ".join(statement.split()), tuple(steps), tuple(kinds["scan"]),
                      tuple(kinds["walk"]), tuple(kinds["search"]), temp)


def recorded(conn: sqlite3.Connection, operation: Operation[Any]
             ) -> tuple[Any, list[tuple[Sql, Rows]]]:
    """Run `operation` as the blocking driver runs it (each effect once, in order, an
    error thrown back in); its result and each statement it yielded with its rows."""
    cursor: Cursor[Sql] = Cursor(operation)
    seen: list[tuple[Sql, Rows]] = []
    while cursor.pending is not None:
        effect = cursor.pending
        try:
            rows = conn.execute(effect.statement, effect.params).fetchall()
        except sqlite3.Error as exc:
            cursor.throw(exc)
            continue
        seen.append((effect, rows))
        cursor.send(rows)
    return cursor.outcome(), seen


# -- measuring ------------------------------------------------------------------------

Factory = Callable[[int, FixProfile, str], Operation[Any]]
FACTORIES: dict[str, Factory] = {
    "getTodayTileCoverage": lambda now, p, u: app.get_today_tile_coverage(now, p, u),
    "getStreak": lambda now, p, u: app.get_streak(now, p, u),
    "getActiveTrackingSession": lambda now, p, u: app.get_active_tracking_session(p, u),
}


def _answer_of(query: str, result: Any) -> int | None:
    if query == "getStreak":
        return int(result)
    if query == "getTodayTileCoverage":
        return len(result)
    return int(result[0][0]) if result else None


def _timed(conn: sqlite3.Connection, make: Callable[[], Operation[Any]], runs: int
           ) -> list[float]:
    found = []
    for _ in range(runs):
        began = time.perf_counter()
        run_operation(conn, make())
        found.append(time.perf_counter() - began)
    return found


def _rows(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def measure_file(path: Path, variant: GrowthVariant, days: int, user_id: str, runs: int
                 ) -> list[PhoneQueryRow]:
    """The three queries on the file at `path` after `days` days (now: `NOW_RULE`)."""
    now = START_MS + days * DAY_MS - 1
    profile = variant.profile
    conn = connect(path)
    try:
        contributions, sessions = _rows(conn, "contributions"), _rows(conn, "tracking_sessions")
        found = []
        for query in QUERIES:
            def make(q: str = query) -> Operation[Any]:
                return FACTORIES[q](now, profile, user_id)
            result, seen = recorded(conn, make())
            (effect, rows), = seen  # each Appendix B query is one statement
            times = _timed(conn, make, runs)
            found.append(PhoneQueryRow(
                variant.name, profile.name, days, query, contributions, sessions,
                _answer_of(query, result), len(rows), runs,
                statistics.median(times) * 1e6, min(times) * 1e6,
                sqlite_plan(conn, effect.statement, effect.params)))
        return found
    finally:
        conn.close()


@contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory, in RAM when /dev/shm is writable (as phone_file's)."""
    shm = Path("/dev/shm")
    parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="ggsim-queries-", dir=parent) as directory:
        yield Path(directory)


def _check(days: Sequence[int], runs: int) -> tuple[int, ...]:
    clean = tuple(sorted(set(days)))
    if not clean or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in clean):
        raise UsageError(f"days must be positive whole numbers, e.g. (7, 30), got {days!r}")
    if runs < 1:
        raise UsageError(f"runs must be at least 1, got {runs}")
    return clean


def measure_phone_queries(*, quick: bool = False, days: Sequence[int] | None = None,
                          variants: Sequence[GrowthVariant] | None = None,
                          seed: int = DEFAULT_SEED, runs: int | None = None,
                          progress: Progress | None = None) -> PhoneQueries:
    """Appendix B's queries on each variant's file after each of `days` days (default
    7, 30, 90, 365; quick 7, 30), `runs` timed runs each (default 50; quick 20)."""
    count = runs if runs is not None else (QUICK_PHONE_RUNS if quick else FULL_PHONE_RUNS)
    points = _check(days or (QUICK_PHONE_DAYS if quick else FULL_PHONE_DAYS), count)
    say = progress or (lambda _: None)
    began = time.perf_counter()
    week = growth_days(seed)
    rows: list[PhoneQueryRow] = []
    with _workdir() as directory:
        for k, variant in enumerate(variants or default_phone_variants()):
            say(f"phone queries: {variant.name}, {points[-1]} days")
            phone = PhoneFile(directory / f"queries-{k}.db", variant.profile, seed=seed)
            try:
                for day in range(points[-1]):
                    live_day(phone, day, week.day(day), variant.maintenance)
                    if day + 1 in points:
                        rows += measure_file(phone.path, variant, day + 1, phone.user_id,
                                             count)
                statistics_table = phone.conn.execute(
                    "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'"
                ).fetchone()[0]
            finally:
                phone.close()
    return PhoneQueries(seed, sqlite3.sqlite_version, bool(statistics_table), NOW_RULE,
                        tuple(rows), time.perf_counter() - began)
