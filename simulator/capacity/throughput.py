"""How much load the reference stack takes: an open-model upload ramp to its knee, the
5-minute-boundary burst (aligned against spread), one run of the aggregation job at fleet
sizes, and daily-pot reads at table sizes; on a real PostgreSQL, over real HTTP.

The load is OPEN: arrival times are fixed before a step starts (offered rate, or a burst's
offsets) and each request goes at its time whether or not earlier ones were answered, as
phones do; a slow server does not slow the arrivals down (no coordinated omission). The
backend runs as its own process (`python -m simulator.cli serve`, no periodic jobs), so
the generator does not share its interpreter lock. Bodies are the fleet generator's
envelopes; every device is registered with `POST /devices` and every request carries its
credentials. `_loadgen` holds the machinery; the SLO and the knee are `slo`'s.

The aggregation job is timed by calling `backend.jobs.aggregate` on tables loaded by COPY.
Its statements join the touched cells to `sensor_batches` on the geohash inside the JSON,
which no index or partition bound serves, so a run reads the whole table: its cost
follows the table's rows, not the minute's. Hence a deeper table for the smallest fleet,
and a projection to a table holding the retention job's 30 days.

Invariants:
- Bounded: every step, burst and loop stops by itself: a step sends at most
  `max_requests_per_step` within its time bound and waits at most one request timeout
  for answers; a ramp stops at the first broken step (then bisects twice), its last rate
  or its time budget; loads and runs are finite.
- Clean: each measurement works in a scratch database on the server the URL names
  (dropped afterwards) and stops its backend process, on errors and Ctrl-C too (and the
  process stops by itself when this one dies: its stdin is a pipe from here).
- Counted: a ramp's `rows_stored` is `count(*)` of `sensor_batches` after it, which
  must equal the 201s it received (`RampResult.all_stored`); a job timing's
  `table_rows` and `new_rows` are counted after loading.
- Timestamps: the backend's clock starts after every generated batch, so no batch is in
  its future; the uploads are the generator's batches of a weekday morning.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import numpy as np
from scipy.optimize import brentq

from simulator.backend import jobs, pot
from simulator.backend.app import BackendConfig
from simulator.backend.migrations import namespace
from simulator.backend.store import device_hash, instant, secret_hash
from simulator.capacity._loadgen import (
    SEED,
    BackendProcess,
    CpuMark,
    Device,
    Envelope,
    Exchange,
    HttpRequest,
    closed_loop,
    count_rows,
    generate_envelopes,
    new_session,
    register,
    send_at,
    step_result,
    uniform_offsets,
)
from simulator.capacity.bulk_load import ensure_months, prepare
from simulator.capacity.project import LinearFit, linear_fit
from simulator.capacity.scratch import scratch_database
from simulator.capacity.slo import (
    Knee,
    SloThresholds,
    StepResult,
    find_knee,
    judge,
)
from simulator.clock import BATCH_INTERVAL_S, DAY_S, MS_PER_S, parse_instant
from simulator.drivers.network import run_loop
from simulator.errors import UsageError
from simulator.phone.uploader import Credentials

__all__ = [
    "TEN_K_USERS_AVERAGE_PER_S",
    "BackendProcess",
    "BurstOutcome",
    "BurstResult",
    "Exchange",
    "HttpRequest",
    "JobFit",
    "JobTimingResult",
    "JobTimingRow",
    "PotReadResult",
    "PotReadRow",
    "RampResult",
    "average_uploads_per_s",
    "fit_job_times",
    "measure_aggregation_job",
    "measure_burst",
    "measure_pot_reads",
    "measure_ramp",
    "send_at",
    "step_result",
    "uniform_offsets",
]

Progress = Callable[[str], None]

SAMPLE_START = "2024-03-04T08:00:00Z"  # a Monday morning: commuters on the move
UPLOADS_PER_USER_DAY = DAY_S // BATCH_INTERVAL_S  # 288
WINDOW_MS = BATCH_INTERVAL_S * MS_PER_S
CLOCK_MARGIN_MS = 10 * 60_000  # the backend's clock starts this long after the last batch
PHONE_TIMEOUT_S = 10.0  # OkHttp's default connect/read/write timeouts


def average_uploads_per_s(users: int) -> float:
    """A fleet's average upload rate: users × 288 a day over 86,400 s."""
    return users * UPLOADS_PER_USER_DAY / DAY_S


