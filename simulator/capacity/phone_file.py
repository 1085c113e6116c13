"""The phone's SQLite file over days of use (review §5.2, §5.5), measured on real files.

A simulated phone lives day after day on a real SQLite file (Python's sqlite3, in a
temporary directory): every 5-minute batch of the fleet generator is uploaded through
the app core's own operations (`uploader.upload_batch`, then DailyPotService's
`potsync.after_upload`, as `fleet.runner` runs them), tracking sessions end and begin a few
times a day (`app.stop_tracking_session`, `app.start_tracking_session`), and the app
starts once a day, at midnight: the variant's maintenance (none, as shipped: cleanOldData
is "never called automatically"; `app.clean_old_data` alone, no VACUUM; or
`app.perform_maintenance`, §5.5, through `app.app_start`), then the session, the pot's
`potsync.reconcile` and the retry worker. The network answers as the reference backend
would (uploads 201, the pot by `backend.pot`'s rules) or, in an outage, not at all: failed
uploads go to `upload_queue` under the core's cap (`QueuePolicy.max_entries`, the oldest
evicted) and the retry worker (`uploader.drain_queue`) probes once a day.

Measured: the file's pages (`page_count`, `freelist_count`, and per table and index from
the `dbstat` virtual table; without dbstat, `FileStats.objects` is empty and only the page
totals are reported), the rows; the maintenance arriving late on a file that never had
any (`CatchUp`); and in an outage, where every upload went.

Invariants:
- Deterministic: the same seed and arguments give the same numbers (batches, ids and
  session times come from the seed; nothing reads the wall clock but the timings).
- Accounting: dbstat's pages + free pages + `other_pages` (the pointer-map pages of an
  auto-vacuum file) = `page_count`; `file_bytes` = `page_count` x `page_size_bytes`
  (read after a checkpoint, so a WAL file's pages are in the main file).
- Outage ledger: every upload of an outage is still queued, or was evicted by the cap or
  deleted by maintenance, as the core reported them (`UploadOutcome.evicted`, the ids
  `app.app_start` returns), and the queue rows the file lost are exactly those.
- Batching: a simulated day's operations run in one transaction (the core's own
  BEGIN IMMEDIATE ... COMMIT become a SAVEPOINT inside it), so a year takes seconds per
  variant instead of a million commits. It changes no b-tree page: the same operations
  allocate and free the same pages whatever the commit boundaries; only page 1's change
  counter differs (and, with auto-vacuum, when free pages go back).
  `BatchingCheck` compares the first days page by page.
- Growth days cycle a generated week: day d is the generator's day d mod 7, its ids and
  times re-derived for day d (`ids.batch_ids` of the shifted sequence number). A row's
  bytes depend on its values' lengths and integer sizes only (36-character ids,
  6-character geohashes, 6-byte times), so a cycled year has a generated year's bytes.
  The generator skips windows in which the app was killed, so a day has about 284
  uploads, not 288. Outage days are generated in full, with their real envelopes.

Where the model simplifies: one connection writes for both sides (a connection does not
change what the file holds); the app starts once a day (the fleet runner starts it, and
runs its maintenance, after every kill or reboot); session boundaries are seeded instants
(the runner's come from gaps between uploads, which a generated day rarely has).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from simulator.backend import pot as pot_rules
from simulator.drivers.blocking import connect, execute
from simulator.drivers.blocking import run as run_sql
from simulator.errors import UsageError
from simulator.phone import app, potsync, schema
from simulator.phone.effects import Cursor, Http, HttpResponse, NetOperation, NetworkError, Sql
from simulator.phone.profiles import V2, V3, FixProfile
from simulator.phone.uploader import Credentials, QueuePolicy, drain_queue, upload_batch
from simulator.seeds import Stream, check_seed, uniform_hash
from simulator.sensors import FleetConfig, FleetGenerator, encode_lines, ids

__all__ = [
    "DAY_MS",
    "DEFAULT_SEED",
    "FULL_DAYS",
    "FULL_OUTAGE_DAYS",
    "QUICK_DAYS",
    "QUICK_OUTAGE_DAYS",
    "START_MS",
    "BatchingCheck",
    "CatchUp",
    "FileStats",
    "GrowthPoint",
    "GrowthVariant",
    "ObjectBytes",
    "OutagePoint",
    "OutageVariant",
    "PhoneFile",
    "PhoneFileReport",
    "PlannedUpload",
    "catch_up",
    "check_batching",
    "dbstat_available",
    "default_growth_variants",
    "default_outage_variants",
    "differing_pages",
    "file_stats",
    "live_day",
    "measure_growth",
    "measure_outages",
    "measure_phone_file",
    "outage_uploads",
    "session_times",
    "simulate_outage",
]

Progress = Callable[[str], None]

DAY_MS = 86_400_000
WINDOW_MS = 300_000
UPLOADS_PER_DAY = DAY_MS // WINDOW_MS  # 288
START_MS = 1_717_372_800_000  # 2024-06-03T00:00:00Z, a Monday: the phone's first day
PHONE = 0  # the simulated phone's index in the generator's fleet
SAMPLE_DAYS = 7  # growth days cycle a generated week (module docstring)
SESSIONS_PER_DAY = 4  # tracking sessions a day: one from the app start, three more
CACHE_KIB = 65_536  # the measuring connection's page cache: speed only, not the file
MAINTENANCE = ("none", "clean_old_data", "perform_maintenance")
AUTO_VACUUM = ("NONE", "FULL")
DEFAULT_SEED = 20_240_603
FULL_DAYS = (7, 30, 90, 365)
QUICK_DAYS = (7, 30)
FULL_OUTAGE_DAYS = (1, 3, 7, 14, 30)
QUICK_OUTAGE_DAYS = (1, 9)
CORE_POLICY = QueuePolicy()  # the app core's retry and cap policy, as the fleet uses it
UNBOUNDED = None  # a queue without the core's cap (review C2: nothing bounds it)


# -- results --------------------------------------------------------------------------


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


@dataclass(frozen=True)
class GrowthVariant:
    """A schema, a maintenance policy and the file's auto-vacuum mode: NONE is SQLite's
    default (and Python's, and what the review assumes); FULL is what Android's own
    SQLite build creates (AOSP external/sqlite: -DSQLITE_DEFAULT_AUTOVACUUM=1)."""

    schema_version: int
    maintenance: str
    auto_vacuum: str = "NONE"

    def __post_init__(self) -> None:
        if self.schema_version not in (schema.V2, schema.V3):
            raise UsageError(f"schema_version must be 2 or 3, got {self.schema_version}")
        if self.maintenance not in MAINTENANCE:
            raise UsageError(f"maintenance must be one of {MAINTENANCE}, got "
                             f"{self.maintenance!r}")
        if self.auto_vacuum not in AUTO_VACUUM:
            raise UsageError(f"auto_vacuum must be one of {AUTO_VACUUM}, got "
                             f"{self.auto_vacuum!r}")

    @property
    def name(self) -> str:
        vacuum = "" if self.auto_vacuum == "NONE" else f" auto_vacuum={self.auto_vacuum}"
        return f"v{self.schema_version} {self.maintenance}{vacuum}"

    @property
    def profile(self) -> FixProfile:
        """v2 as shipped or v3 with every fix; `auto_maintenance` as the variant says."""
        base = V2 if self.schema_version == schema.V2 else V3
        wanted = self.maintenance == "perform_maintenance"
        return replace(base, name=f"{base.name}{'+' if wanted else '-'}auto_maintenance",
                       auto_maintenance=wanted)


@dataclass(frozen=True)
class GrowthPoint:
    """A variant's file after `days` days of use."""

    variant: GrowthVariant
    profile: str
    days: int
    uploads: int  # upload_batch calls so far, all acknowledged
    saved_uploads: int  # of which the local insert succeeded
    contributions_rows: int
    tracking_sessions_rows: int
    file_bytes: int
    freelist_bytes: int
    contributions_bytes: int  # the table and all its indexes (dbstat)
    bytes_per_contribution_row: float  # contributions_bytes / rows
    file_bytes_per_contribution_row: float
    stats: FileStats


@dataclass(frozen=True)
class CatchUp:
    """The review's maintenance arriving on a file that never had any (the fix shipped to
    a phone with `days` days of data): cleanOldData once, then performMaintenance once.
    Without VACUUM an auto_vacuum NONE file keeps its size (the pages go to the free
    list); a FULL one gives them back at the commit."""

    variant: GrowthVariant
    days: int
    contributions_rows: int
    clean_old_data_deleted_rows: int
    file_bytes: int
    freelist_bytes: int
    after_clean_old_data_file_bytes: int
    after_clean_old_data_freelist_bytes: int
    after_perform_maintenance_file_bytes: int
    after_perform_maintenance_freelist_bytes: int
    perform_maintenance_s: float  # on this machine (a RAM disk when there is one)


@dataclass(frozen=True)
class BatchingCheck:
    """The same days with a commit per statement (as the app) and one per day (as here)."""

    variant: GrowthVariant
    days: int
    per_statement: FileStats
    per_day: FileStats
    differing_pages: int  # pages whose bytes differ, page 1 (header) included
    per_statement_s: float
    per_day_s: float


@dataclass(frozen=True)
class OutageVariant:
    """A schema, the maintenance and the queue's cap (None: unbounded)."""

    schema_version: int
    maintenance: str
    queue_cap_entries: int | None = CORE_POLICY.max_entries

    def __post_init__(self) -> None:
        GrowthVariant(self.schema_version, self.maintenance)  # validates both
        if self.queue_cap_entries is not None and self.queue_cap_entries < 1:
            raise UsageError(f"queue_cap_entries must be >= 1 or None, got "
                             f"{self.queue_cap_entries}")

    @property
    def name(self) -> str:
        cap = "unbounded" if self.queue_cap_entries is None else f"cap {self.queue_cap_entries}"
        return f"v{self.schema_version} {self.maintenance} {cap}"

    @property
    def policy(self) -> QueuePolicy:
        cap = self.queue_cap_entries
        return QueuePolicy(max_entries=2**62 if cap is None else cap)


@dataclass(frozen=True)
class OutagePoint:
    """A variant's file after `days_offline` days without network (every upload failed),
    just before the network comes back."""

    variant: OutageVariant
    days_offline: int
    uploads: int  # uploads attempted while offline
    upload_bytes: int  # their envelopes' bytes
    queue_rows: int  # still queued: what the retry worker can still deliver
    queue_payload_bytes: int
    evicted_by_cap: int  # the core dropped the oldest entry to make room
    deleted_by_maintenance: int  # perform_maintenance's "older than 7 days"
    deleted_by_maintenance_bytes: int
    lost_uploads: int  # never delivered: uploads - queue_rows
    lost_bytes: int
    file_bytes: int
    stats: FileStats


@dataclass(frozen=True)
class PhoneFileReport:
    """Everything `measure_phone_file` measured, with the inputs that determine it."""

    seed: int
    quick: bool
    sqlite_version: str
    dbstat_available: bool
    start_ms: int
    sessions_per_day: int
    generated_uploads_per_day: float  # uploads of the growth runs / days (288 less kills)
    envelope_bytes_mean: float  # of the outage's generated uploads
    growth: tuple[GrowthPoint, ...]
    catch_ups: tuple[CatchUp, ...]
    batching: tuple[BatchingCheck, ...]
    outages: tuple[OutagePoint, ...]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (dataclasses as dicts, tuples as lists)."""
        result: dict[str, Any] = orjson.loads(orjson.dumps(dataclasses.asdict(self)))
        return result


# -- measuring a file -----------------------------------------------------------------


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


def differing_pages(a: Path, b: Path, page_size: int) -> int:
    """Pages whose bytes differ between two files (a page only one has counts)."""
    one, two = a.read_bytes(), b.read_bytes()
    count = abs(len(one) - len(two)) // page_size
    for start in range(0, min(len(one), len(two)), page_size):
        count += one[start:start + page_size] != two[start:start + page_size]
    return count


# -- the phone: the core's operations on one file ---------------------------------------


@dataclass(frozen=True)
class PlannedUpload:
    """One 5-minute batch as the phone holds it: uploaded at `due_ms`."""

    due_ms: int
    batch_id: str
    timestamp_ms: int  # the window's start on the phone's clock
    samples: int
    geohash: str | None
    envelope: bytes  # the request body (b"" where only the local record matters)


# Inside the day's transaction the core's own transactions become a savepoint, which
# keeps their all-or-nothing meaning (SQLite refuses a BEGIN inside a transaction).
_NESTED = {"BEGIN IMMEDIATE": "SAVEPOINT core_op", "COMMIT": "RELEASE core_op",
           "ROLLBACK": "ROLLBACK TO core_op"}


class _Network:
    """The backend as the phone sees it. Online: an upload is stored (201) and the daily
    pot follows `backend.pot`'s rules (each batch is recorded once: the phone sends each
    once here); offline: no answer."""

    def __init__(self, user_id: str, start_ms: int) -> None:
        self.online = True
        self.pot = pot_rules.fresh(user_id, start_ms, pot_rules.PotRules())

    def answer(self, request: Http, now_ms: int) -> HttpResponse:
        if not self.online:
            raise NetworkError("offline")
        if request.path == "/upload":
            return HttpResponse(201, b'{"status":"stored"}')
        if request.path == "/daily-pot/upload":
            self.pot = pot_rules.record_upload(self.pot, now_ms)
        elif request.path == "/daily-pot":
            self.pot = pot_rules.current(self.pot, now_ms)
        else:
            return HttpResponse(404, b'{"error":"not_found"}')
        return HttpResponse(200, orjson.dumps(pot_rules.as_json(self.pot)))


class PhoneFile:
    """One simulated phone's SQLite file and the app core's operations on it.

    Created as the app creates it (`app.open_connection` with the Flutter side's journal
    mode, then `schema.open_schema`), after `PRAGMA auto_vacuum` on the empty file as
    the platform's SQLite build would set it."""

    def __init__(self, path: Path, profile: FixProfile, *, auto_vacuum: str = "NONE",
                 seed: int = DEFAULT_SEED, policy: QueuePolicy = CORE_POLICY,
                 start_ms: int = START_MS) -> None:
        if auto_vacuum not in AUTO_VACUUM:
            raise UsageError(f"auto_vacuum must be one of {AUTO_VACUUM}, got {auto_vacuum!r}")
        if path.exists():
            raise UsageError(f"{path} exists: a phone file starts empty, give a new path")
        self.path, self.profile, self.policy, self.seed = path, profile, policy, seed
        user = ids.user_ids(seed, np.array([PHONE], dtype=np.int64))[0].decode()
        device = ids.device_ids(seed, np.array([PHONE], dtype=np.int64))[0].decode()
        self.user_id, self.creds = user, Credentials(device, "phone-file-secret")
        self.network = _Network(user, start_ms)
        self.conn = connect(path)
        self.conn.execute(f"PRAGMA auto_vacuum = {auto_vacuum}")
        run_sql(self.conn, app.open_connection(profile.flutter_journal_mode, 0))
        run_sql(self.conn, schema.open_schema(profile.schema_version))
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self.in_day = False
        self.evicted: set[str] = set()  # queued uploads the core dropped for room
        self.expired: set[str] = set()  # queued uploads perform_maintenance deleted
        self.expired_payload_bytes = 0  # their payloads' bytes, measured on the file
        self.saved = 0
        self.probes = 0

    def close(self) -> None:
        self.conn.close()

    def run(self, operation: NetOperation[Any], now_ms: int) -> Any:
        """Run a core operation to its end: SQL on the file, HTTP to `network`."""
        cursor: Cursor[Sql | Http] = Cursor(operation)
        while cursor.pending is not None:
            effect = cursor.pending
            if isinstance(effect, Http):
                try:
                    response = self.network.answer(effect, now_ms)
                except NetworkError as exc:
                    cursor.throw(exc)
                    continue
                cursor.send(response)
            elif self.in_day and effect.statement in _NESTED:
                execute(self.conn, cursor, Sql(_NESTED[effect.statement]))
                if effect.statement == "ROLLBACK":
                    self.conn.execute("RELEASE core_op")
            else:
                execute(self.conn, cursor, effect)
        return cursor.outcome()

    def begin_day(self) -> None:
        self.conn.execute("BEGIN")
        self.in_day = True

    def end_day(self) -> None:
        self.conn.execute("COMMIT")
        self.in_day = False

    def queue(self) -> tuple[int, int]:
        """Rows in upload_queue and their payloads' bytes."""
        rows, size = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(payload AS BLOB))), 0) "
            "FROM upload_queue").fetchone()
        return int(rows), int(size)

    def app_start(self, now_ms: int, maintenance: str) -> None:
        """The day's first start, in the fleet runner's order (`_app_start`): the
        database work at start (the variant's maintenance), the tracking service closes
        the session left active and starts one, DailyPotService reconciles, and the retry
        worker runs for what is queued. Outside the day's transaction (VACUUM must be)."""
        assert not self.in_day, "app_start runs between days"
        before = self.queue()
        deleted: list[str] | None = None
        if maintenance == "clean_old_data":
            self.run(app.clean_old_data(now_ms), now_ms)
        else:  # app.app_start runs perform_maintenance iff the profile says so
            wanted = maintenance == "perform_maintenance"
            deleted = self.run(app.app_start(now_ms, replace(self.profile,
                                                             auto_maintenance=wanted)), now_ms)
            assert (deleted is not None) is wanted
        after = self.queue()
        assert before[0] - after[0] == len(deleted or ()), "queue rows went unreported"
        self.expired.update(deleted or ())
        self.expired_payload_bytes += before[1] - after[1]
        self.run(app.stop_tracking_session(now_ms, self.profile, "app_restart", self.user_id),
                 now_ms)
        self.run(app.start_tracking_session(now_ms, self.profile, self.user_id), now_ms)
        self.run(potsync.reconcile(self.user_id, self.creds, now_ms, self.profile), now_ms)
        if after[0]:
            self._probe(now_ms)

    def session_boundary(self, now_ms: int) -> None:
        """Tracking stops and starts again within the day (the fleet runner's
        `session_stop` / `session_start` events: idle, then moving again)."""
        self.run(app.stop_tracking_session(now_ms, self.profile, "idle", self.user_id), now_ms)
        self.run(app.start_tracking_session(now_ms, self.profile, self.user_id), now_ms)

    def _probe(self, now_ms: int) -> None:
        """The retry worker's run at app start: online it would deliver, offline it
        records the failed attempt on the oldest due entry (its retry columns only)."""
        self.probes += 1
        jitters = [float(uniform_hash(self.seed, Stream.RUNTIME, np.int64(PHONE),
                                      np.int64(1_000_000 + 8 * self.probes + i)))
                   for i in range(4)]

        def contribution_of(batch_id: str, envelope: bytes) -> app.Contribution:
            raise AssertionError("the growth and outage runs never deliver from the queue")

        self.run(drain_queue(self.creds, now_ms, jitters, self.profile, contribution_of,
                             self.policy), now_ms)

    def jitters(self, uploads: Sequence[PlannedUpload]) -> list[float]:
        """The retry jitter of each upload, keyed as the fleet runner keys it."""
        keys = np.array([3_000_000 + zlib.crc32(u.batch_id.encode()) for u in uploads],
                        dtype=np.int64)
        return [float(x) for x in np.atleast_1d(
            uniform_hash(self.seed, Stream.RUNTIME, np.int64(PHONE), keys))]

    def upload(self, batch: PlannedUpload, jitter: float) -> str:
        """The Kotlin upload flow, then DailyPotService when it was delivered (as
        `fleet.runner` does it). Returns the core's outcome ("saved", "queued", ...)."""
        now = batch.due_ms
        # the local record exactly as fleet.runner._load builds a full phone's
        c = app.Contribution(batch.batch_id, batch.timestamp_ms, batch.samples, batch.geohash,
                             True, batch.timestamp_ms + WINDOW_MS, self.user_id)
        outcome = self.run(upload_batch(batch.envelope, c, self.creds, now, jitter,
                                        self.profile, self.policy), now)
        if outcome.evicted is not None:
            self.evicted.add(outcome.evicted)
        if outcome.result == "saved":
            self.saved += 1
            self.run(potsync.after_upload(self.user_id, batch.batch_id, self.creds, now,
                                          self.profile), now)
        return str(outcome.result)


