"""A step's numbers: its exchanges summarised as an `slo.StepResult` (rates, latency
percentiles by nearest rank, outcomes by kind, send lag), with the CPU shares of the
generator, the backend and the machine over the step.

Invariants:
- Pure over its inputs: `step_result` reads only the exchanges, the offered rate and the
  CPU shares it is given; unsent requests count in `requests`, never in `sent`.
- CPU shares are core-seconds busy per wall-clock second between two `CpuMark`s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from simulator.capacity.slo import StepResult, nearest_rank
from simulator.capacity.throughput.backend_process import BackendProcess
from simulator.capacity.throughput.http_load import Exchange


@dataclass(frozen=True)
class CpuMark:
    """CPU seconds of this process, of the backend and of the whole machine (busy, in
    core-seconds), and the wall clock, at an instant."""

    own_s: float
    server_s: float
    machine_s: float
    wall_s: float

    @staticmethod
    def now(server: BackendProcess | None) -> CpuMark:
        own, machine = psutil.Process().cpu_times(), psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        return CpuMark(own.user + own.system, server.cpu_s() if server else 0.0,
                    sum(machine) - idle, time.monotonic())

    def shares(self, later: CpuMark) -> tuple[float, float, float]:
        """(this process, the backend, the machine) in cores busy since `self`."""
        wall = max(1e-9, later.wall_s - self.wall_s)
        return ((later.own_s - self.own_s) / wall, (later.server_s - self.server_s) / wall,
                (later.machine_s - self.machine_s) / wall)


def step_result(exchanges: Sequence[Exchange], offered_rate_per_s: float,
                cpu_shares: tuple[float, float, float] | None = None) -> StepResult:
    """A step's numbers from its exchanges (see `slo.StepResult`)."""
    sent = [e for e in exchanges if e.sent_s is not None]
    statuses = [e.status for e in sent if e.status is not None]
    latencies = [x for x in (e.latency_ms for e in sent) if x is not None]
    lags = [((e.sent_s or 0.0) - e.due_s) * 1000.0 for e in sent]
    last_sent = max((e.sent_s or 0.0 for e in sent), default=0.0)
    first_sent = min((e.sent_s or 0.0 for e in sent), default=0.0)
    last_done = max((e.done_s or 0.0 for e in sent), default=0.0)
    answered = sum(1 for e in sent if e.done_s is not None)
    generator, server, machine = cpu_shares if cpu_shares is not None else (None,) * 3
    return StepResult(
        offered_rate_per_s=offered_rate_per_s,
        duration_s=len(exchanges) / offered_rate_per_s,
        requests=len(exchanges), sent=len(sent),
        achieved_send_rate_per_s=len(sent) / (last_sent + 1 / offered_rate_per_s)
        if sent else 0.0,
        completed_per_s=answered / max(1e-9, last_done - first_sent) if answered else 0.0,
        latency_ms_p50=nearest_rank(latencies, 0.50),
        latency_ms_p95=nearest_rank(latencies, 0.95),
        latency_ms_p99=nearest_rank(latencies, 0.99),
        latency_ms_max=max(latencies, default=math.nan),
        ok=sum(1 for s in statuses if 200 <= s < 300),
        client_errors_4xx=sum(1 for s in statuses if 400 <= s < 500),
        errors_5xx=sum(1 for s in statuses if s >= 500),
        errors_timeout=sum(1 for e in sent if e.failure == "timeout"),
        errors_connection=sum(1 for e in sent if e.failure == "connection"),
        send_lag_ms_p99=nearest_rank(lags, 0.99) if lags else 0.0,
        generator_cpu_share=generator, server_cpu_share=server,
        machine_cpu_cores=machine)