TEN_K_USERS_AVERAGE_PER_S = average_uploads_per_s(10_000)  # 33.3


def _say(progress: Progress | None) -> Progress:
    return progress or (lambda _: None)


# -- the ramp ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RampPlan:
    rates_per_s: tuple[float, ...]
    step_s: float
    max_requests_per_step: int
    devices: int
    pool_phones: int  # generated phones whose payloads the uploads carry
    timeout_s: float
    budget_s: float  # no step starts after this long
    refine_steps: int = 2  # bisections between the last held and the first broken rate
    settle_s: float = 1.0  # pause before a bisection: an overloaded step's wake (vacuum)


_QUICK_RAMP = _RampPlan((10, 20, 33.3, 50, 100, 200, 400, 800, 1_600, 3_200), 2.0, 4_000,
                        300, 100, 5.0, 40.0)
_FULL_RAMP = _RampPlan((10, 20, 33.3, 50, 100, 200, 400, 800, 1_600, 3_200), 10.0, 20_000,
                       2_000, 400, PHONE_TIMEOUT_S, 300.0, settle_s=5.0)


@dataclass(frozen=True)
class RampResult:
    """An open-model upload ramp: each step's numbers, its knee, and the check that every
    acknowledged upload is stored."""

    steps: tuple[StepResult, ...]
    knee: Knee
    thresholds: SloThresholds
    devices: int
    warmup_uploads: int  # one per device before the steps (auth caches, connections)
    uploads_acknowledged: int  # 201s, warm-up included
    rows_stored: int  # count(*) of sensor_batches afterwards
    stopped_because: str
    seconds: float
    ten_k_users_average_per_s: float = TEN_K_USERS_AVERAGE_PER_S

    @property
    def all_stored(self) -> bool:
        return self.rows_stored == self.uploads_acknowledged

    @property
    def users_at_knee(self) -> float | None:
        """The fleet whose average upload rate is the highest rate that held."""
        held = self.knee.held_rate_per_s
        return None if held is None else held * DAY_S / UPLOADS_PER_USER_DAY


def measure_ramp(database_url: str, *, quick: bool, progress: Progress | None = None,
                 rates_per_s: Sequence[float] | None = None, step_s: float | None = None,
                 max_requests_per_step: int | None = None, devices: int | None = None,
                 thresholds: SloThresholds | None = None) -> RampResult:
    """Step the offered upload rate up (open model) against `ggsim serve` on a scratch
    database of the server `database_url` names, until a step breaks the SLO or the
    rates or the time budget run out. The keyword arguments override the quick/full
    plan."""
    base = _QUICK_RAMP if quick else _FULL_RAMP
    plan = _RampPlan(tuple(rates_per_s or base.rates_per_s), step_s or base.step_s,
                     max_requests_per_step or base.max_requests_per_step,
                     devices or base.devices, base.pool_phones, base.timeout_s, base.budget_s,
                     base.refine_steps, base.settle_s)
    if not plan.rates_per_s or min(plan.rates_per_s) <= 0 or plan.step_s <= 0:
        raise UsageError("a ramp needs positive rates and a positive step duration")
    limits = thresholds or SloThresholds()
    say = _say(progress)
    began = time.monotonic()
    pool = generate_envelopes(plan.pool_phones, 1.0, parse_instant(SAMPLE_START))
    clock_ms = max(e.timestamp_ms for e in pool) + CLOCK_MARGIN_MS
    with scratch_database(database_url, "ramp") as url, BackendProcess(url, clock_ms) as server:
        say(f"ramp: backend pid {server.pid} at {server.url}; {plan.devices} devices, "
            f"{len(pool):,} generated payloads")
        steps, warmup, stopped = run_loop(_ramp(server, pool, plan, limits, say, began))
        rows = run_loop(count_rows(url, "sensor_batches"))
    knee = find_knee(steps, limits)
    say(f"ramp: {knee.summary}")
    return RampResult(tuple(steps), knee, limits, plan.devices, warmup,
                      warmup + sum(s.ok for s in steps), rows, stopped,
                      time.monotonic() - began)