# -- a day of use ---------------------------------------------------------------------


def session_times(seed: int, day: int, start_ms: int = START_MS,
                  sessions_per_day: int = SESSIONS_PER_DAY) -> list[int]:
    """The instants of day `day` at which a tracking session ends and the next begins
    (the first begins at the app's start at midnight): `sessions_per_day - 1` seeded
    instants."""
    keys = np.arange(sessions_per_day - 1, dtype=np.int64) + 7_000_000 + 16 * day
    u = uniform_hash(seed, Stream.RUNTIME, np.int64(PHONE), keys)
    return sorted(start_ms + day * DAY_MS + int(x * DAY_MS) for x in np.atleast_1d(u))


def live_day(phone: PhoneFile, day: int, uploads: Sequence[PlannedUpload], maintenance: str,
             *, batched: bool = True, start_ms: int = START_MS,
             sessions_per_day: int = SESSIONS_PER_DAY) -> None:
    """Day `day` on `phone`: the app start (with `maintenance`), then the day's uploads
    and session boundaries in time order; in one transaction when `batched`."""
    phone.app_start(start_ms + day * DAY_MS, maintenance)
    boundaries = session_times(phone.seed, day, start_ms, sessions_per_day)
    if batched:
        phone.begin_day()
    r = 0
    for batch, jitter in zip(uploads, phone.jitters(uploads), strict=True):
        while r < len(boundaries) and boundaries[r] <= batch.due_ms:
            phone.session_boundary(boundaries[r])
            r += 1
        phone.upload(batch, jitter)
    for at in boundaries[r:]:
        phone.session_boundary(at)
    if batched:
        phone.end_day()


