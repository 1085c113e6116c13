"""The occupancy model: E[cells](n) = sum over cells j of 1 - (1 - p_j)^n, where p_j is
the chance that one phone touches cell j (in a window, or in a day).

Phones are independent and the city is rotationally symmetric (homes uniform in a disc,
commutes and outings at uniform angles), so p_j depends on the distance of cell j from the
centre only: it is estimated per 250 m ring (`geometry`) from all measured phones, unseen
cells of a ring included, and jackknifed over blocks of phones. Fitted curves chase the
range they are fitted on: fitted up to 3,000 phones, the saturating curve puts 40 % too
few cells at 15,000 and the power law twice too many, while the occupancy model built
from one seed's 3,000 phones is within 2.5 % there (and, on a Wednesday, within 2 % per
window and 5 % per day at 30,000), so projections use it (`HeldOutFleet` repeats the
check every run).

Invariants:
- The jackknife units are (seed, phone block), each of `phones_per_unit` phones; every
  estimate is week-weighted over the measured dates.
- As n grows without bound the model counts every cell of each ring that any measured
  phone entered, and no more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.capacity.aggregates._types import F64, I64
from simulator.capacity.aggregates.fleet import BLOCKS_PER_SEED, _SeedDay
from simulator.capacity.aggregates.geometry import RING_M


def _touched(p: F64, n: float) -> F64:
    """Chance that at least one of n phones touches a cell each touches with chance p."""
    if math.isinf(n):
        return (p > 0).astype(np.float64)
    return np.asarray(-np.expm1(n * np.log1p(-p)), dtype=np.float64)


@dataclass(frozen=True)
class OccupancyEstimate:
    """Expected cells at `phones` phones: delete-one-block jackknife estimates (bias
    corrected) with 95 % intervals (estimate +- 1.96 jackknife standard errors)."""

    phones: float
    cells_per_window: float
    cells_per_window_low: float
    cells_per_window_high: float
    cells_per_day: float
    cells_per_day_low: float
    cells_per_day_high: float


@dataclass(frozen=True, eq=False)
class OccupancyModel:
    """E[cells](n) = sum_j 1 - (1 - p_j)^n with p_j pooled per ring (module docstring).

    `window_rings[u, d, w, r]` and `day_rings[u, d, r]` count the phones of unit u (a
    block of `phones_per_unit` phones) in ring r in window w of date d, or in ring r's
    cells on date d (one count per phone and cell); `ring_cells[r]` is how many cells
    ring r has. The plug-in estimate is biased low for small samples (1 - (1 - p)^n is
    concave in p), so estimates are jackknifed over the units.
    """

    ring_m: float
    ring_cells: I64
    phones_per_unit: int
    day_weights: F64  # per measured date
    window_rings: I64
    day_rings: I64

    @property
    def units(self) -> int:
        return int(self.window_rings.shape[0])

    @property
    def phones(self) -> int:
        """Phones the estimate is drawn from."""
        return self.units * self.phones_per_unit

    def _plug_in(self, window_counts: I64, day_counts: I64, units: int, n: float
                 ) -> tuple[float, float]:
        """(cells per window, cells per day) at n phones from counts over `units` units,
        week-weighted over the measured dates."""
        trials = units * self.phones_per_unit * np.maximum(self.ring_cells, 1)
        window = (self.ring_cells * _touched(window_counts / trials, n)).sum(axis=2).mean(axis=1)
        day = (self.ring_cells * _touched(day_counts / trials, n)).sum(axis=1)
        return float(self.day_weights @ window), float(self.day_weights @ day)

    def estimate(self, n: float) -> OccupancyEstimate:
        """Cells at n phones (see `OccupancyEstimate`)."""
        window_all, day_all = self.window_rings.sum(axis=0), self.day_rings.sum(axis=0)
        full = np.array(self._plug_in(window_all, day_all, self.units, n))
        if self.units < 2 or math.isinf(n):
            window, day = float(full[0]), float(full[1])
            return OccupancyEstimate(n, window, window, window, day, day, day)
        left_out = np.array([self._plug_in(window_all - self.window_rings[u],
                                           day_all - self.day_rings[u], self.units - 1, n)
                             for u in range(self.units)])
        k = self.units
        corrected = k * full - (k - 1) * left_out.mean(axis=0)
        half = 1.96 * np.sqrt((k - 1) / k * ((left_out - left_out.mean(axis=0)) ** 2).sum(axis=0))
        return OccupancyEstimate(n, float(corrected[0]), float(corrected[0] - half[0]),
                                 float(corrected[0] + half[0]), float(corrected[1]),
                                 float(corrected[1] - half[1]), float(corrected[1] + half[1]))

    def cells_per_window(self, n: float) -> float:
        return self.estimate(n).cells_per_window

    def cells_per_day(self, n: float) -> float:
        return self.estimate(n).cells_per_day

    def ceiling(self) -> tuple[float, float]:
        """(cells per window, cells per day) as n grows without bound: every cell of a
        ring that any measured phone entered."""
        top = self.estimate(math.inf)
        return top.cells_per_window, top.cells_per_day


def _occupancy(seed_days: Sequence[_SeedDay], days: Sequence[str], weights: dict[str, float],
               ring_cells: I64, largest: int) -> OccupancyModel:
    """The occupancy model of all `seed_days`; units are (seed, phone block)."""
    by_seed: dict[int, list[_SeedDay]] = {}
    for sd in seed_days:
        by_seed.setdefault(sd.rows[0].seed, []).append(sd)
    ordered = [sorted(v, key=lambda sd: days.index(sd.day)) for v in by_seed.values()]
    window = np.concatenate([np.stack([sd.window_rings for sd in v], axis=1) for v in ordered])
    day = np.concatenate([np.stack([sd.day_rings for sd in v], axis=1) for v in ordered])
    return OccupancyModel(RING_M, ring_cells, largest // BLOCKS_PER_SEED,
                          np.array([weights[d] for d in days]), window, day)
