"""The open-model upload ramp: step the offered upload rate up against `ggsim serve` until a
step breaks the SLO, then bisect towards the knee. Each step's uploads are the
generator's payloads in turn, sent by registered devices in turn, each with a fresh
batch id; the SLO and the knee are `slo`'s.

Invariants:
- Bounded: a step sends at most `max_requests_per_step` within its time bound and waits
  at most one request timeout for answers; a ramp stops at the first broken step (then
  bisects twice), its last rate or its time budget.
- Clean: the ramp works in a scratch database on the server the URL names (dropped
  afterwards) and stops its backend process, on errors and Ctrl-C too.
- Counted: `rows_stored` (`count_rows`) is `count(*)` of `sensor_batches` after the ramp, which must
  equal the 201s it received (`RampResult.all_stored`).
- Timestamps: the backend's clock starts after every generated batch, so no batch is in
  its future; the uploads are the generator's batches of a weekday morning.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from simulator.backend.migrations import namespace
from simulator.capacity.envelopes import Envelope, generate_envelopes
from simulator.capacity.scratch import scratch_database
from simulator.capacity.slo import SloThresholds, StepResult, find_knee, judge
from simulator.capacity.throughput.backend_process import BackendProcess
from simulator.capacity.throughput.devices import Device, register
from simulator.capacity.throughput.http_load import (
    HttpRequest,
    closed_loop,
    new_session,
    send_at,
    uniform_offsets,
)
from simulator.capacity.throughput.results import RampResult
from simulator.capacity.throughput.setting import (
    CLOCK_MARGIN_MS,
    PHONE_TIMEOUT_S,
    SAMPLE_START,
    Progress,
    say_to,
)
from simulator.capacity.throughput.step_numbers import CpuMark, step_result
from simulator.drivers.network import run_loop
from simulator.errors import UsageError
from simulator.instants import parse_instant


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
    say = say_to(progress)
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


async def count_rows(database_url: str, table: str, schema: str = "recommended") -> int:
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {namespace(schema)}.{table}"))
    finally:
        await conn.close()
