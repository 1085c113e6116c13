"""The aggregate rows of a fleet's last 30 days, as the cells model projects them: how
many cells each 5-minute window has, in which rings of the city, and which geohashes.

The occupancy model (`capacity.aggregates.OccupancyModel`) gives, per 5-minute window of
the day and per 250 m ring around the city centre, the chance that one phone touches a
cell of the ring; at n users a ring then holds E[w, r] = cells_r (1 - (1 - p_wr)^n)
touched cells in window w, and D[r] likewise in a whole day. These are scaled (capped
at what a ring holds) to the model's 30-day projection (`project_rows`), rounded to
whole cells with the exact total, and filled with real precision-6 geohashes of the
ring: each day touches D[r] cells of ring r (an arc of a seeded permutation of the
ring's cells), and each window a subset of them (an arc of the day's cells).

Invariants:
- `RowPlan.cells` sums to the requested 30-day rows exactly; no window has a cell twice;
  a window's cells lie within its day's cells, so the daily table (one row per day and
  geohash that any window of the day has) holds exactly what the job would write.
- Deterministic: the same model, users, seed and rows give the same geohashes.
- Windows are independent draws within the day's cells (a phone's persistence from one
  window to the next is not modelled): an hour's distinct tiles are an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.capacity.aggregates import OccupancyModel
from simulator.errors import UsageError
from simulator.instants import DAY_MS as DAY_MS
from simulator.instants import WINDOW_MS as WINDOW_MS
from simulator.sensors.city import BERLIN, METRES_PER_DEGREE_LAT, City
from simulator.sensors.geohash import encode

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
WINDOWS_PER_DAY = DAY_MS // WINDOW_MS
SPAN_DAYS = 30
_CELL_LAT_DEG = 180.0 / (1 << 15)  # precision 6: 15 bits of latitude
_CELL_LON_DEG = 360.0 / (1 << 15)  # and 15 of longitude


@dataclass(frozen=True, eq=False)
class RingCells:
    """Precision-6 cells whose centres lie within `rings` rings of `ring_m` around the
    city centre (the city's equirectangular metres, as `City.to_latlon`), grouped by
    ring: ring r's cells are `geohash[start[r]:start[r + 1]]`, sorted."""

    ring_m: float
    geohash: tuple[str, ...]
    start: I64

    @property
    def sizes(self) -> I64:
        return np.diff(self.start)


def ring_cells(rings: int, ring_m: float, city: City = BERLIN) -> RingCells:
    """The cells of each ring (see `RingCells`)."""
    radius = rings * ring_m
    lon_m = METRES_PER_DEGREE_LAT * math.cos(math.radians(city.lat))
    rows = np.arange(math.floor((city.lat - radius / METRES_PER_DEGREE_LAT + 90) / _CELL_LAT_DEG),
                     math.floor((city.lat + radius / METRES_PER_DEGREE_LAT + 90) / _CELL_LAT_DEG)
                     + 1)
    cols = np.arange(math.floor((city.lon - radius / lon_m + 180) / _CELL_LON_DEG),
                     math.floor((city.lon + radius / lon_m + 180) / _CELL_LON_DEG) + 1)
    lat = -90.0 + (np.repeat(rows, cols.size) + 0.5) * _CELL_LAT_DEG
    lon = -180.0 + (np.tile(cols, rows.size) + 0.5) * _CELL_LON_DEG
    distance = np.hypot((lat - city.lat) * METRES_PER_DEGREE_LAT, (lon - city.lon) * lon_m)
    keep = distance < radius
    ring = (distance[keep] // ring_m).astype(np.int64)
    codes = encode(lat[keep], lon[keep], 6)
    order = np.lexsort((codes, ring))
    start = np.searchsorted(ring[order], np.arange(rings + 1)).astype(np.int64)
    return RingCells(ring_m, tuple(c.decode() for c in codes[order].tolist()), start)


def _touched(p: F64, n: float) -> F64:
    return np.asarray(-np.expm1(n * np.log1p(-np.minimum(p, 1.0 - 1e-15))), dtype=np.float64)


def expected_cells(model: OccupancyModel, users: float) -> tuple[F64, F64]:
    """(E[window of day, ring], D[ring]): touched cells at `users` users, week-weighted
    over the model's dates (the plug-in estimate; scaled to the projection later)."""
    trials = model.units * model.phones_per_unit * np.maximum(model.ring_cells, 1)
    window = model.ring_cells * _touched(model.window_rings.sum(axis=0) / trials, users)
    day = model.ring_cells * _touched(model.day_rings.sum(axis=0) / trials, users)
    if window.shape[1] != WINDOWS_PER_DAY:
        raise UsageError(f"the cells model must cover whole days ({WINDOWS_PER_DAY} windows), "
                         f"it has {window.shape[1]}: measure it with hours=24")
    return (np.asarray(np.tensordot(model.day_weights, window, axes=1), dtype=np.float64),
            np.asarray(model.day_weights @ day, dtype=np.float64))


def fill(expected: F64, caps: F64, total: int) -> I64:
    """Whole numbers x <= caps summing to `total`, proportional to `expected` where the
    caps allow: x = min(s expected, caps) for the s that makes the sum `total`, then the
    largest remainders. Where even the places with some expectation cannot hold `total`
    (a jackknifed projection beyond the cells the measured phones entered), the rest goes
    to the other places in proportion to their caps. Raises UsageError when the caps
    cannot hold `total`."""
    if total > caps.sum() + 1e-9 or total < 0:
        raise UsageError(f"{total} cells do not fit in {caps.sum():.0f} places")
    if caps[expected > 0].sum() < total:
        expected = expected + caps * 1e-9 * max(float(expected.max()), 1.0)
    lo, hi = 0.0, 1.0
    while np.minimum(hi * expected, caps).sum() < total and hi < 1e12:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(mid * expected, caps).sum() <= total else (lo, mid)
    x = np.minimum(lo * expected, caps)
    whole = np.floor(x).astype(np.int64)
    short = total - int(whole.sum())
    # the largest remainders first; a place at its cap takes nothing more
    priority = np.where(whole < caps, x - whole, -1.0)
    chosen = np.argsort(-priority, kind="stable")[:short]
    if short and priority[chosen[-1]] < 0:
        raise UsageError(f"{total} cells do not fit in their places")
    whole[chosen] += 1
    return whole


@dataclass(frozen=True, eq=False)
class RowPlan:
    """The 5-minute table's rows over the 30 days before `now_ms` (`cells[k, r]`: cells of
    ring r in window k, window 0 the oldest) and the cells each day touches per ring."""

    now_ms: int
    users: int
    day_cells: I64  # (rings,)
    cells: I64  # (windows, rings)

    @property
    def first_window_ms(self) -> int:
        return self.now_ms - int(self.cells.shape[0]) * WINDOW_MS


def plan_rows(model: OccupancyModel, rings: RingCells, users: int, now_ms: int,
              rows_5m: int, rows_daily: float) -> RowPlan:
    """`rows_5m` cells over the 30 days before `now_ms` (a window boundary), in each
    window as many per ring as the model expects at that time of day, within the
    `rows_daily` / 30 cells a day touches (see the module docstring)."""
    if now_ms % WINDOW_MS:
        raise UsageError("now must be a 5-minute window boundary")
    window_e, day_e = expected_cells(model, users)
    sizes = rings.sizes.astype(np.float64)
    if sizes.size != day_e.size:
        raise UsageError(f"{sizes.size} rings of cells for a model of {day_e.size} rings")
    day = fill(day_e, sizes, min(round(rows_daily / SPAN_DAYS), int(sizes.sum())))
    windows = SPAN_DAYS * WINDOWS_PER_DAY
    of_day = (now_ms // WINDOW_MS - windows + np.arange(windows)) % WINDOWS_PER_DAY
    expected = window_e[of_day]
    caps = np.broadcast_to(day.astype(np.float64), expected.shape)
    cells = fill(expected.ravel(), caps.ravel(), rows_5m).reshape(expected.shape)
    return RowPlan(now_ms, users, day, cells)


@dataclass(frozen=True, eq=False)
class TileRows:
    """The rows of the newest windows of a plan: window start (ms) and cell (an index
    into `RingCells.geohash`) of each, newest window first."""

    window_ms: I64
    cell: I64


def draw_rows(plan: RowPlan, rings: RingCells, rows: int, seed: int) -> TileRows:
    """The plan's `rows` newest rows (all of the newest windows, part of the oldest one
    needed), their geohashes drawn as the module docstring says."""
    rng = np.random.default_rng([seed, plan.users])
    sizes = rings.sizes
    order = np.argsort(np.repeat(np.arange(sizes.size), sizes) + rng.random(int(sizes.sum())),
                       kind="stable")  # a random order of each ring's cells, ring by ring
    windows, n_rings = plan.cells.shape
    days = windows // WINDOWS_PER_DAY + 2
    day_offset = np.floor(rng.random((days, n_rings)) * np.maximum(sizes, 1)).astype(np.int64)
    window_offset = np.floor(rng.random((windows, n_rings))
                             * np.maximum(plan.day_cells, 1)).astype(np.int64)
    if not 0 <= rows <= int(plan.cells.sum()):
        raise UsageError(f"the plan has {int(plan.cells.sum())} rows, {rows} asked for")
    newest_first = plan.cells[::-1]
    per_window = newest_first.sum(axis=1)
    needed = int(np.searchsorted(np.cumsum(per_window), rows) + 1)
    k, r = np.nonzero(newest_first[:needed])
    count = newest_first[k, r]
    k, r = np.repeat(k, count), np.repeat(r, count)
    t = np.arange(k.size) - np.repeat(np.cumsum(count) - count, count)
    window = windows - 1 - k  # back to oldest-first numbering
    window_ms = plan.first_window_ms + window * WINDOW_MS
    date = (window_ms // DAY_MS) - plan.first_window_ms // DAY_MS
    in_day = (window_offset[window, r] + t) % np.maximum(plan.day_cells[r], 1)
    in_ring = (day_offset[date, r] + in_day) % np.maximum(sizes[r], 1)
    cell = order[rings.start[r] + in_ring]
    return TileRows(window_ms[:rows].astype(np.int64), cell[:rows].astype(np.int64))


def distinct_cells(rows: TileRows, since_ms: int, until_ms: int) -> int:
    """Distinct geohashes of the rows whose window starts in [since_ms, until_ms)."""
    mine = (rows.window_ms >= since_ms) & (rows.window_ms < until_ms)
    return int(np.unique(rows.cell[mine]).size)


def daily_cells(rows: TileRows) -> tuple[I64, I64, I64]:
    """(day start ms, cell) of each distinct (UTC day, geohash) of the rows, in order,
    and for each row the index of its (day, geohash)."""
    span = int(rows.cell.max()) + 1 if rows.cell.size else 1
    keys, inverse = np.unique(rows.window_ms // DAY_MS * span + rows.cell,
                              return_inverse=True)
    return ((keys // span * DAY_MS).astype(np.int64), (keys % span).astype(np.int64),
            inverse.reshape(-1).astype(np.int64))
