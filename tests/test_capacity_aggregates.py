"""Aggregate cells (simulator.capacity.aggregates): counting by hand, against the real
aggregation job on PostgreSQL, the curve fits on planted curves, the occupancy formula,
and review §5.3's arithmetic."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import make_block

from simulator.capacity import aggregates as agg
from simulator.capacity.aggregates import ceiling, counting, geometry
from simulator.errors import UsageError
from simulator.instants import parse_instant
from simulator.sensors import FleetConfig, FleetGenerator
from simulator.sensors.batch import BatchBlock
from simulator.sensors.city import BERLIN
from simulator.sensors.geohash import encode

MIDNIGHT_MS = parse_instant("2024-01-04T00:00:00Z")
# (payload timestamp, geohash) around a window and a UTC day boundary:
# windows (W-1, a) (W0, a) (W0, b) (W1, a) (W-1, b) (last window of the day, a) -> 6;
# days (day-1: a, b) (day0: a, b) -> 4.
BOUNDARY = [
    (MIDNIGHT_MS - 1, b"u33dc0"),
    (MIDNIGHT_MS, b"u33dc0"),
    (MIDNIGHT_MS, b"u33dc1"),
    (MIDNIGHT_MS + 299_999, b"u33dc0"),  # same window as the one before
    (MIDNIGHT_MS + 300_000, b"u33dc0"),
    (MIDNIGHT_MS - 300_000, b"u33dc0"),  # same window as the first
    (MIDNIGHT_MS - 1, b"u33dc1"),
    (MIDNIGHT_MS + 86_399_999, b"u33dc0"),
]


def boundary_block() -> BatchBlock:
    """A hand-built, valid block whose batches carry the BOUNDARY cells."""
    base = make_block(np.random.default_rng(5), len(BOUNDARY), max_readings=3)
    stamps = np.array([t for t, _ in BOUNDARY], dtype=np.int64)
    # true time 7 minutes later than the phone's clock: the backend sees the clock
    return replace(base, order_ms=stamps + 420_000, period_start_ms=stamps,
                   period_end_ms=stamps + 300_000,
                   t_ms=np.repeat(stamps, base.counts) + 10_000,
                   geohash=np.array([g for _, g in BOUNDARY]))


def test_public_surface_is_pinned() -> None:
    assert sorted(agg.__all__) == sorted([
        "DAYS_PER_MONTH", "AggregateCellsReport", "CellCount", "CellFits", "CityCeiling",
        "CurveFit", "DayCells", "FleetCells", "HeldOutFleet", "JobCheck",
        "OccupancyEstimate", "OccupancyModel", "ReviewArithmetic", "RowProjection",
        "SizeRow", "check_against_job", "count_block_cells", "count_cells", "fit_curve",
        "geohash_cells_in_disc", "measure_aggregate_cells", "power_law", "project_rows",
        "review_arithmetic", "saturating"])
    assert all(hasattr(agg, name) for name in agg.__all__)
    assert agg.DAYS_PER_MONTH == 30


def test_counting_a_hand_built_list_and_block() -> None:
    stamps, hashes = zip(*BOUNDARY, strict=True)
    assert agg.count_cells(stamps, hashes) == agg.CellCount(cells_5m=6, cells_daily=4)
    assert agg.count_block_cells([boundary_block()]) == agg.CellCount(6, 4)
    # split across blocks, the same cells; str geohashes of another precision count apart
    block = boundary_block()
    halves = [block.take(np.arange(0, 4)), block.take(np.arange(4, 8))]
    assert agg.count_block_cells(halves) == agg.CellCount(6, 4)
    assert agg.count_cells([0, 0, 1], ["u33dc", "u33dc0", "u33dc"]) == agg.CellCount(2, 2)
    assert agg.count_block_cells([]) == agg.CellCount(0, 0)
    with pytest.raises(UsageError, match="one each"):
        agg.count_cells([1, 2], ["u33dc0"])


def test_review_arithmetic() -> None:
    review = agg.review_arithmetic()
    assert review.windows_per_month == 8_640
    assert review.cells_per_window == pytest.approx(26_000 / 8_640)
    assert round(review.cells_per_window) == 3
    assert review.cells_per_day == 30.0
    assert review.six_month_ratio_5m == review.six_month_ratio_daily == 6.0
    assert review.daily_year_months == 12.0  # twelve 30-day months...
    assert review.daily_year_days == 360.0  # ...so its daily year has 360 days
    assert review.five_min_year_windows == 105_000.0
    assert 364 < review.five_min_year_days < 365  # while its 5-minute year has ~365


@pytest.mark.parametrize("variant", ["recommended", "as-is"])
def test_counts_equal_the_aggregation_jobs_rows(database_url: str, variant: str) -> None:
    config = FleetConfig(3, 8, MIDNIGHT_MS - 90 * 60_000, 3.0)  # across UTC midnight
    blocks = [*FleetGenerator(config).iter_blocks(), boundary_block()]
    check = agg.check_against_job(database_url, blocks, variant=variant)
    assert check.batches == sum(b.size for b in blocks)
    assert check.matches, check
    assert check.counted == agg.CellCount(check.job_rows_5m, check.job_rows_daily)
    assert check.job_rows_5m > check.job_rows_daily > 4  # two days, many cells


def test_geohash_codes_and_cells_round_trip() -> None:
    rng = np.random.default_rng(3)
    lat = 52.52 + rng.uniform(-0.3, 0.3, 500)
    lon = 13.40 + rng.uniform(-0.5, 0.5, 500)
    hashes = encode(lat, lon, 6)
    rows, cols = geometry._cell_indices(counting._geohash_code(hashes))
    centre_lat = -90.0 + (rows + 0.5) * geometry._CELL_LAT_DEG
    centre_lon = -180.0 + (cols + 0.5) * geometry._CELL_LON_DEG
    assert (encode(centre_lat, centre_lon, 6) == hashes).all()
    assert agg.geohash_cells_in_disc(BERLIN, 1.0) == 1
    area_km2 = (geometry._CELL_LAT_DEG * 111.32) * (geometry._CELL_LON_DEG * 111.32
                                                    * math.cos(math.radians(BERLIN.lat)))
    disc = agg.geohash_cells_in_disc(BERLIN, 9_000.0)
    assert math.pi * 81 / area_km2 < disc < math.pi * 9.75 ** 2 / area_km2  # plus a rim


def _planted(curve: str, params: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Five noisy 'seeds' (1 % multiplicative noise) of a known curve."""
    rng = np.random.default_rng(11)
    sizes = np.array([10, 30, 100, 300, 1_000, 3_000, 10_000], dtype=float)
    function = agg.saturating if curve == "saturating" else agg.power_law
    x = np.tile(sizes, 5)
    y = function(x, *params) * (1 + 0.01 * rng.standard_normal(x.size))
    return x, y, np.repeat(np.arange(5), sizes.size)


