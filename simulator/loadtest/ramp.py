"""Ramp to break, for locust: the phones' arrival rate is stepped up (more phones each
step, each uploading every five simulated minutes) until a step breaks, and the run
reports the rate that held and the rate that broke. "Broke" is `ggsim capacity`'s own
definition: each step becomes a `capacity.slo.StepResult` and the knee is
`capacity.slo.find_knee`, with the same thresholds type, so a locust ramp and the
capacity ramp are judged alike.

A step is measured between two snapshots of locust's cumulative statistics for
`/upload` (requests, failures by kind, the response-time histogram), taken after the
step's phones have joined and settled (`settle_s`) and at its end; its latency
percentiles are nearest-rank over the histogram's difference (locust rounds times to
its histogram buckets, the only loss).

Invariants: pure (no locust import); a step's numbers are differences of cumulative
counts, so steps never share a request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from simulator.capacity.slo import StepResult, nearest_rank
from simulator.instants import WINDOW_MS


@dataclass(frozen=True)
class RampPlan:
    """`first_users` phones, `step_users` more each step of `step_s` wall seconds, at
    most `max_steps` steps; each step measured from `settle_s` after it begins."""

    first_users: int = 10
    step_users: int = 10
    step_s: float = 20.0
    settle_s: float = 5.0
    max_steps: int = 20

    def step_at(self, run_time_s: float) -> int:
        return int(run_time_s // self.step_s)

    def users(self, step: int) -> int:
        return self.first_users + step * self.step_users


def phone_rate_per_s(speed: float) -> float:
    """Uploads a second one phone offers at `speed`: one every five simulated minutes."""
    return speed / (WINDOW_MS / 1000)


@dataclass(frozen=True)
class Snapshot:
    """Cumulative `/upload` statistics at wall second `at_s` of the run."""

    at_s: float
    requests: int
    ok: int
    client_4xx: int
    errors_5xx: int
    timeouts: int
    connection: int
    histogram: Mapping[int, int]  # response time (ms, locust's buckets) -> requests


def classify(error: str) -> str:
    """A locust error text as one of capacity's kinds: "4xx", "5xx", "timeout" or
    "connection" (no status: refused, reset, closed)."""
    low = error.lower()
    if "timeout" in low or "timed out" in low:
        return "timeout"
    for code in range(400, 600):
        if str(code) in error:
            return "4xx" if code < 500 else "5xx"
    return "connection"


def step_result(before: Snapshot, after: Snapshot, users: int, speed: float) -> StepResult:
    """The step between two snapshots as capacity's `StepResult`: offered = the phones'
    rate, requests = what that rate schedules in the window (or what was sent, if more:
    phones catching up), latencies nearest-rank over the window's histogram."""
    duration = max(after.at_s - before.at_s, 1e-9)
    offered = users * phone_rate_per_s(speed)
    sent = after.requests - before.requests
    times: list[float] = []
    for ms, count in sorted(after.histogram.items()):
        times += [float(ms)] * (count - before.histogram.get(ms, 0))

    def q(quantile: float) -> float:
        value = nearest_rank(times, quantile)
        return 0.0 if math.isnan(value) else value
    outcomes = {k: getattr(after, k) - getattr(before, k)
                for k in ("ok", "client_4xx", "errors_5xx", "timeouts", "connection")}
    return StepResult(
        offered_rate_per_s=offered, duration_s=duration,
        requests=max(sent, round(offered * duration)), sent=sent,
        achieved_send_rate_per_s=sent / duration,
        completed_per_s=sum(outcomes.values()) / duration,
        latency_ms_p50=q(0.5), latency_ms_p95=q(0.95), latency_ms_p99=q(0.99),
        latency_ms_max=max(times, default=0.0), ok=outcomes["ok"],
        client_errors_4xx=outcomes["client_4xx"], errors_5xx=outcomes["errors_5xx"],
        errors_timeout=outcomes["timeouts"], errors_connection=outcomes["connection"])
