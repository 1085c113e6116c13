"""The projection checked at month scale: the bytes per row that the per-seed runs measured
on a few days (the growth slope, bootstrapped over the seeds) times the month's rows,
beside what the month's tables really occupy; and the month's own slope and linearity.

Invariant: pure arithmetic on two measurements of the same run; a verdict is "within the
interval" only when the measured bytes lie inside the projection's interval, and
otherwise states the factor measured / projected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from simulator.capacity.model import PerUserDay
from simulator.capacity.month_scale import MonthScale
from simulator.capacity.project import Interval, linear_fit


@dataclass(frozen=True)
class ScaleCheck:
    """One per-upload table of one variant at month scale."""

    variant: str
    table: str
    rows: int
    measured_bytes: int
    projected_bytes: Interval  # the runs' bytes per row x `rows`
    month_bytes_per_row: Interval  # the slope of the month's own growth curve
    month_r_squared: float
    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("ratio", "within", "verdict")

    @property
    def ratio(self) -> float:
        return self.measured_bytes / self.projected_bytes.estimate

    @property
    def within(self) -> bool:
        return self.projected_bytes.low <= self.measured_bytes <= self.projected_bytes.high

    @property
    def verdict(self) -> str:
        return ("within the interval" if self.within
                else f"off: measured {self.ratio:.3g}x the projection")


def check_month(unit: PerUserDay, month: MonthScale) -> list[ScaleCheck]:
    """Each per-upload table the unit costs and the month both have."""
    if unit.variant != month.variant:
        raise ValueError(f"unit costs of {unit.variant} against a month of {month.variant}")
    if len(month.growth) < 2:
        raise ValueError("a month-scale check needs at least two days of growth")
    checks = []
    for table, per_row in unit.bytes_per_row.items():
        if table not in month.final:
            continue
        points = [(p.uploads, p.total_bytes[table]) for p in month.growth]
        fit = linear_fit([x for x, _ in points], [y for _, y in points])
        checks.append(ScaleCheck(
            unit.variant, table, month.rows, month.final[table].total_bytes,
            per_row.scaled(month.rows),
            Interval(fit.slope, min(fit.slope_low, fit.slope), max(fit.slope_high, fit.slope),
                     fit.n),
            fit.r_squared))
    return checks