async def _ramp(server: BackendProcess, pool: Sequence[Envelope], plan: _RampPlan,
                limits: SloThresholds, say: Progress,
                began: float) -> tuple[list[StepResult], int, str]:
    async with new_session() as session:
        devices = await register(session, server.url, [
            (f"ramp-dev-{i:05d}", f"ramp-user-{i:05d}") for i in range(plan.devices)])
        warmup = _bodies(pool, devices, 0, len(devices))
        await closed_loop(session, server.url, warmup)
        run = _StepRunner(session, server, pool, devices, plan, limits, say, len(warmup))
        stopped = "the last rate held"
        held: float | None = None
        for rate in plan.rates_per_s:
            if time.monotonic() - began > plan.budget_s:
                return run.steps, len(warmup), f"time budget of {plan.budget_s:g} s spent"
            if not await run.step(rate):
                stopped = f"the SLO broke at {rate:,.1f}/s"
                break
            held = rate
        else:
            return run.steps, len(warmup), stopped
        if held is not None:
            await _refine(run, held, rate, plan, began)
        return run.steps, len(warmup), stopped


async def _refine(run: _StepRunner, held: float, broke: float, plan: _RampPlan,
                  began: float) -> None:
    """Bisect (geometrically) between the last rate that held and the first that broke,
    `plan.refine_steps` times at most, while they are more than 10 % apart."""
    for _ in range(plan.refine_steps):
        if broke / held < 1.1 or time.monotonic() - began > plan.budget_s:
            return
        middle = round(math.sqrt(held * broke), 1)
        await asyncio.sleep(plan.settle_s)
        if await run.step(middle):
            held = middle
        else:
            broke = middle


@dataclass
class _StepRunner:
    """Runs a ramp's steps on one session, each with fresh uploads."""

    session: aiohttp.ClientSession
    server: BackendProcess
    pool: Sequence[Envelope]
    devices: Sequence[Device]
    plan: _RampPlan
    limits: SloThresholds
    say: Progress
    used: int  # uploads built so far (the next one's index)
    steps: list[StepResult] = field(default_factory=list)

    async def step(self, rate: float) -> bool:
        """Offer `rate` for a step; whether it held."""
        count = max(1, min(self.plan.max_requests_per_step, round(rate * self.plan.step_s)))
        requests = _bodies(self.pool, self.devices, self.used, count)
        self.used += count
        before = CpuMark.now(self.server)
        exchanges = await send_at(self.session, self.server.url, requests,
                                  uniform_offsets(count, rate), timeout_s=self.plan.timeout_s)
        step = step_result(exchanges, rate, before.shares(CpuMark.now(self.server)))
        self.steps.append(step)
        verdict = judge(step, self.limits)
        self.say(f"ramp {rate:,.1f}/s: sent {step.achieved_send_rate_per_s:,.1f}/s, answered "
                 f"{step.completed_per_s:,.1f}/s, p99 {step.latency_ms_p99:,.1f} ms, errors "
                 f"{step.errors} ({'held' if verdict.held else '; '.join(verdict.reasons)})")
        return verdict.held


def _bodies(pool: Sequence[Envelope], devices: Sequence[Device], first: int,
            count: int) -> list[HttpRequest]:
    """Uploads `first`..`first + count` of a run: pool payloads in turn, devices in turn,
    each with a fresh batch id (so each is a new stored row)."""
    return [devices[k % len(devices)].upload(pool[k % len(pool)], str(uuid.uuid4()))
            for k in range(first, first + count)]


# -- the 5-minute-boundary burst ----------------------------------------------------------------


