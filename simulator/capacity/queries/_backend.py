"""The backend's tile-coverage queries at fleet-sized data volumes (recommended schema).

- City tile coverage: `sensor_aggregates_5m` and `sensor_aggregates_daily` hold what the
  cells model projects for the 30 days before `now` at each fleet size (`_tiles`),
  loaded by COPY into a scratch database; the tiles with data today (from either table)
  and in the last hour are timed and explained.
- Per-user coverage ("tiles this user covered today") on `sensor_batches`: users'
  30 days of real generated payloads and more users' today loaded by COPY
  (`CoverageShape`), the query by user_id and today's time range, a different user
  each run.

Invariants:
- Exact loads: the 5-minute table gets exactly min(round(projected), cap) rows (the
  newest windows first, so a capped load keeps the projected density of a window and
  loses old days); the daily table exactly the distinct (day, geohash) of those rows,
  as the aggregation job would write them. Both are counted after the load.
- Every answer is compared with a count made from the loaded rows in Python.
- Deterministic inputs: geohashes, measures, payloads and ids come from the seed.
- Clean: one scratch database per measurement, dropped however it ends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from simulator.backend.store import device_hash, instant
from simulator.capacity.aggregates import AggregateCellsReport, project_rows
from simulator.capacity.bulk_load import connect, ensure_months
from simulator.capacity.envelopes import Envelope, generate_envelopes
from simulator.capacity.queries import _tiles
from simulator.capacity.queries._postgres import time_query
from simulator.capacity.queries._results import AggregateLoad, TileCoverage, UserCoverage
from simulator.capacity.scratch import scratch_database
from simulator.drivers.network import run_loop
from simulator.errors import UsageError
from simulator.instants import DAY_MS, HOUR_MS

Progress = Callable[[str], None]
READINGS_PER_BATCH = 30

TILES_TODAY_5M = """
SELECT geohash, SUM(batches)::bigint AS batches FROM sensor_aggregates_5m
WHERE window_start >= $1 AND window_start < $2 GROUP BY geohash"""
TILES_TODAY_DAILY = "SELECT geohash, batches FROM sensor_aggregates_daily WHERE day = $1"
USER_TILES_TODAY = """
SELECT batch_json ->> 'geohash' AS geohash, COUNT(*) AS batches FROM sensor_batches
WHERE user_id = $1 AND timestamp_utc >= $2 AND timestamp_utc < $3 GROUP BY 1"""


@dataclass(frozen=True)
class Budget:
    """How many runs a query gets, and how long at most."""

    runs: int
    budget_s: float


@dataclass(frozen=True)
class CoverageShape:
    """`sensor_batches` for the per-user query: `users` queried users with `days` days
    of uploads each, and `background_users` more with today's uploads only. The query's
    two access paths read a user's rows (the user_id index: that user's days) or today's
    rows (the time index: every user's today), so this table costs each path what a
    fleet of `background_users` users' table would; only its size (caching) differs."""

    users: int
    days: int
    background_users: int

    def __post_init__(self) -> None:
        if self.users < 1 or self.days < 1 or self.background_users < 0:
            raise UsageError("a coverage table needs at least one user and one day, and "
                             f"no negative background, got {self}")


# -- city tile coverage ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _TileTables:
    """The rows of both aggregate tables: the 5-minute rows are made as COPY reads them
    (a fleet's month is millions of rows), the daily rows are few."""

    rows: _tiles.TileRows
    names: tuple[str, ...]
    batches: npt.NDArray[np.int64]
    light: npt.NDArray[np.float64]
    daily: list[tuple[Any, ...]]

    def five_minute(self) -> Iterator[tuple[Any, ...]]:
        when: dict[int, datetime] = {}
        for w, c, b, la in zip(self.rows.window_ms.tolist(), self.rows.cell.tolist(),
                               self.batches.tolist(), self.light.tolist(), strict=True):
            at = when.get(w) or when.setdefault(w, instant(w))
            yield at, self.names[c], b, b * READINGS_PER_BATCH, b, la, la / 4, la * 3, 1013.0, 0.98


def _tile_tables(rows: _tiles.TileRows, rings: _tiles.RingCells, users: int, seed: int
                 ) -> _TileTables:
    """A device uploads once a window, so a cell's batches (and devices) average
    users / cells of its window; samples are 30 a batch; the sensor columns are plausible
    placeholders (no query here reads them). A daily row sums its day's windows."""
    rng = np.random.default_rng([seed, users, 5])
    _, inverse, per_window = np.unique(rows.window_ms, return_inverse=True,
                                       return_counts=True)
    mean = np.maximum(users / per_window[inverse.reshape(-1)] - 1.0, 0.0)
    batches = (1 + rng.poisson(mean)).astype(np.int64)
    light = rng.gamma(2.0, 150.0, batches.size)
    day_ms, cell, of_day = _tiles.daily_cells(rows)
    day_batches = np.bincount(of_day, weights=batches, minlength=day_ms.size).astype(np.int64)
    daily = [(instant(int(d)).date(), rings.geohash[c], b, b * READINGS_PER_BATCH, b, 300.0,
              10.0, 900.0, 1013.0, 0.98)
             for d, c, b in zip(day_ms.tolist(), cell.tolist(), day_batches.tolist(),
                                strict=True)]
    return _TileTables(rows, rings.geohash, batches, light, daily)


async def _load_tiles(conn: Any, tables: _TileTables) -> tuple[int, int]:
    await conn.execute("TRUNCATE sensor_aggregates_5m, sensor_aggregates_daily")
    await conn.copy_records_to_table("sensor_aggregates_5m", records=tables.five_minute())
    await conn.copy_records_to_table("sensor_aggregates_daily", records=tables.daily)
    await conn.execute("VACUUM (ANALYZE) sensor_aggregates_5m, sensor_aggregates_daily")
    return (int(await conn.fetchval("SELECT count(*) FROM sensor_aggregates_5m")),
            int(await conn.fetchval("SELECT count(*) FROM sensor_aggregates_daily")))


async def _tile_queries(conn: Any, users: int, cells: AggregateCellsReport,
                        rings: _tiles.RingCells, now_ms: int, cap: int, seed: int,
                        budget: Budget, say: Progress) -> TileCoverage:
    began = time.perf_counter()
    r5, low, high = project_rows(cells, users, _tiles.SPAN_DAYS)
    rd = project_rows(cells, users, _tiles.SPAN_DAYS, table="sensor_aggregates_daily")[0]
    plan = _tiles.plan_rows(cells.occupancy, rings, users, now_ms, round(r5), rd)
    requested = min(round(r5), cap)
    say(f"tile queries: {users:,} users, loading {requested:,} of {round(r5):,} "
        f"projected 5-minute rows")
    rows = _tiles.draw_rows(plan, rings, requested, seed)
    loaded, loaded_daily = await _load_tiles(conn, _tile_tables(rows, rings, users, seed))
    today = now_ms - now_ms % DAY_MS
    oldest = int(rows.window_ms.min()) if rows.window_ms.size else now_ms
    load = AggregateLoad(
        users, r5, low, high, rd, requested, loaded, loaded_daily, requested < round(r5),
        (now_ms - oldest) / DAY_MS, _today_complete(rows, plan, today),
        int(np.count_nonzero(rows.window_ms >= today)), time.perf_counter() - began)
    hour = _tiles.distinct_cells(rows, now_ms - HOUR_MS, now_ms)
    whole_day = _tiles.distinct_cells(rows, today, now_ms)
    at = (instant(today), instant(now_ms), instant(now_ms - HOUR_MS))
    queries = (
        await time_query(conn, "tiles today (5-minute table)", TILES_TODAY_5M,
                         lambda i: at[:2], lambda i: whole_day, runs=budget.runs,
                         budget_s=budget.budget_s),
        await time_query(conn, "tiles in the last hour (5-minute table)", TILES_TODAY_5M,
                         lambda i: (at[2], at[1]), lambda i: hour, runs=budget.runs,
                         budget_s=budget.budget_s),
        await time_query(conn, "tiles today (daily table)", TILES_TODAY_DAILY,
                         lambda i: (at[0].date(),), lambda i: whole_day, runs=budget.runs,
                         budget_s=budget.budget_s))
    for q in queries:
        say(f"tile queries: {users:,} users, {q.query}: {q.answer_rows:,} tiles, median "
            f"{q.latency_ms_median:.2f} ms, p99 {q.latency_ms_p99:.2f} ms")
    return TileCoverage(load, queries)


def _today_complete(rows: _tiles.TileRows, plan: _tiles.RowPlan, today_ms: int) -> bool:
    """Whether the loaded rows hold every planned row of the windows since `today_ms`."""
    first = (today_ms - plan.first_window_ms) // _tiles.WINDOW_MS
    return int(np.count_nonzero(rows.window_ms >= today_ms)) == int(plan.cells[first:].sum())


def measure_tile_queries(database_url: str, cells: AggregateCellsReport,
                         users: Sequence[int], *, now_ms: int, cap_rows: int, seed: int,
                         budget: Budget, progress: Progress | None = None
                         ) -> list[TileCoverage]:
    """The city tile-coverage queries at each fleet size in `users` (see the module
    docstring), on a scratch database of the server `database_url` names."""
    say = progress or (lambda _: None)
    model = cells.occupancy
    rings = _tiles.ring_cells(model.ring_cells.size, model.ring_m)

    async def main(url: str) -> list[TileCoverage]:
        conn = await connect(url, "recommended")
        try:
            return [await _tile_queries(conn, n, cells, rings, now_ms, cap_rows, seed, budget,
                                        say) for n in users]
        finally:
            await conn.close()

    with scratch_database(database_url, "tiles") as url:
        return run_loop(main(url))


# -- per-user coverage on sensor_batches -------------------------------------------------


@dataclass(frozen=True)
class _UserRows:
    records: list[tuple[Any, ...]]
    today: dict[int, set[str]]  # queried user -> geohashes of today's batches
    queried_rows: int  # the queried users' rows
    queried_today_rows: int  # of which today's


def _record(rng: np.random.Generator, e: Envelope, user: str, stamp: int, back: int
            ) -> tuple[Any, ...]:
    return (uuid.UUID(bytes=rng.bytes(16)), e.seq - back * 288, device_hash(f"dev-{user}"),
            user, instant(stamp), e.payload, instant(stamp + _tiles.WINDOW_MS))


def _user_rows(users: int, days: int, background: int, now_ms: int, seed: int) -> _UserRows:
    """Queried user u uploads what generated phone u did on the day of `now_ms`, every
    day of the `days` before `now_ms` (payload bytes unchanged, times moved by whole
    days); background user b uploads phone b mod `users`'s batches of today up to
    `now_ms` only. Ids come from the seed."""
    today = now_ms - now_ms % DAY_MS
    pool = generate_envelopes(users, 24, today, seed=seed)
    geohash = [str(orjson.loads(e.payload)["geohash"]) for e in pool]
    rng = np.random.default_rng([seed, users, days, background])
    records: list[tuple[Any, ...]] = []
    seen: dict[int, set[str]] = {u: set() for u in range(users)}
    for back in range(days + 1):
        for e, g in zip(pool, geohash, strict=True):
            stamp = e.timestamp_ms - back * DAY_MS
            if now_ms - days * DAY_MS <= stamp < now_ms:
                records.append(_record(rng, e, queried_user(e.phone), stamp, back))
                if stamp >= today:
                    seen[e.phone].add(g)
    queried_today = sum(1 for e in pool if today <= e.timestamp_ms < now_ms)
    queried = len(records)
    for b in range(background):
        records += [_record(rng, e, f"bg-user-{b:06d}", e.timestamp_ms, 0) for e in pool
                    if e.phone == b % users and today <= e.timestamp_ms < now_ms]
    return _UserRows(records, seen, queried, queried_today)


def queried_user(u: int) -> str:
    """The user_id of queried user `u`."""
    return f"cov-user-{u:05d}"


async def _copy_batches(conn: Any, records: list[tuple[Any, ...]]) -> tuple[int, int]:
    await conn.copy_records_to_table(
        "sensor_batches", records=records,
        columns=("batch_id", "seq", "device_hash", "user_id", "timestamp_utc", "batch_json",
                 "created_at"))
    await conn.execute("VACUUM (ANALYZE) sensor_batches")
    rows = int(await conn.fetchval("SELECT count(*) FROM sensor_batches"))
    size = int(await conn.fetchval(
        "SELECT COALESCE(SUM(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
        "WHERE inhparent = 'sensor_batches'::regclass"))
    return rows, size


async def _user_coverage(url: str, shape: CoverageShape, now_ms: int, seed: int,
                         budget: Budget, say: Progress) -> UserCoverage:
    began = time.perf_counter()
    data = _user_rows(shape.users, shape.days, shape.background_users, now_ms, seed)
    say(f"user coverage: loading {len(data.records):,} sensor_batches rows ({shape.users} "
        f"users x {shape.days} days, {shape.background_users:,} more users' today)")
    conn = await connect(url, "recommended")
    try:
        await ensure_months(conn, now_ms - (shape.days + 1) * DAY_MS, now_ms)
        rows, size = await _copy_batches(conn, data.records)
        loaded_s = time.perf_counter() - began
        today = instant(now_ms - now_ms % DAY_MS)
        query = await time_query(
            conn, "tiles this user covered today (sensor_batches)", USER_TILES_TODAY,
            lambda i: (queried_user(i % shape.users), today, instant(now_ms)),
            lambda i: len(data.today[i % shape.users]), runs=budget.runs,
            budget_s=budget.budget_s)
    finally:
        await conn.close()
    say(f"user coverage: {rows:,} rows: median {query.latency_ms_median:.2f} ms, p99 "
        f"{query.latency_ms_p99:.2f} ms, indexes {', '.join(query.plan.indexes) or 'none'}")
    return UserCoverage(shape.users, shape.days, shape.background_users, rows,
                        data.queried_rows / shape.users,
                        data.queried_today_rows / shape.users, size, loaded_s, query)


def measure_user_coverage(database_url: str, shape: CoverageShape, *, now_ms: int,
                          seed: int, budget: Budget, progress: Progress | None = None
                          ) -> UserCoverage:
    """"Tiles this user covered today" on `sensor_batches` holding `shape`'s uploads
    before `now_ms` (see `CoverageShape`), on a scratch database."""
    say = progress or (lambda _: None)
    with scratch_database(database_url, "usertiles") as url:
        return run_loop(_user_coverage(url, shape, now_ms, seed, budget, say))
