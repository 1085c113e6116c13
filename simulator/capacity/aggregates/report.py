"""The report of `measure_aggregate_cells` (`AggregateCellsReport`) and the parts built
from the measurements: the table per fleet size and the held-out fleet, measured beside
what each model predicts for it.

`RowProjection` lives here rather than in `projection`, which reads the report: the
report holds its projections, so defining it there would make the two import each other.

Invariants:
- Every part is a frozen dataclass whose values are a pure function of the measurements
  and models it is built from.
- Values per fleet size are week-weighted over dates and averaged over seeds; standard
  deviations are between seeds (0 for one seed). Monthly rows use 30-day months.
- The held-out fleet is the union of every seed's largest fleet: left out of the curve
  fits, and predicted by an occupancy model built from the first seed alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from simulator.capacity.aggregates.arithmetic import DAYS_PER_MONTH, ReviewArithmetic
from simulator.capacity.aggregates.ceiling import CityCeiling
from simulator.capacity.aggregates.counting import WINDOWS_PER_DAY
from simulator.capacity.aggregates.curves import CellFits
from simulator.capacity.aggregates.fleet import FleetCells, _seed_values, _SeedDay
from simulator.capacity.aggregates.occupancy import OccupancyModel


@dataclass(frozen=True)
class DayCells:
    """One measured date, averaged over seeds."""

    day: str
    weekday: str
    cells_per_window_mean: float
    cells_per_day: float


@dataclass(frozen=True)
class SizeRow:
    """One fleet size: week-weighted means over seeds, the rows they make in a 30-day
    month, and what the occupancy model says for the same size."""

    phones: int
    cells_per_window_mean: float
    cells_per_window_mean_sd: float  # between seeds
    cells_per_window_peak: float
    cells_per_day: float
    cells_per_day_sd: float
    rows_5m_per_30_day_month: float
    rows_daily_per_30_day_month: float
    occupancy_cells_per_window: float
    occupancy_cells_per_day: float
    by_day: tuple[DayCells, ...]


@dataclass(frozen=True)
class HeldOutFleet:
    """The union of every seed's largest fleet (left out of the curve fits; the
    occupancy model here is built from the first seed alone), measured and predicted."""

    phones: int
    cells_per_window_mean: float
    cells_per_day: float
    occupancy_from_phones: int
    window_occupancy: float
    window_saturating: float
    window_power: float
    day_occupancy: float
    day_saturating: float
    day_power: float


@dataclass(frozen=True)
class RowProjection:
    """Rows a table gains in `days` days at `users` users: the occupancy model with its
    95 % interval, the two curves, and review §5.3's figure (1K users only)."""

    table: str
    users: int
    period: str
    days: int
    rows: float
    rows_low: float
    rows_high: float
    rows_saturating: float
    rows_power: float
    review_rows: int | None


@dataclass(frozen=True)
class AggregateCellsReport:
    """Everything `measure_aggregate_cells` found; see the package docstring."""

    seeds: tuple[int, ...]
    fleet_sizes: tuple[int, ...]
    days: tuple[str, ...]
    hours: int
    quick: bool
    resamples: int
    measurements: tuple[FleetCells, ...]
    table: tuple[SizeRow, ...]
    window_fits: CellFits
    day_fits: CellFits
    occupancy: OccupancyModel
    held_out: HeldOutFleet
    ceiling: CityCeiling
    review: ReviewArithmetic
    projections: tuple[RowProjection, ...]


def _mean_sd(values: dict[tuple[int, int], float], seeds: Sequence[int], phones: int
             ) -> tuple[float, float]:
    """Mean over seeds and the standard deviation between them (0 for one seed)."""
    v = np.array([values[(s, phones)] for s in seeds])
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _by_day(measurements: Sequence[FleetCells], days: Sequence[str], phones: int
            ) -> tuple[DayCells, ...]:
    out = []
    for d in days:
        mine = [m for m in measurements if m.day == d and m.phones == phones]
        out.append(DayCells(d, date.fromisoformat(d).strftime("%A"),
                            float(np.mean([m.cells_per_window_mean for m in mine])),
                            float(np.mean([m.cells_per_day for m in mine]))))
    return tuple(out)


def _table(measurements: Sequence[FleetCells], sizes: Sequence[int], seeds: Sequence[int],
           days: Sequence[str], weights: dict[str, float], occupancy: OccupancyModel
           ) -> tuple[SizeRow, ...]:
    values = {a: _seed_values(measurements, weights, a) for a in
              ("cells_per_window_mean", "cells_per_window_peak", "cells_per_day")}
    rows = []
    for n in sizes:
        window, window_sd = _mean_sd(values["cells_per_window_mean"], seeds, n)
        per_day, per_day_sd = _mean_sd(values["cells_per_day"], seeds, n)
        peak, _ = _mean_sd(values["cells_per_window_peak"], seeds, n)
        rows.append(SizeRow(n, window, window_sd, peak, per_day, per_day_sd,
                            window * DAYS_PER_MONTH * WINDOWS_PER_DAY, per_day * DAYS_PER_MONTH,
                            occupancy.cells_per_window(n), occupancy.cells_per_day(n),
                            _by_day(measurements, days, n)))
    return tuple(rows)


def _held_out(seed_days: Sequence[_SeedDay], weights: dict[str, float], days: Sequence[str],
              phones: int, fits: tuple[CellFits, CellFits], first_seed: OccupancyModel
              ) -> HeldOutFleet:
    window = day = 0.0
    for d in days:
        mine = [sd for sd in seed_days if sd.day == d]
        window += weights[d] * np.unique(np.concatenate([sd.window_keys for sd in mine])).size \
            / mine[0].windows
        day += weights[d] * np.unique(np.concatenate([sd.incidence for sd in mine])).size
    window_fits, day_fits = fits
    return HeldOutFleet(
        phones, float(window), float(day), first_seed.phones,
        first_seed.cells_per_window(phones), float(window_fits.saturating.predict(phones)),
        float(window_fits.power.predict(phones)), first_seed.cells_per_day(phones),
        float(day_fits.saturating.predict(phones)), float(day_fits.power.predict(phones)))
