"""One definition of "the SLO broke", for every load that steps an offered arrival rate up
(the open-model ramp of `throughput`, a locust load shape): the knee of a ramp is where it
first breaks.

A step is an offered arrival rate held for a duration. It breaks when
- the generator could not offer the rate: it sent below `send_rate_share_min` (95 %) of
  the offered rate. Then the verdict is `GENERATOR_SATURATED`, whatever the server did:
  the server was not offered the rate, so the step says nothing about it at that rate;
- else its p99 latency exceeds `latency_ms_p99_max` (500 ms): `LATENCY`;
- or its error share exceeds `error_share_max` (1 %): `ERRORS`. Errors are the server's
  failures as the client sees them: 5xx answers, timeouts and connection errors, over
  every request sent. 4xx answers are the client's fault: counted apart, never an error.

Percentiles are nearest-rank (the ceil(q·n)-th smallest value): a reported p99 is a
latency some request really had, and it is never below the true 99th percentile of the
sample, so a step is not passed by interpolation.

Invariants: pure (no I/O, no clock); a verdict is a function of the step and the
thresholds alone; the knee's `held_rate_per_s` is below its `broke_rate_per_s`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from simulator.errors import UsageError

__all__ = [
    "Breach",
    "Knee",
    "SloThresholds",
    "StepResult",
    "StepVerdict",
    "find_knee",
    "judge",
    "nearest_rank",
]


class Breach(enum.Enum):
    """Why a step broke."""

    GENERATOR_SATURATED = "generator saturated"  # the rate was not offered: not the server
    LATENCY = "p99 latency"  # the server broke: too slow
    ERRORS = "errors"  # the server broke: 5xx, timeouts, connection errors

    @property
    def server_broke(self) -> bool:
        return self is not Breach.GENERATOR_SATURATED


@dataclass(frozen=True)
class SloThresholds:
    """Where a step breaks (see the module docstring)."""

    latency_ms_p99_max: float = 500.0
    error_share_max: float = 0.01
    send_rate_share_min: float = 0.95

    def __post_init__(self) -> None:
        if not self.latency_ms_p99_max > 0:
            raise UsageError(f"the p99 latency threshold must be positive (ms), got "
                             f"{self.latency_ms_p99_max}")
        if not 0 <= self.error_share_max < 1:
            raise UsageError(f"the error share threshold must be in [0, 1), e.g. 0.01 for "
                             f"1 %, got {self.error_share_max}")
        if not 0 < self.send_rate_share_min <= 1:
            raise UsageError(f"the send rate share must be in (0, 1], e.g. 0.95, got "
                             f"{self.send_rate_share_min}")


@dataclass(frozen=True)
class StepResult:
    """What one step of a ramp measured. Latencies are of every request sent, failed ones
    included (a timeout counts with the time it took to give up)."""

    offered_rate_per_s: float
    duration_s: float  # the schedule's length: requests / offered rate
    requests: int  # scheduled at the offered rate
    sent: int  # really sent (a request past the step's time bound is not)
    achieved_send_rate_per_s: float
    completed_per_s: float  # answers of any kind per second, first send to last answer
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_max: float
    ok: int  # 2xx
    client_errors_4xx: int  # the client's fault: not an SLO error
    errors_5xx: int
    errors_timeout: int
    errors_connection: int
    send_lag_ms_p99: float = 0.0  # how late the generator sent, against the schedule
    generator_cpu_share: float | None = None  # of one core, the load generator's process
    server_cpu_share: float | None = None  # of one core, the backend's process
    machine_cpu_cores: float | None = None  # cores busy on the whole machine (everyone's)

    def __post_init__(self) -> None:
        if not self.offered_rate_per_s > 0:
            raise UsageError(f"a step's offered rate must be positive, got "
                             f"{self.offered_rate_per_s}")
        answered = (self.ok + self.client_errors_4xx + self.errors_5xx + self.errors_timeout
                    + self.errors_connection)
        if answered > self.sent or self.sent > self.requests:
            raise UsageError(f"a step with {self.requests} requests, {self.sent} sent and "
                             f"{answered} outcomes does not add up")

    @property
    def errors(self) -> int:
        """The server's failures: 5xx, timeouts and connection errors."""
        return self.errors_5xx + self.errors_timeout + self.errors_connection

    @property
    def error_share(self) -> float:
        """Errors over requests sent (0 when nothing was sent)."""
        return self.errors / self.sent if self.sent else 0.0

    @property
    def send_rate_share(self) -> float:
        """Achieved over offered send rate."""
        return self.achieved_send_rate_per_s / self.offered_rate_per_s


