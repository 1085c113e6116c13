"""Projection arithmetic and the review's tables: a planted linear growth is recovered
with an interval that covers it; a planted contradiction is named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator.capacity import review
from simulator.capacity.project import Interval, bootstrap_mean, linear_fit


def test_a_planted_linear_growth_is_recovered_with_an_interval_that_covers_it() -> None:
    rng = np.random.default_rng(7)
    rows = np.arange(1, 21) * 100_000.0
    size = 2_500.0 * rows + 8e6 + rng.normal(0, 2e6, rows.size)  # 2.5 KB a row, noisy
    fit = linear_fit(rows, size)
    assert fit.slope_low <= 2_500.0 <= fit.slope_high
    assert fit.slope_high - fit.slope_low < 50  # and the interval is narrow
    assert fit.r_squared > 0.999
    far = fit.predict(1e8)  # a month of 1K users' rows is far beyond the points
    assert far.low <= 2_500.0 * 1e8 + 8e6 <= far.high
    assert far.high - far.low > fit.predict(1e6).high - fit.predict(1e6).low


def test_a_line_needs_two_distinct_points() -> None:
    with pytest.raises(ValueError, match="two points"):
        linear_fit([1.0, 1.0], [2.0, 3.0])
    exact = linear_fit([1.0, 2.0], [3.0, 5.0])
    assert (exact.slope, exact.intercept) == pytest.approx((2.0, 1.0))
    assert exact.predict(3.0).estimate == pytest.approx(7.0)


def test_the_bootstrap_interval_covers_the_mean_and_is_deterministic() -> None:
    values = [2480.0, 2510.0, 2530.0, 2495.0, 2505.0]
    first, again = bootstrap_mean(values, seed=1), bootstrap_mean(values, seed=1)
    assert first == again
    assert first.low < 2504.0 < first.high and first.samples == 5
    assert min(values) <= first.low and first.high <= max(values)
    one = bootstrap_mean([3.0])
    assert (one.low, one.estimate, one.high, one.samples) == (3.0, 3.0, 3.0, 1)


def test_an_interval_scales_and_adds_and_refuses_a_broken_one() -> None:
    per_user_day = Interval(1000.0, 900.0, 1100.0, 5)
    year = per_user_day.scaled(1000 * 365)
    assert (year.low, year.high) == (900.0 * 365_000, 1100.0 * 365_000)
    assert per_user_day.plus(Interval(10.0, 9.0, 11.0, 3)) == Interval(1010.0, 909.0, 1111.0, 3)
    with pytest.raises(ValueError):
        Interval(5.0, 6.0, 7.0, 1)


def test_the_reviews_own_contradictions_are_named() -> None:
    found = {c.description: c for c in review.contradictions()}
    year = next(c for d, c in found.items() if d.startswith("a year of 1K users"))
    assert year.left == pytest.approx(182.5e9) and year.right == 50e9  # 500 KB x 1K x 365
    per_row = next(c for d, c in found.items() if d.startswith("bytes per sensor_batches row"))
    assert per_row.left == pytest.approx(1736.1, abs=0.1)
    assert per_row.right == pytest.approx(476.2, abs=0.1)
    days = next(c for d, c in found.items() if d.startswith("days in a year"))
    assert days.left == pytest.approx(360.0)  # the daily year counts 360 days
    assert len(found) == 3  # the consistent relations are not flagged


def test_a_planted_contradiction_in_a_review_table_is_flagged() -> None:
    cells = [dataclasses.replace(c, value=80e6) if c.key == "5.3 sensor_batches rows 1K 6months"
             else c for c in review.REVIEW_CELLS]
    planted = [c for c in review.contradictions(cells) if c.description.startswith("six months")]
    assert len(planted) == 1 and planted[0].left == 80e6
    assert planted[0].ratio == pytest.approx(80e6 / 51.6e6)


def test_every_cell_has_a_known_quantity_and_a_unique_key() -> None:
    assert len(review.by_key()) == len(review.REVIEW_CELLS) == 32
    assert {c.quantity for c in review.REVIEW_CELLS} <= set(review.QUANTITIES)


def test_a_verdict_is_within_or_off_by_a_factor() -> None:
    assert review.verdict(500.0, 510.0, 480.0, 540.0).within
    off = review.verdict(500e3, 900e3, 880e3, 920e3)
    assert not off.within and off.factor == pytest.approx(1.8)
    assert off.text() == "off: measured 1.8x the review's figure"


def test_a_review_figure_stands_for_the_values_that_print_as_it() -> None:
    cells = review.by_key()
    assert cells["5.3 sensor_batches rows 1K month"].rounding == pytest.approx((8.55e6, 8.65e6))
    assert cells["5.1 sensor_batches_bytes per user/day"].rounding == pytest.approx((450e3, 550e3))
    assert cells["5.2 contributions rows 7 days"].rounding == pytest.approx((2015.5, 2016.5))
    assert cells["5.3 aggregates_daily rows 1K year"].rounding == pytest.approx((10.75e3, 10.85e3))
    month = cells["5.3 sensor_batches rows 1K month"]
    assert review.verdict(month, 8.62e6, 8.61e6, 8.63e6).within  # 8.62M prints as 8.6M
    assert not review.verdict(month, 8.7e6, 8.66e6, 8.74e6).within
