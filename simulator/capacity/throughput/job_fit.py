"""Where the aggregation job outgrows its minute: fits of its timed runs (seconds per run)
against fleet size (a line and a power law, at the main depth) and against table rows
(a line, projected to a table holding the retention job's days), each solved for the
fleet size at which a run takes `MINUTE_S`.

Invariants:
- Pure: the fits read only the timing rows; no measurement, no randomness.
- A fit is made only from at least two distinct x values; a crossing is searched in
  1..10^9 users and is None on a side where the minute is not reached; `extrapolated`
  says the estimate lies beyond the largest x measured (or was not reached).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from scipy.optimize import brentq

from simulator.capacity.project import LinearFit, linear_fit
from simulator.capacity.throughput.results import JobFit, JobTimingRow
from simulator.capacity.throughput.setting import (
    MINUTE_S,
    RETENTION_DAYS,
    UPLOADS_PER_USER_DAY,
)


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
