"""One run of the aggregation job, timed at fleet sizes: each fleet's uploads of the last
minute (new to the job) and of the minutes before it, loaded by COPY as the API stores
them, then `backend.jobs.aggregate` called directly, a few times per table.

The job's statements join the touched cells to `sensor_batches` on the geohash inside
the JSON, which no index or partition bound serves, so a run reads the whole table: its
cost follows the table's rows, not the minute's. Hence a deeper table for the smallest
fleet (the loaded span repeated back in time), and a projection (`job_fit`) to a table
holding the retention job's 30 days.

Invariants:
- Bounded: a fixed number of fleet sizes, loads and runs.
- Clean: the timing works in a scratch database on the server the URL names (dropped
  afterwards), and closes its connection however it ends.
- Counted: a row's `table_rows` and `new_rows` are counted after loading.
- Deterministic loads: payloads, seqs and users come from the seeded generator; only
  the batch ids (fresh uuids) and the instants (relative to the load's time) vary.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from simulator.backend import jobs
from simulator.backend.store import device_hash, instant
from simulator.capacity.bulk_load import connect, ensure_months
from simulator.capacity.envelopes import Envelope, generate_envelopes
from simulator.capacity.scratch import scratch_database
from simulator.capacity.throughput.job_fit import fit_job_times
from simulator.capacity.throughput.results import JobTimingResult, JobTimingRow
from simulator.capacity.throughput.setting import (
    MINUTE_S,
    SAMPLE_START,
    Progress,
    say_to,
)
from simulator.drivers.network import run_loop
from simulator.errors import UsageError
from simulator.instants import WINDOW_MS, parse_instant


@dataclass(frozen=True)
class _JobPlan:
    users: tuple[int, ...]
    behind_min: float  # uploads loaded before the measured minute (arrival time)
    runs: int
    pool_phones: int  # generated phones; users beyond them reuse their payloads
    deep_users: int  # one more point: this many users ...
    deep_copies: int  # ... with the loaded span repeated back in time this many times


_QUICK_JOB = _JobPlan((1_000, 10_000), 5.0, 3, 1_000, 1_000, 40)
_FULL_JOB = _JobPlan((1_000, 10_000, 100_000), 60.0, 5, 2_000, 1_000, 24)


def measure_aggregation_job(database_url: str, *, quick: bool,
                            progress: Progress | None = None,
                            users: Sequence[int] | None = None, runs: int | None = None,
                            behind_min: float | None = None) -> JobTimingResult:
    """Time one run of the aggregation job (`recommended`) on a scratch database holding,
    per fleet size, its uploads of the last minute (new to the job) and of `behind_min`
    minutes before it, loaded by COPY as the API stores them; plus one deeper table (the
    loaded span repeated back in time) for the smallest fleet, since the job's statements
    read the whole table."""
    base = _QUICK_JOB if quick else _FULL_JOB
    plan = _JobPlan(tuple(users or base.users), behind_min if behind_min is not None
                    else base.behind_min, runs or base.runs, base.pool_phones,
                    min(users or base.users), base.deep_copies)
    if not plan.users or min(plan.users) < 1 or plan.runs < 1 or plan.behind_min < 0:
        raise UsageError("the job timing needs positive user counts and runs, and "
                         "behind_min >= 0")
    say = say_to(progress)
    began = time.monotonic()
    until_ms = parse_instant(SAMPLE_START) + 2 * 3_600_000
    pool = _arrivals(plan, until_ms)
    with scratch_database(database_url, "jobtime") as url:
        rows = run_loop(_time_job(url, plan, pool, until_ms, say))
    return JobTimingResult(tuple(rows), fit_job_times(rows, plan.behind_min), plan.behind_min,
                           time.monotonic() - began)


def _arrivals(plan: _JobPlan, until_ms: int) -> list[Envelope]:
    """The pool's uploads that arrive (one window after their start) in the loaded span."""
    since_ms = until_ms - _span_ms(plan)
    first_hour = (since_ms - WINDOW_MS - 60_000) // 3_600_000 * 3_600_000
    hours = math.ceil((until_ms - first_hour) / 3_600_000)
    fleet = generate_envelopes(min(plan.pool_phones, max(plan.users)), hours, first_hour)
    return [e for e in fleet if since_ms <= e.order_ms + WINDOW_MS < until_ms]


