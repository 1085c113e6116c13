"""Measuring fleets: each seed's largest fleet generated on each date, the cells of its
fleets of n phones counted (`FleetCells`), and the per-ring phone counts the occupancy
model needs (`_SeedDay`).

Invariants:
- A measured day is one UTC day's windows (the first `hours` of it). The fleet is
  generated from `MARGIN_H` before to `MARGIN_H` after, so a batch that a skewed clock
  moves into the day counts and one it moves out does not (skews are N(0, 1.5 s), and
  N(0, 5 min) for 2 % of phones: an hour is 12 sigma).
- A fleet of n phones is a block of n consecutive phones of a seed's largest fleet,
  phones [k n, (k + 1) n): phone i's stream is a pure function of (seed, i), so each
  block is exactly a fleet of n phones; disjoint blocks are averaged. Phones of
  different seeds are independent too, so the union of all seeds' largest fleets is a
  larger fleet, held out of the curve fits to check them (`HeldOutFleet`). The largest
  fleet is also cut into `BLOCKS_PER_SEED` blocks, the occupancy model's jackknife units.
- Weekday and weekend dates are weighted 5/7 and 2/7 when both are measured
  (`_week_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from simulator.capacity.aggregates._types import I64, Progress
from simulator.capacity.aggregates.counting import (
    _CODE_BITS,
    _CODE_MASK,
    WINDOW_MS,
    WINDOWS_PER_HOUR,
    _geohash_code,
)
from simulator.capacity.aggregates.geometry import _ring_of
from simulator.errors import UsageError
from simulator.instants import HOUR_MS, MS_PER_S
from simulator.sensors.city import City
from simulator.sensors.generator import FleetConfig, FleetGenerator

MARGIN_H = 1
BLOCKS_PER_SEED = 5  # occupancy bootstrap units: disjoint phone blocks of each seed
_REP_SHIFT = _CODE_BITS + 9  # above 9 bits of window index (288 < 512)


@dataclass(frozen=True)
class FleetCells:
    """Fleets of `phones` phones of one seed on one date: means over `replicates`
    disjoint fleets."""

    seed: int
    day: str  # ISO date (UTC)
    phones: int
    replicates: int
    cells_per_window_mean: float
    cells_per_window_peak: float  # the busiest window of the day
    cells_per_day: float


@dataclass(frozen=True)
class _SeedDay:
    """What one seed's largest fleet touched on one date."""

    day: str
    rows: tuple[FleetCells, ...]
    window_keys: I64  # distinct (window << 30 | geohash code) of all its phones
    incidence: I64  # geohash code of each distinct (phone, geohash)
    window_rings: I64  # (blocks, windows, rings): phones in each ring in each window
    day_rings: I64  # (blocks, rings): phones that touched each ring's cells that day
    windows: int


def _day_start_ms(day: str) -> int:
    try:
        parsed = date.fromisoformat(day)
    except ValueError as exc:
        raise UsageError(f"dates must be ISO dates like 2024-01-03, got {day!r}") from exc
    return int(datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC).timestamp()) * MS_PER_S


def _day_batches(seed: int, phones: int, day: str, hours: int, progress: Progress | None
                 ) -> tuple[I64, I64, I64]:
    """(phone, window index in the day, geohash code) of every batch that the backend
    files under the first `hours` of UTC date `day`."""
    start = _day_start_ms(day)
    config = FleetConfig(seed, phones, start - MARGIN_H * HOUR_MS, hours + 2 * MARGIN_H)
    parts: list[tuple[I64, I64, I64]] = []
    total = len(config.hour_blocks)
    for k, block in enumerate(FleetGenerator(config).iter_blocks()):
        offset = block.period_start_ms - start
        keep = (offset >= 0) & (offset < hours * HOUR_MS)
        parts.append((block.phone[keep], offset[keep] // WINDOW_MS,
                      _geohash_code(block.geohash[keep])))
        if progress is not None:
            progress(f"aggregates: seed {seed}, {day}, {phones} phones: hour {k + 1}/{total}")
    phone, window, code = zip(*parts, strict=True)
    return np.concatenate(phone), np.concatenate(window), np.concatenate(code)