@dataclass(frozen=True)
class _BurstPlan:
    phones: int
    jittered_slice_s: float  # how much of the spread window is sent (same rate throughout)
    timeout_s: float


_QUICK_BURST = _BurstPlan(1_000, 10.0, PHONE_TIMEOUT_S)
_FULL_BURST = _BurstPlan(10_000, 60.0, PHONE_TIMEOUT_S)

JITTER_SOURCE = (
    "The app core adds no jitter to an upload's time (simulator/phone/uploader.py: the "
    "retry backoff is jittered, the first attempt is not); a phone uploads at the end of "
    "its own 5-minute window, whose phase is set when its app started "
    "(simulator/sensors/traits.py: phase_ms uniform over 0-300 s). The spread is that of "
    "the fleet generator's phases: about phones / 300 uploads a second.")


@dataclass(frozen=True)
class BurstOutcome:
    """One window's uploads sent on a schedule (`aligned`: all at once)."""

    label: str
    uploads: int  # sent
    schedule_span_s: float  # first to last scheduled send
    offered_rate_per_s: float | None  # None: all at once
    clear_s: float  # first send to last answer
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_max: float
    send_lag_ms_p99: float  # how late the generator got requests out
    ok: int
    client_errors_4xx: int
    errors_5xx: int
    errors_timeout: int
    errors_connection: int

    @property
    def errors(self) -> int:
        return self.errors_5xx + self.errors_timeout + self.errors_connection


@dataclass(frozen=True)
class BurstResult:
    """`phones` phones' uploads of one 5-minute window, aligned on its boundary against
    spread as the fleet spreads them. The spread one sends the phones whose upload falls
    in the first `jittered_slice_s` of the window, at their times: the rest of the window
    has the same rate, so the same latency, and would only make the run longer."""

    phones: int
    aligned: BurstOutcome
    jittered: BurstOutcome
    jittered_slice_s: float
    jitter_source: str
    timeout_s: float
    seconds: float


def measure_burst(database_url: str, *, quick: bool, progress: Progress | None = None,
                  phones: int | None = None,
                  jittered_slice_s: float | None = None) -> BurstResult:
    """Send one 5-minute window's uploads of `phones` phones at once (a thundering herd on
    the boundary), then the next window's as the fleet spreads them, against `ggsim
    serve` on a scratch database of the server `database_url` names."""
    base = _QUICK_BURST if quick else _FULL_BURST
    plan = _BurstPlan(phones or base.phones, jittered_slice_s or base.jittered_slice_s,
                      base.timeout_s)
    if plan.phones < 1 or not 0 < plan.jittered_slice_s <= BATCH_INTERVAL_S:
        raise UsageError("a burst needs at least one phone and a slice of 0-300 s")
    say = _say(progress)
    began = time.monotonic()
    start_ms = parse_instant(SAMPLE_START)
    say(f"burst: generating an hour of {plan.phones:,} phones")
    fleet = generate_envelopes(plan.phones, 1.0, start_ms)
    first = _window(fleet, start_ms + WINDOW_MS)
    second = _window(fleet, start_ms + 2 * WINDOW_MS)
    clock_ms = max(e.timestamp_ms for e in fleet) + CLOCK_MARGIN_MS
    with scratch_database(database_url, "burst") as url, BackendProcess(url, clock_ms) as server:
        aligned, jittered = run_loop(_bursts(server, fleet, first, second, plan, say))
    return BurstResult(plan.phones, aligned, jittered, plan.jittered_slice_s, JITTER_SOURCE,
                       plan.timeout_s, time.monotonic() - began)


def _window(fleet: Sequence[Envelope], window_start_ms: int) -> list[tuple[float, Envelope]]:
    """(offset s into the window, envelope) of the batches whose window starts in
    [window_start, + 5 min): each phone's upload is due that long after the boundary
    its window ends on."""
    return [((e.order_ms - window_start_ms) / MS_PER_S, e) for e in fleet
            if window_start_ms <= e.order_ms < window_start_ms + WINDOW_MS]


