"""`measure_aggregate_cells`: count the aggregate cells of generated fleets, model them
against fleet size and project rows, with quick and full defaults.

Invariants:
- The report is a pure function of its arguments: bootstrap generators are keyed by
  the seeds and sizes (`SeedSequence`); no wall clock is read.
- Arguments are checked before any fleet is generated; misuse raises `UsageError`
  saying what to give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from simulator.capacity.aggregates._types import Progress
from simulator.capacity.aggregates.arithmetic import review_arithmetic
from simulator.capacity.aggregates.ceiling import _ceiling
from simulator.capacity.aggregates.curves import _fits
from simulator.capacity.aggregates.fleet import (
    BLOCKS_PER_SEED,
    _day_start_ms,
    _measure_seed_day,
    _week_weights,
)
from simulator.capacity.aggregates.geometry import _rings
from simulator.capacity.aggregates.occupancy import _occupancy
from simulator.capacity.aggregates.projection import _projections
from simulator.capacity.aggregates.report import AggregateCellsReport, _held_out, _table
from simulator.errors import UsageError
from simulator.sensors.city import BERLIN

QUICK_SIZES = (10, 30, 100, 300, 1_000)
QUICK_SEEDS = (1, 2)
QUICK_DATES = ("2024-01-03",)  # a Wednesday
FULL_SIZES = (10, 30, 100, 300, 1_000, 3_000)
FULL_SEEDS = (1, 2, 3, 4, 5)
FULL_DATES = ("2024-01-03", "2024-01-06")  # a Wednesday and a Saturday
QUICK_RESAMPLES = 100
FULL_RESAMPLES = 200


def _check_arguments(sizes: Sequence[int], seeds: Sequence[int], days: Sequence[str],
                     hours: int, resamples: int) -> None:
    if len(set(sizes)) < 4 or min(sizes) < 1:
        raise UsageError(f"give four or more distinct fleet sizes of at least 1 phone (the "
                         f"saturating curve has three parameters), got {list(sizes)}")
    if max(sizes) % BLOCKS_PER_SEED:
        raise UsageError(f"the largest fleet size must be a multiple of {BLOCKS_PER_SEED} "
                         f"(it is split into {BLOCKS_PER_SEED} blocks), got {max(sizes)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"give one or more distinct seeds, got {list(seeds)}")
    if not days or len(set(days)) != len(days):
        raise UsageError(f"give one or more distinct ISO dates, got {list(days)}")
    for d in days:
        _day_start_ms(d)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24:
        raise UsageError(f"hours must be a whole number from 1 to 24, got {hours!r}")
    if resamples < 1:
        raise UsageError(f"bootstrap resamples must be at least 1, got {resamples}")


def measure_aggregate_cells(*, fleet_sizes: Sequence[int] | None = None,
                            seeds: Sequence[int] | None = None,
                            days: Sequence[str] | None = None, hours: int = 24,
                            quick: bool = False, resamples: int | None = None,
                            progress: Progress | None = None) -> AggregateCellsReport:
    """Count the aggregate cells of generated fleets, model them against fleet size and
    project rows (see the package docstring). `quick` picks small defaults (sizes up to
    1,000, seeds 1 and 2, one Wednesday: about 15 s on one core); the full defaults are
    sizes up to 3,000, seeds 1-5, a Wednesday and a Saturday (about 3 minutes)."""
    sizes = tuple(sorted(set(fleet_sizes or (QUICK_SIZES if quick else FULL_SIZES))))
    seeds_t = tuple(seeds or (QUICK_SEEDS if quick else FULL_SEEDS))
    days_t = tuple(days or (QUICK_DATES if quick else FULL_DATES))
    count = resamples if resamples is not None else (QUICK_RESAMPLES if quick
                                                     else FULL_RESAMPLES)
    _check_arguments(sizes, seeds_t, days_t, hours, count)
    city, largest = BERLIN, max(sizes)
    ring_cells = _rings(city)
    seed_days = [_measure_seed_day(s, d, sizes, hours, ring_cells, city, progress)
                 for s in seeds_t for d in days_t]
    measurements = tuple(r for sd in seed_days for r in sd.rows)
    weights = _week_weights(days_t)
    if progress is not None:
        progress(f"aggregates: fitting ({count} resamples per model)")
    key = (*seeds_t, *sizes)
    fits = _fits(measurements, weights, count, key)
    occupancy = _occupancy(seed_days, days_t, weights, ring_cells, largest)
    first_seed = _occupancy([sd for sd in seed_days if sd.rows[0].seed == seeds_t[0]],
                            days_t, weights, ring_cells, largest)
    pooled = len(seeds_t) * largest
    report = AggregateCellsReport(
        seeds=seeds_t, fleet_sizes=sizes, days=days_t, hours=hours, quick=quick,
        resamples=count, measurements=measurements,
        table=_table(measurements, sizes, seeds_t, days_t, weights, occupancy),
        window_fits=fits[0], day_fits=fits[1], occupancy=occupancy,
        held_out=_held_out(seed_days, weights, days_t, pooled, fits, first_seed),
        ceiling=_ceiling(seed_days, days_t, pooled, city, occupancy),
        review=review_arithmetic(), projections=())
    return replace(report, projections=_projections(report))