# -- the generated uploads ------------------------------------------------------------


@dataclass(frozen=True)
class _Sample:
    """Generated batches of phone `PHONE`, per day of upload."""

    due_ms: list[np.ndarray]
    timestamp_ms: list[np.ndarray]
    seq: list[np.ndarray]
    samples: list[np.ndarray]
    geohash: list[list[str]]
    envelopes: list[list[bytes]]


def _generate(seed: int, days: int, start_ms: int, envelopes: bool) -> _Sample:
    """The phone's batches whose upload is due in [start, start + days): generated from
    an hour earlier, so the first day has every window."""
    config = FleetConfig(seed=seed, phones=PHONE + 1, start_ms=start_ms - 3_600_000,
                         hours=24 * days + 1)
    parts: list[tuple[np.ndarray, ...]] = []
    lines: list[bytes] = []
    for block in FleetGenerator(config).iter_blocks():
        keep = block.phone == PHONE
        parts.append((block.order_ms[keep] + WINDOW_MS, block.period_start_ms[keep],
                      block.seq[keep], block.counts[keep], block.geohash[keep]))
        if envelopes:
            lines += [bytes(line).rstrip(b"\n") for line, k in
                      zip(encode_lines(block), keep.tolist(), strict=True) if k]
    due, stamp, seq, counts, geo = (np.concatenate(column) for column in zip(*parts,
                                                                            strict=True))
    day = (due - start_ms) // DAY_MS
    out = _Sample([], [], [], [], [], [])
    for d in range(days):
        pick = np.flatnonzero(day == d)
        out.due_ms.append(due[pick])
        out.timestamp_ms.append(stamp[pick])
        out.seq.append(seq[pick])
        out.samples.append(counts[pick])
        out.geohash.append([g.decode() for g in geo[pick]])
        out.envelopes.append([lines[i] for i in pick.tolist()] if envelopes else [])
    return out