async def _bursts(server: BackendProcess, fleet: Sequence[Envelope],
                  first: Sequence[tuple[float, Envelope]],
                  second: Sequence[tuple[float, Envelope]], plan: _BurstPlan,
                  say: Progress) -> tuple[BurstOutcome, BurstOutcome]:
    owners = sorted({(e.device_id, e.user_id) for e in fleet})
    async with new_session() as session:
        say(f"burst: registering {len(owners):,} devices")
        devices = {d.creds.device_id: d for d in await register(session, server.url, owners)}
        # every device authenticated once, so neither burst pays the secret's first lookup
        await closed_loop(session, server.url, [
            HttpRequest("GET", "/daily-pot", None, d.creds.headers())
            for d in devices.values()])
        aligned = await _burst(session, server.url, devices, [(0.0, e) for _, e in first],
                               "aligned", None, plan.timeout_s)
        say(f"burst aligned: {aligned.uploads:,} at once, p99 {aligned.latency_ms_p99:,.0f} "
            f"ms, cleared in {aligned.clear_s:.1f} s, errors {aligned.errors}")
        spread = [(o, e) for o, e in second if o < plan.jittered_slice_s]
        jittered = await _burst(session, server.url, devices, spread, "jittered",
                                len(second) / BATCH_INTERVAL_S, plan.timeout_s)
        say(f"burst jittered: {jittered.uploads:,} over {jittered.schedule_span_s:.0f} s, "
            f"p99 {jittered.latency_ms_p99:,.0f} ms, errors {jittered.errors}")
    return aligned, jittered


async def _burst(session: aiohttp.ClientSession, base_url: str,
                 devices: dict[str, Device], schedule: Sequence[tuple[float, Envelope]],
                 label: str, rate_per_s: float | None, timeout_s: float) -> BurstOutcome:
    requests = [devices[e.device_id].upload(e, e.batch_id) for _, e in schedule]
    offsets = [o for o, _ in schedule]
    exchanges = await send_at(session, base_url, requests, offsets, timeout_s=timeout_s,
                              send_window_s=max(offsets, default=0.0) + timeout_s)
    step = step_result(exchanges, rate_per_s or 1.0)
    sent = [e for e in exchanges if e.sent_s is not None]
    return BurstOutcome(
        label, step.sent, max(offsets, default=0.0) - min(offsets, default=0.0), rate_per_s,
        max((e.done_s or 0.0 for e in sent), default=0.0)
        - min((e.sent_s or 0.0 for e in sent), default=0.0),
        step.latency_ms_p50, step.latency_ms_p95, step.latency_ms_p99, step.latency_ms_max,
        step.send_lag_ms_p99, step.ok, step.client_errors_4xx, step.errors_5xx,
        step.errors_timeout, step.errors_connection)


# -- one run of the aggregation job -------------------------------------------------------------


MINUTE_S = 60.0  # the job runs every minute (review §4.3)
RETENTION_DAYS = BackendConfig("").retention_days  # what the retention job keeps (30)


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


@dataclass(frozen=True)
class JobTimingRow:
    """One run of `jobs.aggregate` timed `len(run_s)` times on one table."""

    users: int
    behind_min: float  # minutes of uploads in the table before the new minute
    new_rows: int  # arrived in the last minute: about users × 288 / 1440
    table_rows: int  # count(*) of sensor_batches (new rows included)
    run_s: tuple[float, ...]
    cells_5m: int  # (window, geohash) cells one run recomputes
    cells_daily: int  # (day, geohash) cells

    @property
    def median_s(self) -> float:
        return statistics.median(self.run_s)

    @property
    def fits_minute(self) -> bool:
        return self.median_s < MINUTE_S


@dataclass(frozen=True)
class JobFit:
    """Seconds per run as a function of fleet size, and the fleet size at which a run
    takes a minute (95 % interval from the fitted mean's t-band; None: not reached within
    10^9 users on that side)."""

    model: str  # what was fitted against what
    table: str  # what the table holds at a fleet size
    users_at_minute: float | None
    users_at_minute_low: float | None
    users_at_minute_high: float | None
    extrapolated: bool  # beyond the largest table measured
    r_squared: float
    slope: float  # in the model's units (s per user, exponent, s per row)