def _size_cells(seed: int, day: str, batches: tuple[I64, I64, I64], phones: int,
                largest: int, windows: int) -> FleetCells:
    """Means over the disjoint fleets of `phones` phones within the largest fleet."""
    phone, window, code = batches
    reps = largest // phones
    mine = phone < reps * phones
    rep = phone[mine] // phones
    keys = np.unique((rep << _REP_SHIFT) | (window[mine] << _CODE_BITS) | code[mine])
    per_rep = np.bincount(keys >> _REP_SHIFT, minlength=reps)
    per_rep_window = np.bincount(keys >> _CODE_BITS, minlength=reps << (_REP_SHIFT - _CODE_BITS))
    peak = per_rep_window.reshape(reps, -1)[:, :windows].max(axis=1)
    daily = np.bincount(np.unique((rep << _CODE_BITS) | code[mine]) >> _CODE_BITS,
                        minlength=reps)
    return FleetCells(seed, day, phones, reps, float(per_rep.mean() / windows),
                      float(peak.mean()), float(daily.mean()))


def _ring_counts(batches: tuple[I64, I64, I64], largest: int, windows: int,
                 ring_cells: I64, city: City) -> tuple[I64, I64, I64]:
    """Phone incidence per (block, window, ring) and per (block, ring) for the
    occupancy model, and the codes of the distinct (phone, cell) pairs."""
    phone, window, code = batches
    rings = ring_cells.size
    block = phone * BLOCKS_PER_SEED // largest
    # one batch per phone per window bin, so batches are phones
    flat = (block * windows + window) * rings + _ring_of(city, code, rings)
    window_rings = np.bincount(flat, minlength=BLOCKS_PER_SEED * windows * rings)
    pairs = np.unique((phone << _CODE_BITS) | code)
    pair_code = pairs & _CODE_MASK
    pair_block = (pairs >> _CODE_BITS) * BLOCKS_PER_SEED // largest
    day_rings = np.bincount(pair_block * rings + _ring_of(city, pair_code, rings),
                            minlength=BLOCKS_PER_SEED * rings)
    return (window_rings.reshape(BLOCKS_PER_SEED, windows, rings).astype(np.int64),
            day_rings.reshape(BLOCKS_PER_SEED, rings).astype(np.int64), pair_code)


def _measure_seed_day(seed: int, day: str, sizes: Sequence[int], hours: int,
                      ring_cells: I64, city: City, progress: Progress | None) -> _SeedDay:
    largest = max(sizes)
    batches = _day_batches(seed, largest, day, hours, progress)
    windows = hours * WINDOWS_PER_HOUR
    rows = tuple(_size_cells(seed, day, batches, n, largest, windows) for n in sizes)
    window_rings, day_rings, incidence = _ring_counts(batches, largest, windows, ring_cells,
                                                      city)
    _, window, code = batches
    return _SeedDay(day, rows, np.unique((window << _CODE_BITS) | code), incidence,
                    window_rings, day_rings, windows)


def _week_weights(days: Sequence[str]) -> dict[str, float]:
    """5/7 for weekdays and 2/7 for weekend days, shared among the dates of each kind
    (renormalised when only one kind is measured)."""
    weekend = {d: date.fromisoformat(d).weekday() >= 5 for d in days}
    kinds = {True: sum(weekend.values()), False: len(days) - sum(weekend.values())}
    share = {True: 2 / 7 if kinds[True] else 0.0, False: 5 / 7 if kinds[False] else 0.0}
    total = share[True] + share[False]
    return {d: share[w] / total / kinds[w] for d, w in weekend.items()}


def _seed_values(measurements: Sequence[FleetCells], weights: dict[str, float],
                 attribute: str) -> dict[tuple[int, int], float]:
    """Week-weighted value per (seed, phones)."""
    out: dict[tuple[int, int], float] = {}
    for m in measurements:
        key = (m.seed, m.phones)
        out[key] = out.get(key, 0.0) + weights[m.day] * float(getattr(m, attribute))
    return out