def _day_uploads(sample: _Sample, seed: int, day: int) -> list[PlannedUpload]:
    """Day `day`'s uploads: the sample's day `day mod len(sample)`, moved to day `day`
    (times shifted by whole days, sequence numbers by 288 a day, ids re-derived)."""
    s = day % len(sample.due_ms)
    shift = day - s
    seqs = sample.seq[s] + shift * UPLOADS_PER_DAY
    batch_ids = ids.batch_ids(seed, np.full(seqs.shape, PHONE, dtype=np.int64), seqs)
    # an acknowledged upload leaves nothing of its envelope on the phone: no body needed
    return [PlannedUpload(int(due) + shift * DAY_MS, batch_id.decode(),
                          int(stamp) + shift * DAY_MS, int(n), geohash, b"")
            for due, batch_id, stamp, n, geohash in zip(
                sample.due_ms[s].tolist(), batch_ids, sample.timestamp_ms[s].tolist(),
                sample.samples[s].tolist(), sample.geohash[s], strict=True)]


# -- growth ---------------------------------------------------------------------------


def default_growth_variants() -> tuple[GrowthVariant, ...]:
    """Both schemas under the three maintenance policies on files as SQLite creates them
    by default (auto_vacuum NONE: the review's assumption), and v2 as shipped on a file as
    Android creates it (FULL), whose catch-up shows what Android gives back."""
    main = tuple(GrowthVariant(v, m) for v in (schema.V2, schema.V3) for m in MAINTENANCE)
    return (*main, GrowthVariant(schema.V2, "none", "FULL"))