@dataclass(frozen=True)
class JobTimingResult:
    """The aggregation job's run time per fleet size and where it outgrows its minute:
    `fits[0:2]` against users with `behind_min` of uploads in the table (a line, a power
    law), `fits[2]` against table rows, projected to a table that holds
    `retention_days` of the fleet's uploads (the steady state with the retention job)."""

    rows: tuple[JobTimingRow, ...]
    fits: tuple[JobFit, ...]
    behind_min: float
    seconds: float
    retention_days: int = RETENTION_DAYS
    minute_s: float = MINUTE_S


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
    say = _say(progress)
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
    conn = await asyncpg.connect(url, timeout=30)
    try:
        await prepare(conn, "recommended")
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


def fit_job_times(rows: Sequence[JobTimingRow], behind_min: float) -> tuple[JobFit, ...]:
    """Against users at the main depth: a line and a power law (when two fleet sizes were
    measured); against table rows (every point): a line, projected to the retained table."""
    main = [r for r in rows if r.behind_min == behind_min]
    found: list[JobFit] = []
    fresh = f"the minute and {behind_min:g} minutes of uploads before it"
    if len({r.users for r in main}) >= 2:
        users = [float(r.users) for r in main for _ in r.run_s]
        secs = [max(s, 1e-6) for r in main for s in r.run_s]
        largest = max(users)
        found.append(_crossing("line: s = a + b·users", fresh, linear_fit(users, secs),
                               float, MINUTE_S, largest))
        found.append(_crossing(
            "power law: log s = a + b·log users", fresh,
            linear_fit([math.log(u) for u in users], [math.log(s) for s in secs]),
            math.log, math.log(MINUTE_S), math.log(largest)))
    if len({r.table_rows for r in rows}) >= 2:
        table = [float(r.table_rows) for r in rows for _ in r.run_s]
        secs = [s for r in rows for s in r.run_s]

        def retained(n: float) -> float:
            return n * UPLOADS_PER_USER_DAY * (RETENTION_DAYS + 1 / 1440)
        found.append(_crossing("line: s = a + b·table rows", f"{RETENTION_DAYS} days of "
                               "uploads (the retention job's steady state)",
                               linear_fit(table, secs), retained, MINUTE_S, max(table)))
    return tuple(found)


def _crossing(model: str, table: str, fit: LinearFit, x_of: Callable[[float], float],
              target: float, largest_x: float) -> JobFit:
    """Where the fit's mean (and its band's ends) reach `target`, in users; `x_of` maps
    users to the fit's x."""
    def users_where(level: Callable[[float], float]) -> float | None:
        lo, hi = 1.0, 1e9
        if level(x_of(lo)) >= target:
            return lo
        if level(x_of(hi)) < target:
            return None
        return float(brentq(lambda n: level(x_of(n)) - target, lo, hi, xtol=0.5))
    estimate = users_where(lambda x: fit.predict(x).estimate)
    # the band's upper end reaches the minute first (fewest users), its lower end last
    low = users_where(lambda x: fit.predict(x).high)
    high = users_where(lambda x: fit.predict(x).low)
    extrapolated = estimate is None or x_of(estimate) > largest_x
    return JobFit(model, table, estimate, low, high, extrapolated, fit.r_squared, fit.slope)


# -- daily-pot reads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _PotPlan:
    users: tuple[int, ...]
    requests: int  # per table size
    rate_per_s: float  # offered (open model): latency, not throughput


_QUICK_POTS = _PotPlan((1_000, 10_000, 100_000), 200, 100.0)
_FULL_POTS = _PotPlan((1_000, 10_000, 100_000), 1_000, 100.0)


@dataclass(frozen=True)
class PotReadRow:
    """`GET /daily-pot` latency with `users` pots (and registered devices) in the tables.
    Every request is a different user's, so each also looks up its device's secret (the
    backend caches it afterwards)."""

    users: int
    daily_pots_rows: int  # count(*) when measured
    step: StepResult

    @property
    def latency_ms_p50(self) -> float:
        return self.step.latency_ms_p50

    @property
    def latency_ms_p99(self) -> float:
        return self.step.latency_ms_p99


