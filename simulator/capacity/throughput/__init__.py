"""How much load the reference stack takes: an open-model upload ramp to its knee, the
5-minute-boundary burst (aligned against spread), one run of the aggregation job at fleet
sizes, and daily-pot reads at table sizes; on a real PostgreSQL, over real HTTP.

The load is OPEN: arrival times are fixed before a step starts (offered rate, or a burst's
offsets) and each request goes at its time whether or not earlier ones were answered, as
phones do; a slow server does not slow the arrivals down (no coordinated omission). The
backend runs as its own process (`python -m simulator.cli serve`, no periodic jobs), so
the generator does not share its interpreter lock. Bodies are the fleet generator's
envelopes (`simulator.capacity.envelopes`); every device is registered with
`POST /devices` and every request carries its credentials. The SLO and the knee are
`slo`'s.

The modules, one job each (each states its invariants):
- `ramp`: the open-model upload ramp to the knee;
- `boundary_burst`: the 5-minute-boundary burst, aligned against spread;
- `job_timing`: one run of the aggregation job timed at fleet sizes; `job_fit`: where it
  outgrows its minute;
- `pot_reads`: `GET /daily-pot` latency at table sizes;
- `results`: the dataclasses the measurements report;
- `backend_process`: `ggsim serve` as a child process;
- `http_load`: the open-model sender, the set-up closed loop and the client session;
- `devices`: registered devices and their uploads;
- `step_numbers`: a step's numbers and CPU shares;
- `setting`: the sample, a phone's cadence and timeout, shared constants.

Invariants (across the modules):
- Bounded: every step, burst and loop stops by itself: a step sends at most
  `max_requests_per_step` within its time bound and waits at most one request timeout
  for answers; a ramp stops at the first broken step (then bisects twice), its last rate
  or its time budget; loads and runs are finite.
- Clean: each measurement works in a scratch database on the server the URL names
  (dropped afterwards) and stops its backend process, on errors and Ctrl-C too (and the
  process stops by itself when this one dies: its stdin is a pipe from here).
"""

from __future__ import annotations

from simulator.capacity.throughput.backend_process import BackendProcess
from simulator.capacity.throughput.boundary_burst import measure_burst
from simulator.capacity.throughput.http_load import (
    Exchange,
    HttpRequest,
    send_at,
    uniform_offsets,
)
from simulator.capacity.throughput.job_fit import fit_job_times
from simulator.capacity.throughput.job_timing import measure_aggregation_job
from simulator.capacity.throughput.pot_reads import measure_pot_reads
from simulator.capacity.throughput.ramp import measure_ramp
from simulator.capacity.throughput.results import (
    BurstOutcome,
    BurstResult,
    JobFit,
    JobTimingResult,
    JobTimingRow,
    PotReadResult,
    PotReadRow,
    RampResult,
)
from simulator.capacity.throughput.setting import (
    TEN_K_USERS_AVERAGE_PER_S,
    average_uploads_per_s,
)
from simulator.capacity.throughput.step_numbers import step_result

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