@dataclass(frozen=True)
class StepVerdict:
    """A step judged: `breaches` empty means it held. `GENERATOR_SATURATED`, when
    present, comes first and is alone in deciding `cause`."""

    step: StepResult
    breaches: tuple[Breach, ...]
    reasons: tuple[str, ...]  # one sentence per breach, with the numbers

    @property
    def held(self) -> bool:
        return not self.breaches

    @property
    def cause(self) -> Breach | None:
        return self.breaches[0] if self.breaches else None


def judge(step: StepResult, thresholds: SloThresholds | None = None) -> StepVerdict:
    """Whether `step` held the SLO, and if not why (see the module docstring)."""
    limits = thresholds or SloThresholds()
    found: list[tuple[Breach, str]] = []
    rate = step.offered_rate_per_s
    if step.send_rate_share < limits.send_rate_share_min:
        found.append((Breach.GENERATOR_SATURATED,
                      f"generator saturated: sent {step.achieved_send_rate_per_s:,.1f}/s of "
                      f"{rate:,.1f}/s offered ({step.send_rate_share:.0%} < "
                      f"{limits.send_rate_share_min:.0%}); the server was not offered the rate"))
    if step.latency_ms_p99 > limits.latency_ms_p99_max:
        found.append((Breach.LATENCY, f"server broke at {rate:,.1f}/s: p99 "
                      f"{step.latency_ms_p99:,.0f} ms > {limits.latency_ms_p99_max:,.0f} ms"))
    if step.error_share > limits.error_share_max:
        found.append((Breach.ERRORS, f"server broke at {rate:,.1f}/s: {step.errors:,} errors "
                      f"of {step.sent:,} sent ({step.error_share:.1%} > "
                      f"{limits.error_share_max:.1%}; 5xx {step.errors_5xx}, timeouts "
                      f"{step.errors_timeout}, connection {step.errors_connection})"))
    return StepVerdict(step, tuple(b for b, _ in found), tuple(r for _, r in found))


@dataclass(frozen=True)
class Knee:
    """Where a ramp broke: the highest offered rate that held below the first one that
    broke, and why that one broke. `broke_rate_per_s` None: no step broke (the ramp
    stopped at its maximum rate or time); `held_rate_per_s` None: the first step broke."""

    held_rate_per_s: float | None
    broke_rate_per_s: float | None
    cause: Breach | None
    reasons: tuple[str, ...]
    verdicts: tuple[StepVerdict, ...]  # every step, in order of offered rate

    @property
    def server_broke(self) -> bool:
        """The server, not the generator, broke first (False when nothing broke)."""
        return self.cause is not None and self.cause.server_broke

    @property
    def summary(self) -> str:
        held = f"{self.held_rate_per_s:,.1f}/s" if self.held_rate_per_s is not None else "none"
        if self.broke_rate_per_s is None:
            return f"no step broke; highest rate held {held}"
        return (f"held up to {held}; broke at {self.broke_rate_per_s:,.1f}/s: "
                + "; ".join(self.reasons))


def find_knee(steps: Iterable[StepResult], thresholds: SloThresholds | None = None) -> Knee:
    """The knee of a ramp (steps in any order; judged in order of offered rate)."""
    ordered = sorted(steps, key=lambda s: s.offered_rate_per_s)
    if not ordered:
        raise UsageError("a knee needs at least one step")
    verdicts = tuple(judge(s, thresholds) for s in ordered)
    held: float | None = None
    for verdict in verdicts:
        if not verdict.held:
            return Knee(held, verdict.step.offered_rate_per_s, verdict.cause,
                        verdict.reasons, verdicts)
        held = verdict.step.offered_rate_per_s
    return Knee(held, None, None, (), verdicts)


def nearest_rank(values: Sequence[float], quantile: float) -> float:
    """The nearest-rank `quantile` (0 < q <= 1) of `values`: the ceil(q·n)-th smallest;
    NaN for no values."""
    if not 0 < quantile <= 1:
        raise UsageError(f"a quantile is in (0, 1], got {quantile}")
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]