def _growth_point(phone: PhoneFile, variant: GrowthVariant, days: int, uploads: int
                  ) -> GrowthPoint:
    stats = file_stats(phone.conn)
    rows = stats.rows["contributions"]
    table = stats.table_bytes("contributions")
    return GrowthPoint(variant, phone.profile.name, days, uploads, phone.saved, rows,
                       stats.rows["tracking_sessions"], stats.file_bytes, stats.freelist_bytes,
                       table, table / rows if rows else 0.0,
                       stats.file_bytes / rows if rows else 0.0, stats)


@contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory, on a RAM file system when there is one: every commit
    fsyncs, and the host disk's fsync time models nothing about a phone's flash."""
    shm = Path("/dev/shm")
    parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="ggsim-phone-file-", dir=parent) as directory:
        yield Path(directory)


def _check_days(days: Sequence[int], what: str) -> tuple[int, ...]:
    clean = tuple(sorted(set(days)))
    if not clean or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in clean):
        raise UsageError(f"{what} must be positive whole numbers of days, e.g. (7, 30), got "
                         f"{tuple(days)!r}")
    return clean


def measure_growth(directory: Path, *, days: Sequence[int] = FULL_DAYS,
                   variants: Sequence[GrowthVariant] | None = None, seed: int = DEFAULT_SEED,
                   sample_days: int = SAMPLE_DAYS, sessions_per_day: int = SESSIONS_PER_DAY,
                   progress: Progress | None = None
                   ) -> tuple[list[GrowthPoint], list[CatchUp]]:
    """Each variant's file after each of `days` days of normal use (files in
    `directory`, one per variant), points in variant order, then days; and for each
    variant without maintenance, the catch-up on its last day's file."""
    points = _check_days(days, "days")
    check_seed(seed)
    say = progress or (lambda _: None)
    sample = _generate(seed, min(sample_days, points[-1]), START_MS, envelopes=False)
    result: list[GrowthPoint] = []
    catch_ups: list[CatchUp] = []
    for k, variant in enumerate(variants or default_growth_variants()):
        say(f"phone file: {variant.name}, {points[-1]} days")
        phone = PhoneFile(directory / f"growth-{k}.db", variant.profile,
                          auto_vacuum=variant.auto_vacuum, seed=seed)
        uploads = 0
        try:
            for day in range(points[-1]):
                batches = _day_uploads(sample, seed, day)
                live_day(phone, day, batches, variant.maintenance,
                         sessions_per_day=sessions_per_day)
                uploads += len(batches)
                if day + 1 in points:
                    result.append(_growth_point(phone, variant, day + 1, uploads))
        finally:
            phone.close()
        if variant.maintenance == "none":
            catch_ups.append(catch_up(phone.path, variant, points[-1]))
        phone.path.unlink()
    return result, catch_ups


