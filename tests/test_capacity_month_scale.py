"""The month-scale check: a month of a fleet by COPY on the real engine, and the
arithmetic that holds the seeds' projection against it (a planted superlinear growth is
caught)."""

from __future__ import annotations

import pytest

from simulator.capacity.daily_load import GrowthPoint
from simulator.capacity.model import PerUserDay
from simulator.capacity.month_scale import MonthScale, measure_month_scale
from simulator.capacity.pgsize import TableSize
from simulator.capacity.project import Interval
from simulator.capacity.scale_check import check_month
from simulator.capacity.workload import FleetSample
from simulator.instants import parse_instant

ROWS_PER_DAY = 1_000


def unit(bytes_per_row: Interval, variant: str = "recommended") -> PerUserDay:
    one = Interval(1.0, 1.0, 1.0, 3)
    return PerUserDay(variant, 3, one, one, {"sensor_batches": bytes_per_row}, {}, None, {})


def month(bytes_at: list[int], variant: str = "recommended") -> MonthScale:
    growth = [GrowthPoint(ROWS_PER_DAY * (day + 1), {"sensor_batches": size})
              for day, size in enumerate(bytes_at)]
    rows = growth[-1].uploads
    final = {"sensor_batches": TableSize("sensor_batches", rows, bytes_at[-1], 0, 0, 0)}
    return MonthScale(variant, FleetSample(1, 4, len(bytes_at), 0), growth,
                      [1.0] * len(bytes_at), final, 30.0)


def test_a_linear_month_is_within_the_extrapolation_and_its_slope_is_recovered() -> None:
    # fixed pages plus 2,000 bytes a row, with page-sized noise
    sizes = [8_192 * 3 + 2_000 * ROWS_PER_DAY * (day + 1) + 8_192 * (day % 2)
             for day in range(30)]
    [check] = check_month(unit(Interval(2_100, 2_050, 2_150, 3)), month(sizes), early_days=3)
    assert check.within and check.verdict == "within the interval"
    assert check.rows == 30 * ROWS_PER_DAY and check.ratio == pytest.approx(1.0, rel=1e-3)
    # the seeds' figure (other phones) is a ratio, not the verdict
    assert check.ratio_to_seeds == pytest.approx(2_000 / 2_100, rel=1e-3)
    assert check.month_bytes_per_row.estimate == pytest.approx(2_000, rel=1e-3)
    assert check.month_r_squared > 0.9999


def test_a_planted_superlinear_growth_is_caught_with_its_factor() -> None:
    # bytes per row rising 1 % a day: the first three days' line under-predicts the month
    sizes = [round(2_000 * (1.01 ** day) * ROWS_PER_DAY * (day + 1)) for day in range(30)]
    [check] = check_month(unit(Interval(2_000, 1_980, 2_020, 3)), month(sizes), early_days=3)
    assert not check.within and check.ratio > 1.2
    assert check.verdict == f"off: measured {check.ratio:.3g}x the extrapolation"
    assert check.month_bytes_per_row.estimate > 2_020


def test_a_month_of_another_variant_or_too_short_is_refused() -> None:
    with pytest.raises(ValueError, match="as-is"):
        check_month(unit(Interval(1, 1, 1, 1), "as-is"), month([1, 2, 3, 4]), early_days=3)
    with pytest.raises(ValueError, match="more than 3 days"):
        check_month(unit(Interval(1, 1, 1, 1)), month([1, 2, 3]), early_days=2)


@pytest.mark.slow
def test_a_month_by_copy_crosses_a_partition_boundary_and_grows_day_by_day(postgres) -> None:  # type: ignore[no-untyped-def]
    # four days from 29 March: the recommended schema's March and April partitions
    sample = FleetSample(2, 3, 4, parse_instant("2024-03-29T00:00:00Z"))
    measured = measure_month_scale(postgres.url, "recommended", sample)
    uploads = [p.uploads for p in measured.growth]
    assert len(uploads) == 4 and uploads == sorted(set(uploads))
    assert 3 * 4 * 250 < measured.rows <= 3 * 4 * 289
    batches = measured.final["sensor_batches"]
    assert batches.rows == measured.rows == measured.final["upload_receipts"].rows
    assert batches.leaves >= 2  # March and April (and any default partition)
    assert batches.total_bytes == measured.growth[-1].total_bytes["sensor_batches"]
    assert all(measured.copy_rows_per_s(day) > 0 for day in range(4))
    [batches_check, *_] = check_month(unit(Interval(2_000, 1_000, 3_000, 3)), measured,
                                              early_days=3)
    assert batches_check.table == "sensor_batches" and batches_check.month_r_squared > 0.9