def test_the_saturating_fit_recovers_a_planted_curve() -> None:
    truth = (800.0, 900.0, 0.9)
    x, y, seeds = _planted("saturating", truth)
    fit = agg.fit_curve("saturating", x, y, groups=seeds, resamples=200,
                        rng=np.random.default_rng(1))
    for value, estimate, (low, high) in zip(truth, fit.parameters, fit.intervals_95,
                                            strict=True):
        assert low <= value <= high, (value, low, high)
        assert estimate == pytest.approx(value, rel=0.05)
    assert fit.interval_method.startswith("bootstrap over 5 groups")
    power = agg.fit_curve("power", x, y, groups=seeds, resamples=50,
                          rng=np.random.default_rng(1))
    assert fit.aic < power.aic and fit.rms_relative_residual < power.rms_relative_residual


def test_the_power_fit_recovers_a_planted_power_law() -> None:
    truth = (2.0, 0.7)
    x, y, seeds = _planted("power", truth)
    fit = agg.fit_curve("power", x, y, groups=seeds, resamples=200,
                        rng=np.random.default_rng(2))
    for value, (low, high) in zip(truth, fit.intervals_95, strict=True):
        assert low <= value <= high
    one_group = agg.fit_curve("power", x, y, resamples=100, rng=np.random.default_rng(2))
    assert one_group.interval_method == "normal draws from the covariance"
    assert one_group.intervals_95[1][0] <= 0.7 <= one_group.intervals_95[1][1]
    with pytest.raises(UsageError, match="fleet sizes"):
        agg.fit_curve("power", [1, 1, 1], [1, 2, 3])


def test_the_occupancy_formula_on_a_hand_built_model() -> None:
    # ring 0: 1 cell, a phone is in it with chance 5/10 per window; ring 1: 4 cells,
    # 2 of 10 phones in one of them (p = 0.05 per cell); by day 8/10 and 6/(10*4)
    unit_window = np.array([[[5, 2], [5, 2]]])  # (days, windows, rings)
    unit_day = np.array([[8, 6]])
    model = agg.OccupancyModel(250.0, np.array([1, 4]), 10, np.array([1.0]),
                               np.stack([unit_window, unit_window]),
                               np.stack([unit_day, unit_day]))
    estimate = model.estimate(3)
    assert estimate.cells_per_window == pytest.approx((1 - 0.5 ** 3) + 4 * (1 - 0.95 ** 3))
    assert estimate.cells_per_day == pytest.approx((1 - 0.2 ** 3) + 4 * (1 - 0.85 ** 3))
    assert estimate.cells_per_window_low == pytest.approx(estimate.cells_per_window)
    assert model.ceiling() == (5.0, 5.0)
    assert model.phones == 20
    # Chao2: 6 cells seen, 3 by one phone, 2 by two, of 10 phones: 6 + 0.9 * 9 / 4
    assert ceiling._chao2(np.array([1, 1, 1, 2, 2, 5]), 10) == pytest.approx(8.025)


