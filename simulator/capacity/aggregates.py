"""Rows of the aggregate tables: the (5-minute window, geohash) and (day, geohash) cells
that simulated fleets really touch, modelled against fleet size beside review §5.3.

Review §5.3 says `sensor_aggregates_5m` grows by 26K rows a month and
`sensor_aggregates_daily` by 900 at 1K users: three active cells per 5-minute window
(8,640 windows in a 30-day month) and thirty a day (`review_arithmetic`). Here the cells
are counted on generated fleets and modelled two ways:

- curves of cells against fleet size n (`scipy.optimize.curve_fit`): a saturating
  K (1 - exp(-(n/s)^b)) and a power law a n^b, bootstrapped over seeds;
- an occupancy model, E[cells](n) = sum over cells j of 1 - (1 - p_j)^n, where p_j is the
  chance that one phone touches cell j (in a window, or in a day). Phones are
  independent and the city is rotationally symmetric (homes uniform in a disc, commutes
  and outings at uniform angles), so p_j depends on the distance of cell j from the
  centre only: it is estimated per 250 m ring from all measured phones, unseen cells of
  a ring included, and jackknifed over blocks of phones. Fitted curves chase the range
  they are fitted on: fitted up to 3,000 phones, the saturating curve puts 40 % too few
  cells at 15,000 and the power law twice too many, while the occupancy model built from
  one seed's 3,000 phones is within 2.5 % there (and, on a Wednesday, within 2 % per
  window and 5 % per day at 30,000), so projections use it (`HeldOutFleet` repeats the
  check every run).

Invariants:
- A cell is exactly a row the aggregation job (`simulator.backend.jobs.aggregate`)
  writes. Its window is `date_bin('5 minutes', timestamp_utc, 2020-01-01)`, which is
  `timestamp_ms // 300_000` (the origin is a whole number of windows after the epoch); its
  day is the UTC date, `timestamp_ms // 86_400_000`. `timestamp_utc` is the payload's
  `timestamp`, the phone's own (skewed) clock at its window start, i.e.
  `BatchBlock.period_start_ms`; the geohash is the payload's, `BatchBlock.geohash`
  (`simulator.sensors.geohash.encode`, precision 6). `check_against_job` holds the
  counts to the job's rows on a real PostgreSQL, cell by cell.
- A measured day is one UTC day's windows (the first `hours` of it). The fleet is
  generated from `MARGIN_H` before to `MARGIN_H` after, so a batch that a skewed clock
  moves into the day counts and one it moves out does not (skews are N(0, 1.5 s), and
  N(0, 5 min) for 2 % of phones: an hour is 12 sigma).
- A fleet of n phones is a block of n consecutive phones of a seed's largest fleet,
  phones [k n, (k + 1) n): phone i's stream is a pure function of (seed, i), so each
  block is exactly a fleet of n phones; disjoint blocks are averaged. Phones of
  different seeds are independent too, so the union of all seeds' largest fleets is a
  larger fleet, held out of the curve fits to check them.
- Months are 30 days (`DAYS_PER_MONTH`), six months 180 days, a year 365 days. Weekday
  and weekend dates are weighted 5/7 and 2/7 when both are measured.
- The report is a pure function of its arguments: bootstrap generators are keyed by
  the seeds and sizes (`SeedSequence`); no wall clock is read.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeWarning, curve_fit

from simulator.clock import BATCH_INTERVAL_S, DAY_S, MS_PER_S
from simulator.errors import UsageError
from simulator.sensors.batch import BatchBlock
from simulator.sensors.city import BERLIN, METRES_PER_DEGREE_LAT, City
from simulator.sensors.fleet import FleetConfig, FleetGenerator
from simulator.sensors.plan import OUTDOOR_SPOT_M

__all__ = [
    "DAYS_PER_MONTH",
    "AggregateCellsReport",
    "CellCount",
    "CellFits",
    "CityCeiling",
    "CurveFit",
    "DayCells",
    "FleetCells",
    "HeldOutFleet",
    "JobCheck",
    "OccupancyEstimate",
    "OccupancyModel",
    "ReviewArithmetic",
    "RowProjection",
    "SizeRow",
    "check_against_job",
    "count_block_cells",
    "count_cells",
    "fit_curve",
    "geohash_cells_in_disc",
    "measure_aggregate_cells",
    "power_law",
    "project_rows",
    "review_arithmetic",
    "saturating",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bytes = npt.NDArray[np.bytes_]
Progress = Callable[[str], None]
Table = Literal["sensor_aggregates_5m", "sensor_aggregates_daily"]
Model = Literal["occupancy", "saturating", "power"]

WINDOW_MS = BATCH_INTERVAL_S * MS_PER_S  # the job's date_bin('5 minutes')
DAY_MS = DAY_S * MS_PER_S
HOUR_MS = 3_600_000
WINDOWS_PER_HOUR = HOUR_MS // WINDOW_MS
WINDOWS_PER_DAY = DAY_MS // WINDOW_MS  # 288
DAYS_PER_MONTH = 30
PERIODS_DAYS: tuple[tuple[str, int], ...] = (("month", 30), ("6 months", 180), ("year", 365))
REVIEW_ROWS_1K: dict[tuple[str, int], int] = {  # review §5.3, 1K users
    ("sensor_aggregates_5m", 30): 26_000, ("sensor_aggregates_5m", 180): 156_000,
    ("sensor_aggregates_5m", 365): 315_000, ("sensor_aggregates_daily", 30): 900,
    ("sensor_aggregates_daily", 180): 5_400, ("sensor_aggregates_daily", 365): 10_800}
PROJECTED_USERS = (1_000, 10_000, 100_000)
MARGIN_H = 1
GEOHASH_PRECISION = 6
MAX_COMMUTE_KM = 40.0  # simulator.sensors.traits caps home-to-work distances here
RING_M = 250.0  # width of the rings over which the occupancy model pools cells
RING_MARGIN_KM = 5.0  # rings reach this far past where a phone can be (GPS error)
BLOCKS_PER_SEED = 5  # occupancy bootstrap units: disjoint phone blocks of each seed

QUICK_SIZES = (10, 30, 100, 300, 1_000)
QUICK_SEEDS = (1, 2)
QUICK_DATES = ("2024-01-03",)  # a Wednesday
FULL_SIZES = (10, 30, 100, 300, 1_000, 3_000)
FULL_SEEDS = (1, 2, 3, 4, 5)
FULL_DATES = ("2024-01-03", "2024-01-06")  # a Wednesday and a Saturday
QUICK_RESAMPLES = 100
FULL_RESAMPLES = 200

_BASE32_VALUE = np.full(256, -1, dtype=np.int64)
_BASE32_VALUE[np.frombuffer(b"0123456789bcdefghjkmnpqrstuvwxyz", dtype=np.uint8)] = np.arange(32)
_CODE_BITS = 5 * GEOHASH_PRECISION  # 30: a precision-6 geohash as an integer
_AXIS_BITS = _CODE_BITS // 2  # 15 bits of longitude and 15 of latitude
_CODE_MASK = (1 << _CODE_BITS) - 1
_REP_SHIFT = _CODE_BITS + 9  # above 9 bits of window index (288 < 512)


# -- counting -------------------------------------------------------------------------


@dataclass(frozen=True)
class CellCount:
    """Distinct cells of some batches: the rows each aggregate table gets from them."""

    cells_5m: int  # distinct (5-minute window, geohash)
    cells_daily: int  # distinct (UTC day, geohash)


def _dense(values: npt.NDArray[Any]) -> I64:
    """Each value's index among the distinct values (for pairing with other keys)."""
    return np.unique(values, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _distinct_pairs(a: I64, b: I64) -> int:
    """Number of distinct (a, b) pairs."""
    if a.size == 0:
        return 0
    return int(np.unique(_dense(a) * (int(b.max()) + 1) + b).size)


def count_cells(timestamp_ms: npt.ArrayLike, geohash: npt.ArrayLike) -> CellCount:
    """The aggregate rows that batches with these payload timestamps (epoch ms, the
    phone's clock) and geohashes (str or bytes, any precision) produce."""
    ts = np.asarray(timestamp_ms, dtype=np.int64).reshape(-1)
    gh = np.asarray(geohash).reshape(-1)
    if ts.shape != gh.shape:
        raise UsageError(f"{ts.size} timestamps but {gh.size} geohashes: give one each")
    cells = _dense(gh)
    return CellCount(_distinct_pairs(ts // WINDOW_MS, cells), _distinct_pairs(ts // DAY_MS, cells))


def count_block_cells(blocks: Iterable[BatchBlock]) -> CellCount:
    """`count_cells` of every batch in `blocks`, as the backend would receive them."""
    parts = list(blocks)
    if not parts:
        return CellCount(0, 0)
    return count_cells(np.concatenate([b.period_start_ms for b in parts]),
                       np.concatenate([b.geohash for b in parts]))


def _geohash_code(geohash: Bytes) -> I64:
    """Precision-6 geohashes as 30-bit integers, the standard bit string (a bijection)."""
    if geohash.dtype != np.dtype(f"S{GEOHASH_PRECISION}"):
        raise UsageError(f"expected precision-{GEOHASH_PRECISION} geohashes, got {geohash.dtype}")
    chars = _BASE32_VALUE[np.frombuffer(geohash.tobytes(), dtype=np.uint8)]
    chars = chars.reshape(-1, GEOHASH_PRECISION)
    if chars.size and int(chars.min()) < 0:
        raise UsageError("a geohash holds a character outside the geohash alphabet")
    weights = 32 ** np.arange(GEOHASH_PRECISION - 1, -1, -1, dtype=np.int64)
    return np.asarray(chars @ weights, dtype=np.int64)


# -- the review's arithmetic ----------------------------------------------------------


@dataclass(frozen=True)
class ReviewArithmetic:
    """What review §5.3's aggregate rows imply (1K users, 30-day months)."""

    windows_per_month: int  # 30 days x 288
    cells_per_window: float  # 26K / 8,640
    cells_per_day: float  # 900 / 30
    six_month_ratio_5m: float  # 156K / 26K
    six_month_ratio_daily: float  # 5.4K / 900
    daily_year_months: float  # 10.8K / 900: twelve 30-day months
    daily_year_days: float  # 10.8K / 30 a day = 360 days
    five_min_year_windows: float  # 315K / 3 cells (rounded)
    five_min_year_days: float  # those windows / 288: about 365 days


def review_arithmetic(*, rows_5m_month: int = 26_000, rows_5m_6_months: int = 156_000,
                      rows_5m_year: int = 315_000, rows_daily_month: int = 900,
                      rows_daily_6_months: int = 5_400, rows_daily_year: int = 10_800
                      ) -> ReviewArithmetic:
    """Review §5.3's figures (the defaults) turned into cells per window and per day and
    into the number of days each of its years counts."""
    windows = DAYS_PER_MONTH * int(WINDOWS_PER_DAY)
    per_window = rows_5m_month / windows
    per_day = rows_daily_month / DAYS_PER_MONTH
    year_windows = rows_5m_year / round(per_window)
    return ReviewArithmetic(
        windows_per_month=windows, cells_per_window=per_window, cells_per_day=per_day,
        six_month_ratio_5m=rows_5m_6_months / rows_5m_month,
        six_month_ratio_daily=rows_daily_6_months / rows_daily_month,
        daily_year_months=rows_daily_year / rows_daily_month,
        daily_year_days=rows_daily_year / per_day,
        five_min_year_windows=year_windows,
        five_min_year_days=year_windows / WINDOWS_PER_DAY)


# -- geohash cells around the city ----------------------------------------------------

_CELL_LAT_DEG = 180.0 / (1 << _AXIS_BITS)
_CELL_LON_DEG = 360.0 / (1 << _AXIS_BITS)


def _cell_indices(code: I64) -> tuple[I64, I64]:
    """(latitude row, longitude column) of precision-6 geohash codes: bits alternate
    longitude and latitude from the top, longitude first."""
    lat = np.zeros(code.shape, dtype=np.int64)
    lon = np.zeros(code.shape, dtype=np.int64)
    for i in range(_CODE_BITS):
        bit = (code >> (_CODE_BITS - 1 - i)) & 1
        if i % 2 == 0:
            lon |= bit << (_AXIS_BITS - 1 - i // 2)
        else:
            lat |= bit << (_AXIS_BITS - 1 - i // 2)
    return lat, lon


def _metres_per_degree_lon(city: City) -> float:
    return METRES_PER_DEGREE_LAT * math.cos(math.radians(city.lat))


def _centre_distance_m(city: City, lat_row: I64, lon_col: I64) -> F64:
    """Distance of cell centres from the city centre, in the city's metres."""
    lat = -90.0 + (lat_row + 0.5) * _CELL_LAT_DEG
    lon = -180.0 + (lon_col + 0.5) * _CELL_LON_DEG
    return np.asarray(np.hypot((lat - city.lat) * METRES_PER_DEGREE_LAT,
                               (lon - city.lon) * _metres_per_degree_lon(city)),
                      dtype=np.float64)


def _grid(city: City, radius_m: float) -> tuple[I64, I64]:
    """Latitude rows and longitude columns of the cells around a disc's bounding box."""
    span_lat = radius_m / METRES_PER_DEGREE_LAT
    span_lon = radius_m / _metres_per_degree_lon(city)
    rows = np.arange(math.floor((city.lat - span_lat + 90.0) / _CELL_LAT_DEG),
                     math.floor((city.lat + span_lat + 90.0) / _CELL_LAT_DEG) + 1)
    cols = np.arange(math.floor((city.lon - span_lon + 180.0) / _CELL_LON_DEG),
                     math.floor((city.lon + span_lon + 180.0) / _CELL_LON_DEG) + 1)
    return rows.astype(np.int64), cols.astype(np.int64)


def geohash_cells_in_disc(city: City, radius_m: float) -> int:
    """Precision-6 geohash cells that meet the disc of `radius_m` around the city centre
    (in the city's equirectangular metres, as `City.to_latlon`)."""
    rows, cols = _grid(city, radius_m)
    lat_lo = -90.0 + rows * _CELL_LAT_DEG
    lon_lo = -180.0 + cols * _CELL_LON_DEG
    dy = (np.clip(city.lat, lat_lo, lat_lo + _CELL_LAT_DEG) - city.lat) * METRES_PER_DEGREE_LAT
    dx = (np.clip(city.lon, lon_lo, lon_lo + _CELL_LON_DEG) - city.lon) * \
        _metres_per_degree_lon(city)
    return int(np.count_nonzero(dy[:, None] ** 2 + dx[None, :] ** 2 <= radius_m ** 2))


def _reach_km(city: City) -> float:
    """How far from the centre a phone can be: the home disc, the longest commute and
    the farthest outing from work (GPS error aside)."""
    return city.radius_km + MAX_COMMUTE_KM + OUTDOOR_SPOT_M[1] / 1000.0


def _rings(city: City) -> I64:
    """Cells per 250 m ring (by centre distance) out to the reach plus a margin."""
    radius_m = (_reach_km(city) + RING_MARGIN_KM) * 1000.0
    rows, cols = _grid(city, radius_m)
    r = _centre_distance_m(city, np.repeat(rows, cols.size), np.tile(cols, rows.size))
    return np.bincount((r[r < radius_m] // RING_M).astype(np.int64)).astype(np.int64)


def _ring_of(city: City, code: I64, rings: int) -> I64:
    """The ring of each cell (cells beyond the last ring count in it)."""
    r = _centre_distance_m(city, *_cell_indices(code))
    return np.minimum((r // RING_M).astype(np.int64), rings - 1)


# -- measuring fleets -----------------------------------------------------------------


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


def _generator(key: Sequence[int], *indices: int) -> np.random.Generator:
    """A bootstrap generator keyed by the run's seeds and sizes (`SeedSequence` entropy)
    and by which fit it serves (spawn key), as `simulator.seeds` keys its streams."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [int(v) for v in key], spawn_key=tuple(indices))))


# -- the occupancy model --------------------------------------------------------------


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


# -- fitted curves --------------------------------------------------------------------


def saturating(n: npt.ArrayLike, ceiling: float, scale: float, shape: float) -> F64:
    """C(n) = K (1 - exp(-(n/s)^b)): K cells to fill, s the fleet that fills 63 % of
    them; b = 1 when all cells are equally likely, b < 1 when their chances differ."""
    x = np.asarray(n, dtype=np.float64)
    return np.asarray(-ceiling * np.expm1(-((x / scale) ** shape)), dtype=np.float64)


def power_law(n: npt.ArrayLike, coefficient: float, exponent: float) -> F64:
    """C(n) = a n^b: growth without a ceiling."""
    return np.asarray(coefficient * np.asarray(n, dtype=np.float64) ** exponent,
                      dtype=np.float64)


_CURVES: dict[str, tuple[Callable[..., F64], tuple[str, ...], str]] = {
    "saturating": (saturating, ("K", "s", "b"), "K * (1 - exp(-(n / s) ** b))"),
    "power": (power_law, ("a", "b"), "a * n ** b"),
}


@dataclass(frozen=True)
class CurveFit:
    """A curve of cells against fleet size n, fitted with relative residuals."""

    model: str  # "saturating" or "power"
    formula: str
    parameter_names: tuple[str, ...]
    parameters: tuple[float, ...]
    standard_errors: tuple[float, ...]  # from curve_fit's covariance (points pooled)
    intervals_95: tuple[tuple[float, float], ...]  # 2.5 and 97.5 % of the resamples
    interval_method: str
    resamples: tuple[tuple[float, ...], ...] = field(repr=False)  # refitted parameters
    rms_relative_residual: float
    aic: float  # n ln(RSS/n) + 2k on relative residuals

    def predict(self, n: npt.ArrayLike) -> F64:
        return _CURVES[self.model][0](n, *self.parameters)

    def predict_interval(self, n: float) -> tuple[float, float]:
        """2.5 and 97.5 % of the resampled fits' predictions at `n`."""
        draws = np.array([_CURVES[self.model][0](n, *p) for p in self.resamples])
        return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def _initial(model: str, x: F64, y: F64) -> tuple[list[float], tuple[list[float], list[float]]]:
    """Starting point and bounds of a fit."""
    if model == "power":
        slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
        return [float(np.exp(intercept)), float(slope)], ([0.0, 0.0], [np.inf, 3.0])
    top = float(y.max())
    return ([2.0 * top, float(x.max()) / math.log(2.0), 1.0],
            ([0.5 * top, 1e-3, 0.05], [1e9, 1e12, 3.0]))


def _fit_once(model: str, x: F64, y: F64) -> tuple[F64, F64]:
    p0, bounds = _initial(model, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        params, cov = curve_fit(_CURVES[model][0], x, y, p0=p0, sigma=y, bounds=bounds,
                                maxfev=20_000)
    return np.asarray(params, dtype=np.float64), np.asarray(cov, dtype=np.float64)


def _resample(model: str, x: F64, y: F64, label: I64, params: F64, cov: F64, count: int,
              rng: np.random.Generator) -> F64:
    """Refitted parameters: a bootstrap over labels, or covariance draws for one label."""
    groups = int(label.max()) + 1
    if groups < 2:
        finite = np.where(np.isfinite(cov), cov, 0.0)
        draws = rng.multivariate_normal(params, finite, size=count, method="eigh")
        _, (low, high) = _initial(model, x, y)
        return np.clip(draws, low, high)
    members = [np.flatnonzero(label == g) for g in range(groups)]
    out = []
    for _ in range(count):
        pick = np.concatenate([members[g] for g in rng.integers(0, groups, groups)])
        if np.unique(x[pick]).size <= len(params):
            continue
        try:
            out.append(_fit_once(model, x[pick], y[pick])[0])
        except (RuntimeError, ValueError):  # a resample the optimiser cannot fit
            continue
    return np.array(out) if out else params[None, :]


def fit_curve(model: str, phones: npt.ArrayLike, cells: npt.ArrayLike, *,
              groups: npt.ArrayLike | None = None, resamples: int = 200,
              rng: np.random.Generator | None = None) -> CurveFit:
    """Fit `model` ("saturating" or "power") to (phones, cells) points.

    Intervals come from refitting `resamples` times: resampling the `groups` (one label
    per point, e.g. the seed) with replacement when there are two or more, else drawing
    parameters from the fit's covariance."""
    if model not in _CURVES:
        raise UsageError(f"model must be one of {sorted(_CURVES)}, got {model!r}")
    x = np.asarray(phones, dtype=np.float64)
    y = np.asarray(cells, dtype=np.float64)
    needed = len(_CURVES[model][1]) + 1
    if x.shape != y.shape or np.unique(x).size < needed or y.min() <= 0:
        raise UsageError(f"the {model} fit needs positive cells at {needed} or more fleet sizes")
    label = np.zeros(x.size, dtype=np.int64) if groups is None else _dense(np.asarray(groups))
    rng = rng if rng is not None else np.random.Generator(np.random.PCG64(0))
    params, cov = _fit_once(model, x, y)
    rel = (y - _CURVES[model][0](x, *params)) / y
    draws = _resample(model, x, y, label, params, cov, resamples, rng)
    method = (f"bootstrap over {label.max() + 1} groups ({draws.shape[0]} fits)"
              if label.max() > 0 else "normal draws from the covariance")
    return CurveFit(
        model=model, formula=_CURVES[model][2], parameter_names=_CURVES[model][1],
        parameters=tuple(float(p) for p in params),
        standard_errors=tuple(float(s) for s in np.sqrt(np.clip(np.diag(cov), 0, None))),
        intervals_95=tuple((float(lo), float(hi)) for lo, hi in
                           zip(*np.percentile(draws, [2.5, 97.5], axis=0), strict=True)),
        interval_method=method,
        resamples=tuple(tuple(float(v) for v in d) for d in draws),
        rms_relative_residual=float(np.sqrt(np.mean(rel ** 2))),
        aic=float(x.size * math.log(max(float(np.sum(rel ** 2)), 1e-300) / x.size)
                  + 2 * len(params)))


@dataclass(frozen=True)
class CellFits:
    """Both curves of one quantity; `better` has the lower AIC."""

    quantity: str  # "cells per 5-minute window" or "cells per day"
    saturating: CurveFit
    power: CurveFit

    @property
    def better(self) -> CurveFit:
        return self.saturating if self.saturating.aic <= self.power.aic else self.power


def _seed_values(measurements: Sequence[FleetCells], weights: dict[str, float],
                 attribute: str) -> dict[tuple[int, int], float]:
    """Week-weighted value per (seed, phones)."""
    out: dict[tuple[int, int], float] = {}
    for m in measurements:
        key = (m.seed, m.phones)
        out[key] = out.get(key, 0.0) + weights[m.day] * float(getattr(m, attribute))
    return out


def _fits(measurements: Sequence[FleetCells], weights: dict[str, float],
          resamples: int, key: Sequence[int]) -> tuple[CellFits, CellFits]:
    """Both curves of cells per window and of cells per day, bootstrapped over seeds."""
    out = []
    for k, (attribute, quantity) in enumerate((
            ("cells_per_window_mean", "cells per 5-minute window"),
            ("cells_per_day", "cells per day"))):
        values = _seed_values(measurements, weights, attribute)
        seed = np.array([v[0] for v in values])
        phones = np.array([v[1] for v in values], dtype=np.float64)
        cells = np.array(list(values.values()))
        curves = [fit_curve(model, phones, cells, groups=seed, resamples=resamples,
                            rng=_generator(key, k, j))
                  for j, model in enumerate(("saturating", "power"))]
        out.append(CellFits(quantity, curves[0], curves[1]))
    return out[0], out[1]


# -- the report -----------------------------------------------------------------------


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
    """Everything `measure_aggregate_cells` found; see the module docstring."""

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


def _rows_per_day_factor(table: str) -> float:
    if table == "sensor_aggregates_5m":
        return float(WINDOWS_PER_DAY)
    if table == "sensor_aggregates_daily":
        return 1.0
    raise UsageError(f"table must be sensor_aggregates_5m or sensor_aggregates_daily, "
                     f"got {table!r}")


def project_rows(report: AggregateCellsReport, users: int, days: int, *,
                 table: Table = "sensor_aggregates_5m", model: Model = "occupancy"
                 ) -> tuple[float, float, float]:
    """(estimate, low, high) rows `table` gains in `days` days at `users` users, with a
    95 % interval: the occupancy model's jackknife over phone blocks (the default), or a
    curve's bootstrap over seeds."""
    if users < 1 or days < 1:
        raise UsageError(f"users and days must be at least 1, got {users} and {days}")
    scale = _rows_per_day_factor(table) * days
    which = 0 if table == "sensor_aggregates_5m" else 1
    if model == "occupancy":
        e = report.occupancy.estimate(users)
        estimate, low, high = ((e.cells_per_window, e.cells_per_window_low,
                                e.cells_per_window_high) if which == 0 else
                               (e.cells_per_day, e.cells_per_day_low, e.cells_per_day_high))
    elif model in ("saturating", "power"):
        fit = getattr((report.window_fits, report.day_fits)[which], model)
        estimate = float(fit.predict(users))
        low, high = fit.predict_interval(users)
    else:
        raise UsageError(f"model must be occupancy, saturating or power, got {model!r}")
    return estimate * scale, low * scale, high * scale


def _projections(report: AggregateCellsReport) -> tuple[RowProjection, ...]:
    out = []
    tables: tuple[Table, ...] = ("sensor_aggregates_5m", "sensor_aggregates_daily")
    for table in tables:
        for users in PROJECTED_USERS:
            for period, days in PERIODS_DAYS:
                rows, low, high = project_rows(report, users, days, table=table)
                out.append(RowProjection(
                    table, users, period, days, rows, low, high,
                    project_rows(report, users, days, table=table, model="saturating")[0],
                    project_rows(report, users, days, table=table, model="power")[0],
                    REVIEW_ROWS_1K[(table, days)] if users == 1_000 else None))
    return tuple(out)


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
    project rows (see the module docstring). `quick` picks small defaults (sizes up to
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


# -- the real job ---------------------------------------------------------------------


@dataclass(frozen=True)
class JobCheck:
    """`count_block_cells` beside the aggregation job's tables, for the same batches."""

    variant: str
    batches: int
    counted: CellCount
    job_rows_5m: int
    job_rows_daily: int
    only_counted_5m: int  # cells counted here that the job has no row for
    only_job_5m: int
    only_counted_daily: int
    only_job_daily: int

    @property
    def matches(self) -> bool:
        return (self.counted == CellCount(self.job_rows_5m, self.job_rows_daily)
                and self.only_counted_5m == self.only_job_5m == 0
                and self.only_counted_daily == self.only_job_daily == 0)


Cells = set[tuple[int, str]]


def _cell_sets(blocks: Sequence[BatchBlock]) -> tuple[Cells, Cells]:
    """The (window start ms, geohash) and (UTC day number, geohash) cells of `blocks`."""
    windows: Cells = set()
    days: Cells = set()
    for block in blocks:
        for ts, gh in zip(block.period_start_ms.tolist(), block.geohash.tolist(), strict=True):
            windows.add((ts // WINDOW_MS * WINDOW_MS, gh.decode()))
            days.add((ts // DAY_MS, gh.decode()))
    return windows, days


async def _load_and_aggregate(conn: Any, variant: str, blocks: Sequence[BatchBlock]
                              ) -> tuple[int, Cells, Cells]:
    """Upload every batch through the API's decoding and store path, run the job once,
    read both tables back."""
    from simulator.backend import jobs, migrations, store
    from simulator.backend.app import init_connection
    from simulator.backend.payload import decode_upload
    from simulator.sensors.encode import encode_lines

    await migrations.migrate(conn, variant)
    await conn.execute(f'SET search_path TO "{migrations.namespace(variant)}"')
    await init_connection(conn)
    if await conn.fetchval("SELECT count(*) FROM sensor_batches"):
        raise UsageError("check_against_job needs a database without sensor batches")
    stamps = np.concatenate([b.period_start_ms for b in blocks])
    now_ms = int(stamps.max()) + 1
    uploaded = 0
    for block in blocks:
        for line in encode_lines(block):
            envelope, payload = decode_upload(line, now_ms, 0)
            await store.store_upload(
                conn, variant, device_id=envelope.device_id, user_id=envelope.user_id,
                batch_id=envelope.batch_id, seq=envelope.seq, timestamp_ms=payload.timestamp,
                payload=bytes(envelope.payload), samples=len(payload.batch),
                body_sha256=hashlib.sha256(line).digest(), now_ms=now_ms)
            uploaded += 1
    span_s = (now_ms - int(stamps.min())) / MS_PER_S + 1.0
    await jobs.aggregate(conn, variant, now_ms, lag_s=0.0, lookback_s=span_s)
    windows = {(int(r[0].timestamp() * MS_PER_S), r[1]) for r in await conn.fetch(
        "SELECT window_start, geohash FROM sensor_aggregates_5m")}
    epoch = date(1970, 1, 1)
    days = {((r[0] - epoch).days, r[1]) for r in await conn.fetch(
        "SELECT day, geohash FROM sensor_aggregates_daily")}
    return uploaded, windows, days


def check_against_job(database_url: str, blocks: Iterable[BatchBlock], *,
                      variant: str = "recommended") -> JobCheck:
    """Load `blocks` into the `variant` schema of a database without batches (migrated
    here) through the backend's upload path, run `jobs.aggregate` once and compare its
    rows, cell by cell, with `count_block_cells`."""
    import asyncpg

    parts = [b for b in blocks if b.size]
    if not parts:
        raise UsageError("check_against_job needs at least one batch")

    async def run() -> tuple[int, Cells, Cells]:
        conn = await asyncpg.connect(database_url)
        try:
            return await _load_and_aggregate(conn, variant, parts)
        finally:
            await conn.close()

    uploaded, job_windows, job_days = asyncio.run(run())
    windows, days = _cell_sets(parts)
    return JobCheck(variant, uploaded, count_block_cells(parts), len(job_windows), len(job_days),
                    len(windows - job_windows), len(job_windows - windows),
                    len(days - job_days), len(job_days - days))