@dataclass(frozen=True)
class PotReadResult:
    rows: tuple[PotReadRow, ...]
    rate_per_s: float
    seconds: float


def measure_pot_reads(database_url: str, *, quick: bool, progress: Progress | None = None,
                      users: Sequence[int] | None = None,
                      requests: int | None = None) -> PotReadResult:
    """`GET /daily-pot` latency (p50/p99, open model at a modest rate) against `ggsim
    serve` while the tables hold each number of users' pots, loaded by COPY (the tables
    grow from one size to the next; the backend runs throughout)."""
    base = _QUICK_POTS if quick else _FULL_POTS
    plan = _PotPlan(tuple(sorted(users or base.users)), requests or base.requests,
                    base.rate_per_s)
    if not plan.users or plan.users[0] < 1 or plan.requests < 1:
        raise UsageError("pot reads need positive user counts and a positive request count")
    say = _say(progress)
    began = time.monotonic()
    clock_ms = parse_instant(SAMPLE_START)
    with scratch_database(database_url, "pots") as url, BackendProcess(url, clock_ms) as server:
        rows = run_loop(_pot_reads(url, server, plan, clock_ms, say))
    return PotReadResult(tuple(rows), plan.rate_per_s, time.monotonic() - began)


async def _pot_reads(url: str, server: BackendProcess, plan: _PotPlan, clock_ms: int,
                     say: Progress) -> list[PotReadRow]:
    rng = np.random.default_rng(SEED)
    found, loaded = [], 0
    conn = await asyncpg.connect(url, timeout=30,
                                 server_settings={"search_path": namespace("recommended")})
    try:
        async with new_session() as session:
            for users in plan.users:
                await _copy_pots(conn, loaded, users, clock_ms)
                loaded = users
                count = int(await conn.fetchval("SELECT count(*) FROM daily_pots"))
                chosen = rng.choice(users, size=min(plan.requests, users), replace=False)
                requests = [HttpRequest("GET", "/daily-pot", None,
                                        _pot_creds(int(u)).headers()) for u in chosen]
                exchanges = await send_at(session, server.url, requests,
                                          uniform_offsets(len(requests), plan.rate_per_s),
                                          timeout_s=PHONE_TIMEOUT_S)
                step = step_result(exchanges, plan.rate_per_s)
                say(f"pot reads at {users:,} users: p50 {step.latency_ms_p50:.1f} ms, p99 "
                    f"{step.latency_ms_p99:.1f} ms, errors {step.errors}")
                found.append(PotReadRow(users, count, step))
    finally:
        await conn.close()
    return found


def _pot_creds(user: int) -> Credentials:
    return Credentials(f"pot-dev-{user:06d}",
                       hashlib.sha256(f"ggsim-pot-secret-{user}".encode()).hexdigest())


async def _copy_pots(conn: Any, first: int, last: int, clock_ms: int) -> None:
    """Users `first`..`last`: a registered device each and a pot of today with some
    uploads counted (as the API would have written them)."""
    today, now = pot.day_of(clock_ms), instant(clock_ms - 3_600_000)
    users = range(first, last)
    await conn.copy_records_to_table(
        "device_secrets", columns=("device_id", "secret_hash", "user_id", "created_at"),
        records=[(_pot_creds(u).device_id, secret_hash(_pot_creds(u).secret),
                  f"pot-user-{u:06d}", now) for u in users])
    await conn.copy_records_to_table(
        "daily_pots", columns=("user_id", "total_credits", "uploads_today", "uploads_required",
                               "pot_day", "last_claim_date", "version", "updated_at"),
        records=[(f"pot-user-{u:06d}", 10 * (u % 30), u % 7, pot.PotRules().uploads_required,
                  today, None, 1 + u % 50, now) for u in users])
    await conn.execute("ANALYZE device_secrets; ANALYZE daily_pots")