def catch_up(path: Path, variant: GrowthVariant, days: int,
             start_ms: int = START_MS) -> CatchUp:
    """The maintenance arrives on a file that never had any (`path`, after `days` days):
    `app.clean_old_data` once, then `app.perform_maintenance` once, on a copy, at the
    end of the last day."""
    copy = path.with_name(f"{path.stem}-catch-up{path.suffix}")
    shutil.copyfile(path, copy)
    conn = connect(copy)
    try:
        now = start_ms + days * DAY_MS
        before = file_stats(conn)
        deleted = run_sql(conn, app.clean_old_data(now))
        cleaned = file_stats(conn)
        began = time.perf_counter()
        run_sql(conn, app.perform_maintenance(now))
        seconds = time.perf_counter() - began
        maintained = file_stats(conn)
    finally:
        conn.close()
        copy.unlink()
    return CatchUp(variant, days, before.rows["contributions"], deleted, before.file_bytes,
                   before.freelist_bytes, cleaned.file_bytes, cleaned.freelist_bytes,
                   maintained.file_bytes, maintained.freelist_bytes, seconds)


def check_batching(directory: Path, variant: GrowthVariant, *, days: int,
                   seed: int = DEFAULT_SEED) -> BatchingCheck:
    """`days` days of `variant` twice: a commit per statement, then one per day."""
    sample = _generate(seed, days, START_MS, envelopes=False)
    stats, paths, seconds = [], [], []
    for batched in (False, True):
        path = directory / f"batching-{int(batched)}.db"
        began = time.perf_counter()
        phone = PhoneFile(path, variant.profile, auto_vacuum=variant.auto_vacuum, seed=seed)
        try:
            for day in range(days):
                live_day(phone, day, _day_uploads(sample, seed, day), variant.maintenance,
                         batched=batched)
            stats.append(file_stats(phone.conn))
        finally:
            phone.close()
        seconds.append(time.perf_counter() - began)
        paths.append(path)
    diff = differing_pages(paths[0], paths[1], stats[0].page_size_bytes)
    for path in paths:
        path.unlink()
    return BatchingCheck(variant, days, stats[0], stats[1], diff, seconds[0], seconds[1])


