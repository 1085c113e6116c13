"""How many cells there are to touch at all (`CityCeiling`): the cells of the home disc
and of everywhere a phone can reach, the cells the pooled fleet touched, Chao2's richness
estimate per date, and the occupancy model's limit.

Invariant: the touched cells and the Chao2 estimates come from the pooled fleet (every
seed's largest fleet), the same fleet that is held out of the curve fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.capacity.aggregates._types import I64
from simulator.capacity.aggregates.fleet import _SeedDay
from simulator.capacity.aggregates.geometry import _reach_km, geohash_cells_in_disc
from simulator.capacity.aggregates.occupancy import OccupancyModel
from simulator.sensors.city import City


@dataclass(frozen=True)
class CityCeiling:
    """How many cells there are to touch at all."""

    home_disc_km: float
    cells_in_home_disc: int  # every phone sleeps in here
    reach_km: float  # home disc + longest commute + farthest outing from work
    cells_within_reach: int  # where a phone can be (GPS error aside)
    cells_touched: int  # distinct geohashes in every measured batch
    cells_touched_by_date: tuple[tuple[str, int], ...]  # by the pooled fleet, per date
    chao2_cells_by_date: tuple[tuple[str, float], ...]  # richness estimate of the date
    chao2_phones: int  # phones (of all seeds) the estimates are drawn from
    occupancy_cells_per_window: float  # the occupancy model at n -> infinity
    occupancy_cells_per_day: float


def _chao2(incidence: I64, phones: int) -> float:
    """Chao (1987) incidence-based richness: observed + (m-1)/m Q1^2 / (2 Q2), where Qk
    is the number of cells touched by exactly k of the m phones (bias-corrected form
    when Q2 = 0)."""
    q1 = float(np.count_nonzero(incidence == 1))
    q2 = float(np.count_nonzero(incidence == 2))
    factor = (phones - 1) / phones
    extra = q1 * q1 / (2 * q2) if q2 > 0 else q1 * (q1 - 1) / 2
    return float(incidence.size + factor * extra)


def _ceiling(seed_days: Sequence[_SeedDay], days: Sequence[str], phones: int, city: City,
             occupancy: OccupancyModel) -> CityCeiling:
    touched, chao2 = [], []
    for d in days:
        codes = np.concatenate([sd.incidence for sd in seed_days if sd.day == d])
        incidence = np.unique(codes, return_counts=True)[1]
        touched.append((d, int(incidence.size)))
        chao2.append((d, _chao2(incidence, phones)))
    everywhere = np.unique(np.concatenate([sd.incidence for sd in seed_days])).size
    window, day = occupancy.ceiling()
    return CityCeiling(city.radius_km, geohash_cells_in_disc(city, city.radius_km * 1000.0),
                       _reach_km(city), geohash_cells_in_disc(city, _reach_km(city) * 1000.0),
                       int(everywhere), tuple(touched), tuple(chao2), phones, window, day)
