"""The tile-coverage style queries, measured: review Appendix B's slow queries on the
phone's own file, and the backend's tile-coverage queries at 1K/10K/100K users' data.

- Phone (`measure_phone_queries`): getTodayTileCoverage, getStreak and
  getActiveTrackingSession, run by the blocking driver through the app core's own
  operations on real phone files after 7/30/90/365 days of use (v2 as shipped, v3 with
  the indexes of §1.3 and Appendix B): median latency and SQLite's `EXPLAIN QUERY PLAN`
  (is the table scanned, or an index used?). A phone file grows with days, not users.
- Backend, city (`measure_tile_queries`): the tiles with data today and in the last hour
  from `sensor_aggregates_5m` (and today's from `sensor_aggregates_daily`), the tables
  loaded by COPY to the rows the cells model projects for 30 days of each fleet size
  (capped in size: the newest windows are kept, so today's density is the projected one).
- Backend, one user (`measure_user_coverage`): "tiles this user covered today" on
  `sensor_batches`, by user_id and today's time range.

Modules: `_results` (the dataclasses), `_phone`, `_tiles` (which aggregate rows a fleet
has), `_postgres` (timing and plans on PostgreSQL), `_backend` (loads and queries).

Invariants: inputs are a function of the seed (timings are not); every answer is checked
against a count made independently of the engine; nothing asserts on time; the backend
side works in scratch databases that are dropped however the measurement ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.capacity.aggregates import AggregateCellsReport, measure_aggregate_cells
from simulator.capacity.queries._backend import (
    Budget,
    CoverageShape,
    measure_tile_queries,
    measure_user_coverage,
)
from simulator.capacity.queries._phone import (
    GrowthDays,
    default_phone_variants,
    growth_days,
    measure_phone_queries,
    sqlite_plan,
)
from simulator.capacity.queries._results import (
    AggregateLoad,
    BackendQueryRow,
    PhoneQueries,
    PhoneQueryRow,
    PostgresPlan,
    QueryReport,
    SqlitePlan,
    TileCoverage,
    UserCoverage,
)
from simulator.capacity.queries._tiles import RingCells, ring_cells
from simulator.errors import UsageError
from simulator.instants import format_instant, parse_instant

__all__ = [
    "FULL",
    "NOW",
    "QUICK",
    "AggregateLoad",
    "BackendQueryRow",
    "Budget",
    "CoverageShape",
    "GrowthDays",
    "PhoneQueries",
    "PhoneQueryRow",
    "PostgresPlan",
    "QueryPlan",
    "QueryReport",
    "RingCells",
    "SqlitePlan",
    "TileCoverage",
    "UserCoverage",
    "default_phone_variants",
    "growth_days",
    "measure_phone_queries",
    "measure_queries",
    "measure_tile_queries",
    "measure_user_coverage",
    "ring_cells",
    "sqlite_plan",
]

Progress = Callable[[str], None]

# A Wednesday evening (the cells model's quick date is a Wednesday); the 30 days before
# it lie in January, one monthly partition of sensor_batches: a user's whole month is in
# the partition today's query reads.
NOW = "2024-01-31T18:00:00Z"
SEED = 20_240_131


@dataclass(frozen=True)
class QueryPlan:
    """What `measure_queries` measures (quick and full defaults below)."""

    phone_days: tuple[int, ...]
    phone_runs: int
    users: tuple[int, ...]
    cap_rows_5m: int  # the most 5-minute rows loaded for one fleet size
    budget: Budget  # per backend query
    coverage: CoverageShape  # sensor_batches for the per-user query


QUICK = QueryPlan((7, 30), 20, (1_000, 10_000, 100_000), 300_000, Budget(50, 1.0),
                  CoverageShape(3, 30, 100))
FULL = QueryPlan((7, 30, 90, 365), 50, (1_000, 10_000, 100_000), 6_000_000, Budget(200, 5.0),
                 CoverageShape(10, 30, 500))


def _cells(cells: AggregateCellsReport | None, quick: bool, say: Progress
           ) -> tuple[AggregateCellsReport, str]:
    if cells is not None:
        return cells, (f"the given cells report ({max(cells.fleet_sizes):,} phones x "
                       f"{len(cells.seeds)} seeds)")
    if quick:
        say("tile queries: a small cells model (500 phones, one seed)")
        return (measure_aggregate_cells(quick=True, fleet_sizes=(50, 100, 200, 500), seeds=(1,),
                                        resamples=20),
                "measure_aggregate_cells(quick=True) on 500 phones of one seed (rougher at "
                "100K users than the capacity run's own)")
    say("tile queries: the cells model (measure_aggregate_cells quick)")
    return measure_aggregate_cells(quick=True), "measure_aggregate_cells(quick=True)"


def _notes(plan: QueryPlan, tiles: Sequence[TileCoverage]) -> tuple[str, ...]:
    notes = [
        "Phone: each query is the statement the app core yields (simulator/phone/app.py); "
        "v3's active-session lookup filters by user_id, which schema.ACTIVE_SESSION_V3 "
        "does not.",
        "Phone: the app never runs ANALYZE, so SQLite plans without statistics.",
        "Aggregates: a window's tiles are drawn independently within its day's tiles, so "
        "the last hour's tile count is an upper bound.",
    ]
    capped = [t.load.users for t in tiles if t.load.capped]
    if capped:
        notes.append(f"Aggregates capped at {plan.cap_rows_5m:,} rows for "
                     f"{', '.join(f'{u:,}' for u in capped)} users: the newest windows "
                     "were loaded at the projected density, older days left out.")
    short = [t.load for t in tiles if not t.load.today_complete]
    if short:
        notes.append("Today is not all loaded for " + ", ".join(
            f"{load.users:,} users ({load.days_loaded * 24:.0f} h of windows)" for load in short)
            + ": such a table is mostly today, so PostgreSQL may read it by a sequential "
            "scan where a month's table would use its window index; those plans and "
            "times are not the full table's.")
    return tuple(notes)


def measure_queries(database_url: str, *, quick: bool, progress: Progress | None = None,
                    cells: AggregateCellsReport | None = None, seed: int = SEED,
                    plan: QueryPlan | None = None) -> QueryReport:
    """The phone's Appendix B queries and the backend's tile-coverage queries (see the
    module docstring) on the server `database_url` names. `cells` is the capacity run's
    cells report when it has one (else a cells model is measured here); `plan` overrides
    the quick or full defaults."""
    chosen = plan or (QUICK if quick else FULL)
    if chosen.cap_rows_5m < 1 or not chosen.users or min(chosen.users) < 1:
        raise UsageError("a query plan needs fleet sizes of at least one user and a cap of "
                         "at least one row")
    say = progress or (lambda _: None)
    seconds: dict[str, float] = {}
    now_ms = parse_instant(NOW)
    began = time.perf_counter()
    phone = measure_phone_queries(days=chosen.phone_days, runs=chosen.phone_runs, seed=seed,
                                  progress=say)
    seconds["phone"] = time.perf_counter() - began
    began = time.perf_counter()
    report, source = _cells(cells, quick, say)
    seconds["cells model"] = time.perf_counter() - began
    began = time.perf_counter()
    tiles = measure_tile_queries(database_url, report, chosen.users, now_ms=now_ms,
                                 cap_rows=chosen.cap_rows_5m, seed=seed, budget=chosen.budget,
                                 progress=say)
    seconds["tiles"] = time.perf_counter() - began
    began = time.perf_counter()
    coverage = measure_user_coverage(database_url, chosen.coverage, now_ms=now_ms, seed=seed,
                                     budget=chosen.budget, progress=say)
    seconds["user coverage"] = time.perf_counter() - began
    return QueryReport(quick, seed, format_instant(now_ms), source, chosen.cap_rows_5m, phone,
                       tuple(tiles), coverage, _notes(chosen, tiles), seconds)