# -- outages --------------------------------------------------------------------------


def default_outage_variants() -> tuple[OutageVariant, ...]:
    """The core's cap with and without §5.5's maintenance on both schemas, and the
    queue without a cap (what review C2 fears) with and without it."""
    capped = tuple(OutageVariant(v, m) for v in (schema.V2, schema.V3)
                   for m in ("none", "perform_maintenance"))
    return (*capped, *(OutageVariant(schema.V2, m, UNBOUNDED)
                       for m in ("none", "perform_maintenance")))


def simulate_outage(path: Path, variant: OutageVariant, uploads: Sequence[PlannedUpload], *,
                    days: Sequence[int], seed: int = DEFAULT_SEED, start_ms: int = START_MS,
                    sessions_per_day: int = SESSIONS_PER_DAY) -> list[OutagePoint]:
    """A phone offline from `start_ms` on, uploading `uploads` (in time order) and
    starting the app each day; a point after each of `days` days, just before the network
    returns (so the day's app start, and its maintenance, has not run)."""
    points = _check_days(days, "outage days")
    phone = PhoneFile(path, GrowthVariant(variant.schema_version, variant.maintenance).profile,
                      seed=seed, policy=variant.policy, start_ms=start_ms)
    phone.network.online = False
    sizes = {u.batch_id: len(u.envelope) for u in uploads}
    result = []
    try:
        for day in range(points[-1]):
            lo, hi = start_ms + day * DAY_MS, start_ms + (day + 1) * DAY_MS
            todays = [u for u in uploads if lo <= u.due_ms < hi]
            live_day(phone, day, todays, variant.maintenance, start_ms=start_ms,
                     sessions_per_day=sessions_per_day)
            if day + 1 in points:
                result.append(_outage_point(phone, variant, day + 1, hi, sizes, uploads))
    finally:
        phone.close()
    return result