def _span_ms(plan: _JobPlan) -> int:
    return round((plan.behind_min + 1) * 60_000)


async def _time_job(url: str, plan: _JobPlan, pool: Sequence[Envelope], until_ms: int,
                    say: Progress) -> list[JobTimingRow]:
    conn = await connect(url, "recommended")
    try:
        span = _span_ms(plan)
        await ensure_months(conn, until_ms - plan.deep_copies * span - 86_400_000, until_ms)
        found = [await _time_one(conn, users, 1, plan, pool, until_ms, say)
                 for users in sorted(plan.users)]
        if plan.deep_copies > 1:
            found.append(await _time_one(conn, plan.deep_users, plan.deep_copies, plan, pool,
                                         until_ms, say))
        return found
    finally:
        await conn.close()


async def _time_one(conn: Any, users: int, copies: int, plan: _JobPlan,
                    pool: Sequence[Envelope], until_ms: int, say: Progress) -> JobTimingRow:
    """Load `users` users' uploads (`copies` spans back in time) into empty tables, then
    time `plan.runs` runs of the job, each with the watermark set back a minute (the
    runs after the first update the cells the first inserted, as a steady job does)."""
    await conn.execute("TRUNCATE sensor_batches, sensor_aggregates_5m, "
                       "sensor_aggregates_daily, job_state")
    loaded_at = await conn.fetchval("SELECT clock_timestamp()")
    watermark = loaded_at - timedelta(seconds=MINUTE_S)
    behind = (copies * (plan.behind_min + 1)) - 1
    say(f"job: loading {users:,} users' uploads ({behind:g} minutes behind the minute)")
    await conn.copy_records_to_table(
        "sensor_batches", columns=("batch_id", "seq", "device_hash", "user_id",
                                   "timestamp_utc", "batch_json", "created_at"),
        records=_job_records(users, pool, until_ms, loaded_at, copies, _span_ms(plan)))
    await conn.execute("VACUUM (ANALYZE) sensor_batches")
    counts = await conn.fetchrow("SELECT count(*) AS total, count(*) FILTER (WHERE "
                                 "created_at > $1) AS new FROM sensor_batches", watermark)
    times, last = [], None
    for _ in range(plan.runs):
        await conn.execute("INSERT INTO job_state (job, watermark) VALUES ('aggregate', $1) "
                           "ON CONFLICT (job) DO UPDATE SET watermark = $1", watermark)
        started = time.perf_counter()
        last = await jobs.aggregate(conn, "recommended", until_ms, lag_s=0.0)
        times.append(time.perf_counter() - started)
    assert last is not None
    say(f"job: {users:,} users, {counts['new']:,} new rows of {counts['total']:,}: "
        f"{statistics.median(times):.3f} s a run")
    return JobTimingRow(users, behind, int(counts["new"]), int(counts["total"]),
                        tuple(times), last.cells_5m, last.cells_daily)


def _job_records(users: int, pool: Sequence[Envelope], until_ms: int, loaded_at: datetime,
                 copies: int, span_ms: int) -> Iterator[tuple[Any, ...]]:
    """sensor_batches rows of `users` users: user u carries pool phone (u mod pool)'s
    uploads, each arriving (`created_at`) as long before `loaded_at` as it arrived
    before `until_ms`; copy c of the span is moved c spans back in time (both instants)."""
    phones = 1 + max(e.phone for e in pool)
    hashes = [device_hash(f"job-dev-{u:06d}") for u in range(users)]
    for copy in range(copies):
        shift_ms = copy * span_ms
        for envelope in pool:
            created = loaded_at - timedelta(
                milliseconds=until_ms - envelope.order_ms - WINDOW_MS + shift_ms)
            stamp, payload = instant(envelope.timestamp_ms - shift_ms), envelope.payload
            for u in range(envelope.phone, users, phones):
                yield (uuid.uuid4(), envelope.seq, hashes[u], f"job-user-{u:06d}", stamp,
                       payload, created)
