"""The 5-minute-boundary burst: one window's uploads of a fleet sent at once (a
thundering herd on the boundary, as if every phone's window ended together), then the
next window's as the fleet's own phases spread them, against `ggsim serve`.

Invariants:
- Bounded: each burst sends at most one window's uploads, each once, on a schedule fixed
  before it starts, and waits at most one request timeout (plus a second) after its
  last send for answers.
- Clean: the bursts work in a scratch database on the server the URL names (dropped
  afterwards) and stop their backend process, on errors and Ctrl-C too.
- Timestamps: the backend's clock starts after every generated batch, so no batch is in
  its future.
- Warm: every device is registered and authenticated once before either burst, so
  neither pays the secret's first lookup.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from simulator.capacity.envelopes import Envelope, generate_envelopes
from simulator.capacity.scratch import scratch_database
from simulator.capacity.throughput.backend_process import BackendProcess
from simulator.capacity.throughput.devices import Device, register
from simulator.capacity.throughput.http_load import (
    HttpRequest,
    closed_loop,
    new_session,
    send_at,
)
from simulator.capacity.throughput.results import BurstOutcome, BurstResult
from simulator.capacity.throughput.setting import (
    CLOCK_MARGIN_MS,
    PHONE_TIMEOUT_S,
    SAMPLE_START,
    Progress,
    say_to,
)
from simulator.capacity.throughput.step_numbers import step_result
from simulator.drivers.network import run_loop
from simulator.errors import UsageError
from simulator.instants import BATCH_INTERVAL_S, MS_PER_S, WINDOW_MS, parse_instant


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
    say = say_to(progress)
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
