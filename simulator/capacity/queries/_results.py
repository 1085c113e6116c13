"""What `measure_queries` found: frozen dataclasses whose names carry their units.

Invariants: values only (no I/O); every latency is a median (and, backend side, a
nearest-rank p99) over `runs` timed runs of the same statement on the same data, taken
with `time.perf_counter` around the whole call (driver included); every plan is the
engine's own (SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN (ANALYZE, BUFFERS)`),
read after the timed runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class SqlitePlan:
    """`EXPLAIN QUERY PLAN` of one statement. `steps` are SQLite's lines, indented two
    spaces per level; a step "SCAN t" reads all of table t, "SCAN t USING INDEX i" walks
    all of index i (a LIMIT may stop it early), "SEARCH t USING INDEX i (...)" reads the
    index range its condition names (which may still be every row)."""

    statement: str
    steps: tuple[str, ...]
    scanned: tuple[str, ...]  # tables read in full, without an index ("SCAN t")
    index_walks: tuple[str, ...]  # indexes walked in full ("SCAN t USING ... INDEX i")
    searched: tuple[str, ...]  # indexes searched by a condition ("SEARCH ... INDEX i")
    temp_btrees: int  # "USE TEMP B-TREE FOR ..." (a sort or a DISTINCT in memory)

    @property
    def full_scan(self) -> bool:
        """A table read in full: the review's "full scan"."""
        return bool(self.scanned)

    @property
    def uses_index(self) -> bool:
        return bool(self.index_walks or self.searched)


@dataclass(frozen=True)
class PhoneQueryRow:
    """One Appendix B query on one phone file, run as the app core runs it.

    `answer`: getTodayTileCoverage, the tiles (geohashes) of today; getStreak, the streak
    in days; getActiveTrackingSession, the active session's id (None: no active one).
    `rows_returned`: what the SQL returned (tiles, distinct successful days, 0 or 1)."""

    variant: str  # the growth variant (schema, maintenance)
    profile: str  # the fix profile the queries ran under
    days: int  # days of use behind the file
    query: str  # the review's name
    contributions_rows: int
    tracking_sessions_rows: int
    answer: int | None
    rows_returned: int
    runs: int
    latency_us_median: float
    latency_us_min: float
    plan: SqlitePlan


@dataclass(frozen=True)
class PhoneQueries:
    """The Appendix B queries on phone files after days of use (review §5.2's growth)."""

    seed: int
    sqlite_version: str
    has_statistics: bool  # sqlite_stat1 exists (the app never runs ANALYZE: False)
    now_rule: str  # when "today" is, for each file
    rows: tuple[PhoneQueryRow, ...]
    seconds: float


@dataclass(frozen=True)
class PostgresPlan:
    """`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of one statement, summarised."""

    node_types: tuple[str, ...]  # every plan node, depth first
    indexes: tuple[str, ...]  # indexes any node reads
    seq_scans: tuple[str, ...]  # relations read by a sequential scan
    shared_hit_blocks: int  # the top node's (its subtree's) buffer hits
    shared_read_blocks: int
    rows_returned: int
    execution_ms: float
    planning_ms: float

    @property
    def uses_index(self) -> bool:
        return bool(self.indexes)


@dataclass(frozen=True)
class BackendQueryRow:
    """One backend query timed `runs` times (median and nearest-rank p99). The first
    run's answer is kept beside its independent count; `answers_match` says whether
    every run returned its own independent count."""

    query: str
    statement: str
    answer_rows: int  # rows the first run returned (tiles)
    expected_rows: int  # counted independently, from the rows that were loaded
    answers_match: bool
    runs: int
    latency_ms_median: float
    latency_ms_p99: float
    plan: PostgresPlan  # the custom plan for the first run's arguments
    generic_plan_runs: int  # runs PostgreSQL planned generically (pg_prepared_statements)
    custom_plan_runs: int
    generic_plan_nodes: tuple[str, ...]  # EXPLAIN (GENERIC_PLAN); () before PostgreSQL 16


@dataclass(frozen=True)
class AggregateLoad:
    """The aggregate tables of `users` users' last 30 days as the cells model projects
    them, loaded by COPY (the newest windows first when `capped`)."""

    users: int
    projected_rows_5m: float  # the occupancy model's 30-day estimate
    projected_rows_5m_low: float
    projected_rows_5m_high: float
    projected_rows_daily: float
    requested_rows_5m: int  # min(round(projected), cap)
    loaded_rows_5m: int  # count(*) after the load
    loaded_rows_daily: int  # distinct (day, geohash) of the loaded 5-minute rows
    capped: bool
    days_loaded: float  # of the 30: the span the loaded windows cover
    today_complete: bool  # every window of today up to now is loaded
    rows_today_5m: int
    load_s: float


@dataclass(frozen=True)
class TileCoverage:
    """The city tile-coverage queries at one fleet size."""

    load: AggregateLoad
    queries: tuple[BackendQueryRow, ...]


@dataclass(frozen=True)
class UserCoverage:
    """"Tiles this user covered today" on `sensor_batches` (recommended schema): `users`
    queried users with `days` days of uploads, `background_users` with today's only."""

    users: int
    days: int
    background_users: int
    table_rows: int  # count(*) after the load
    rows_per_user: float  # a queried user's rows (what the user_id index returns)
    today_rows_per_user: float  # of which today's
    table_bytes: int  # pg_total_relation_size over the partitions
    load_s: float
    query: BackendQueryRow

    @property
    def today_rows(self) -> float:
        """Every user's rows of today (what the time index returns)."""
        return self.today_rows_per_user * (self.users + self.background_users)


@dataclass(frozen=True)
class QueryReport:
    """Everything `measure_queries` measured, with the inputs that determine it."""

    quick: bool
    seed: int
    now: str  # the backend's "now" (ISO 8601, UTC)
    cells_source: str  # where the projected aggregate rows came from
    cap_rows_5m: int
    phone: PhoneQueries
    tiles: tuple[TileCoverage, ...]
    user_coverage: UserCoverage
    notes: tuple[str, ...]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (dataclasses as dicts, tuples as lists)."""
        result: dict[str, Any] = orjson.loads(orjson.dumps(dataclasses.asdict(self)))
        return result
