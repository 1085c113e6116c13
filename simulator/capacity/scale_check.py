"""The projection checked at month scale. A projection extrapolates bytes per row measured
on a few days to months; the month-scale run loads a whole month, so the extrapolation can
be held against what the tables really occupy:

- from its first days: the line fitted to the month's own first `early_days` daily sizes,
  extrapolated to the month's rows (the t-interval of the fitted mean), against the
  measured size. The same phones on both sides, so only scale differs: this is the verdict.
- from the seeds: the per-seed runs' bytes per row (bootstrapped over the seeds) x the
  month's rows: what the projections in the report use. Their fleets are other phones, so
  a difference here mixes scale with fleet composition; it is reported as a ratio.

Invariant: pure arithmetic on measurements of the same run; the verdict is "within the
interval" only when the measured bytes lie inside the extrapolation's interval, otherwise
it states the factor measured / extrapolated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from simulator.capacity.model import PerUserDay
from simulator.capacity.month_scale import MonthScale
from simulator.capacity.project import Interval, linear_fit
from simulator.errors import InvariantError

MIN_EARLY_DAYS = 3  # a line through two points has no interval


@dataclass(frozen=True)
class ScaleCheck:
    """One per-upload table of one variant at month scale."""

    variant: str
    table: str
    rows: int
    measured_bytes: int
    early_days: int
    from_early_days: Interval  # the month's first days' line at `rows`
    from_seeds: Interval  # the seeds' bytes per row x `rows`
    month_bytes_per_row: Interval  # the slope of the whole month's growth curve
    month_r_squared: float
    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("ratio", "within", "verdict",
                                                  "ratio_to_seeds")

    @property
    def ratio(self) -> float:
        return self.measured_bytes / self.from_early_days.estimate

    @property
    def ratio_to_seeds(self) -> float:
        return self.measured_bytes / self.from_seeds.estimate

    @property
    def within(self) -> bool:
        return self.from_early_days.low <= self.measured_bytes <= self.from_early_days.high

    @property
    def verdict(self) -> str:
        return ("within the interval" if self.within
                else f"off: measured {self.ratio:.3g}x the extrapolation")


def check_month(unit: PerUserDay, month: MonthScale, early_days: int) -> list[ScaleCheck]:
    """Each per-upload table the unit costs and the month both have; `early_days` (at least
    `MIN_EARLY_DAYS`) is how many days the seeds' runs were fitted on."""
    early_days = max(early_days, MIN_EARLY_DAYS)
    if unit.variant != month.variant:
        raise InvariantError(f"unit costs of {unit.variant} against a month of {month.variant}")
    if len(month.growth) <= early_days:
        raise InvariantError(f"a month-scale check needs more than {early_days} days of "
                             f"growth, got {len(month.growth)}")
    checks = []
    rows = [float(p.uploads) for p in month.growth]
    for table, per_row in unit.bytes_per_row.items():
        if table not in month.final:
            continue
        sizes = [float(p.total_bytes[table]) for p in month.growth]
        early = linear_fit(rows[:early_days], sizes[:early_days])
        whole = linear_fit(rows, sizes)
        checks.append(ScaleCheck(
            unit.variant, table, month.rows, month.final[table].total_bytes, early_days,
            early.predict(month.rows), per_row.scaled(month.rows),
            Interval(whole.slope, min(whole.slope_low, whole.slope),
                     max(whole.slope_high, whole.slope), whole.n),
            whole.r_squared))
    return checks
