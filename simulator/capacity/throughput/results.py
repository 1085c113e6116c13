"""What the throughput measurements report: the ramp's steps and knee, the two bursts, the
aggregation job's timings and fits, and the pot reads' latencies. Plain frozen
dataclasses (the report turns them into JSON field by field); their properties derive
from the fields only.

Invariants:
- Counted: a ramp's `rows_stored` is `count(*)` of `sensor_batches` after it, which must
  equal the 201s it received (`RampResult.all_stored`); a job timing's `table_rows` and
  `new_rows` are counted after loading.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from simulator.capacity.slo import Knee, SloThresholds, StepResult
from simulator.capacity.throughput.setting import (
    MINUTE_S,
    RETENTION_DAYS,
    TEN_K_USERS_AVERAGE_PER_S,
    UPLOADS_PER_USER_DAY,
)
from simulator.instants import DAY_S

# -- the ramp ---------------------------------------------------------------------------------


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


# -- the 5-minute-boundary burst ----------------------------------------------------------------


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


# -- one run of the aggregation job -------------------------------------------------------------


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


# -- daily-pot reads ----------------------------------------------------------------------------


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