def test_measuring_small_fleets_matches_direct_counting_and_is_deterministic() -> None:
    kwargs = {"fleet_sizes": (5, 10, 20, 40), "seeds": (1, 2), "days": ("2024-01-03",),
              "hours": 3, "resamples": 20}
    report = agg.measure_aggregate_cells(**kwargs)  # type: ignore[arg-type]
    # the largest fleet of seed 1, counted directly from the generator's blocks
    start = parse_instant("2024-01-03T00:00:00Z")
    blocks = list(FleetGenerator(FleetConfig(1, 40, start - 3_600_000, 5)).iter_blocks())
    stamps = np.concatenate([b.period_start_ms for b in blocks])
    hashes = np.concatenate([b.geohash for b in blocks])
    inside = (stamps >= start) & (stamps < start + 3 * 3_600_000)
    direct = agg.count_cells(stamps[inside], hashes[inside])
    (largest,) = [m for m in report.measurements if m.seed == 1 and m.phones == 40]
    assert largest.replicates == 1
    assert largest.cells_per_window_mean * 36 == pytest.approx(direct.cells_5m)
    assert largest.cells_per_day == direct.cells_daily
    # a window has at most one batch per phone; a day holds at least a window's cells
    for row in report.table:
        assert row.cells_per_window_mean <= row.phones
        assert row.cells_per_window_mean <= row.cells_per_window_peak <= row.phones
        assert row.cells_per_day >= row.cells_per_window_peak
        assert row.rows_5m_per_30_day_month == pytest.approx(
            row.cells_per_window_mean * 8_640)
    assert [r.phones for r in report.table] == [5, 10, 20, 40]
    assert report.held_out.phones == 80 and report.held_out.occupancy_from_phones == 40
    assert report.ceiling.cells_in_home_disc < report.ceiling.cells_within_reach
    assert report.ceiling.cells_touched_by_date == (("2024-01-03",
                                                     report.held_out.cells_per_day),)
    assert len(report.projections) == 2 * 3 * 3
    month = next(p for p in report.projections if p.users == 1_000 and p.days == 30
                 and p.table == "sensor_aggregates_daily")
    assert month.review_rows == 900
    assert month.rows == pytest.approx(report.occupancy.cells_per_day(1_000) * 30)
    assert month.rows_low <= month.rows <= month.rows_high
    again = agg.measure_aggregate_cells(**kwargs)  # type: ignore[arg-type]
    assert again.table == report.table and again.projections == report.projections


def test_project_rows_scales_cells_to_rows() -> None:
    messages: list[str] = []
    report = agg.measure_aggregate_cells(fleet_sizes=(5, 10, 20, 40), seeds=(4,),
                                         days=("2024-01-06",), hours=2, resamples=10,
                                         progress=messages.append)
    assert messages[0].startswith("aggregates: seed 4, 2024-01-06, 40 phones: hour 1/4")
    assert "fitting" in messages[-1]
    assert report.window_fits.saturating.interval_method == "normal draws from the covariance"
    rows, low, high = agg.project_rows(report, 100, 7)
    assert rows == pytest.approx(report.occupancy.cells_per_window(100) * 288 * 7)
    assert low <= rows <= high
    saturating = agg.project_rows(report, 100, 7, table="sensor_aggregates_daily",
                                  model="saturating")
    assert saturating[0] == pytest.approx(float(report.day_fits.saturating.predict(100)) * 7)
    with pytest.raises(UsageError, match="table must be"):
        agg.project_rows(report, 100, 7, table="sensor_batches")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="at least 1"):
        agg.project_rows(report, 0, 7)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fleet_sizes": (10, 20, 40)}, "four or more"),
    ({"fleet_sizes": (10, 20, 30, 41)}, "multiple of 5"),
    ({"days": ("2024-13-01",)}, "ISO dates"),
    ({"hours": 25}, "hours must be"),
    ({"seeds": (1, 1)}, "distinct seeds"),
])
def test_misuse_is_refused_with_a_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        agg.measure_aggregate_cells(**kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_quick_mode_is_quick_and_far_above_the_review() -> None:
    started = time.perf_counter()
    report = agg.measure_aggregate_cells(quick=True)
    assert time.perf_counter() - started < 60
    at_1k = next(r for r in report.table if r.phones == 1_000)
    assert at_1k.cells_per_window_mean > 100 * report.review.cells_per_window
    assert at_1k.cells_per_day > 30 * report.review.cells_per_day
    # the occupancy model, built from seed 1 alone, predicts the two seeds' union
    held = report.held_out
    assert held.window_occupancy == pytest.approx(held.cells_per_window_mean, rel=0.05)
    assert held.day_occupancy == pytest.approx(held.cells_per_day, rel=0.1)