def _outage_point(phone: PhoneFile, variant: OutageVariant, days: int, end_ms: int,
                  sizes: dict[str, int], uploads: Sequence[PlannedUpload]) -> OutagePoint:
    sent = [u.batch_id for u in uploads if u.due_ms < end_ms]
    queued = {str(r[0]) for r in phone.conn.execute("SELECT id FROM upload_queue")}
    lost = set(sent) - queued
    # every upload left a trace: queued, or dropped by the cap or the maintenance, which
    # the core reported (`UploadOutcome.evicted`, `app.app_start`'s ids)
    assert lost == phone.evicted | phone.expired and not phone.evicted & phone.expired
    rows, size = phone.queue()
    stats = file_stats(phone.conn)
    return OutagePoint(variant, days, len(sent), sum(sizes[b] for b in sent), rows, size,
                       len(phone.evicted), len(phone.expired), phone.expired_payload_bytes,
                       len(lost), sum(sizes[b] for b in lost), stats.file_bytes, stats)


def outage_uploads(seed: int, days: int, start_ms: int = START_MS) -> list[PlannedUpload]:
    """The generator's batches of `days` days from `start_ms`, with their envelopes."""
    sample = _generate(seed, days, start_ms, envelopes=True)
    result = []
    for d in range(days):
        for i, due in enumerate(sample.due_ms[d].tolist()):
            result.append(PlannedUpload(
                int(due), orjson.loads(sample.envelopes[d][i])["batch_id"],
                int(sample.timestamp_ms[d][i]), int(sample.samples[d][i]),
                sample.geohash[d][i], sample.envelopes[d][i]))
    return result


def measure_outages(directory: Path, *, days: Sequence[int] = FULL_OUTAGE_DAYS,
                    variants: Sequence[OutageVariant] | None = None, seed: int = DEFAULT_SEED,
                    progress: Progress | None = None) -> tuple[list[OutagePoint], float]:
    """Each variant offline for the longest of `days`, a point at each; also returns the
    mean envelope size of the generated uploads."""
    points = _check_days(days, "outage days")
    say = progress or (lambda _: None)
    say(f"phone file: generating {points[-1]} days of uploads for the outage")
    uploads = outage_uploads(seed, points[-1])
    result: list[OutagePoint] = []
    for k, variant in enumerate(variants or default_outage_variants()):
        say(f"phone file: {variant.name}, {points[-1]} days offline")
        path = directory / f"outage-{k}.db"
        result += simulate_outage(path, variant, uploads, days=points, seed=seed)
        path.unlink()
    mean = sum(len(u.envelope) for u in uploads) / len(uploads) if uploads else 0.0
    return result, mean


# -- the whole measurement ------------------------------------------------------------


def measure_phone_file(*, days: Sequence[int] | None = None,
                       outage_days: Sequence[int] | None = None, seed: int = DEFAULT_SEED,
                       quick: bool = False, progress: Progress | None = None
                       ) -> PhoneFileReport:
    """The phone file's growth (`days`, default 7, 30, 90, 365; quick: 7, 30) for every
    `default_growth_variants()`, the batching check, and outages (`outage_days`, default
    1, 3, 7, 14, 30; quick: 1, 9) for every `default_outage_variants()`."""
    seed = check_seed(seed)
    if days is None:
        days = QUICK_DAYS if quick else FULL_DAYS
    if outage_days is None:
        outage_days = QUICK_OUTAGE_DAYS if quick else FULL_OUTAGE_DAYS
    growth_days, offline = _check_days(days, "days"), _check_days(outage_days, "outage_days")
    say = progress or (lambda _: None)
    seconds: dict[str, float] = {}
    with _workdir() as directory:
        began = time.perf_counter()
        growth, catch_ups = measure_growth(directory, days=growth_days, seed=seed,
                                           progress=say)
        seconds["growth"] = time.perf_counter() - began
        began = time.perf_counter()
        say("phone file: one commit per statement against one per day")
        batching = tuple(check_batching(directory, GrowthVariant(v, "none"),
                                        days=1 if quick else 2, seed=seed)
                         for v in (schema.V2, schema.V3))
        seconds["batching"] = time.perf_counter() - began
        began = time.perf_counter()
        outages, envelope_mean = measure_outages(directory, days=offline, seed=seed,
                                                 progress=say)
        seconds["outages"] = time.perf_counter() - began
    last = growth[-1]
    return PhoneFileReport(seed, quick, sqlite3.sqlite_version, last.stats.dbstat_available,
                           START_MS, SESSIONS_PER_DAY, last.uploads / last.days, envelope_mean,
                           tuple(growth), tuple(catch_ups), batching, tuple(outages), seconds)
