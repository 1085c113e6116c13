"""Where one node ends: each limit follows from its measurement, and an unknown one is
said to be unknown rather than guessed."""

from __future__ import annotations

import pytest

from simulator.capacity.node import OneNode, ingest_limit, job_limit, storage_limit


def test_the_ingest_limit_is_the_knee_over_the_average_rate_bracketed_by_held_and_broke() -> None:
    limit = ingest_limit(1_600.0, 1_900.0, 288.0)
    assert limit.users == pytest.approx(1_600 * 86_400 / 288)  # 480,000 users
    assert (limit.users_low, limit.users_high) == (limit.users, pytest.approx(570_000))
    assert ingest_limit(None, 10.0, 288.0).users is None


def test_storage_is_unknown_without_a_disk_and_scales_with_it() -> None:
    assert storage_limit(None, (1e9, 0.9e9, 1.1e9)).users is None
    limit = storage_limit(1_000 * 10**9, (1e9, 0.8e9, 1.25e9))  # a TB, a GB a user-year
    assert (limit.users, limit.users_low, limit.users_high) == pytest.approx((1000, 800, 1250))


def test_the_first_limit_is_the_smallest_known_one() -> None:
    node = OneNode((ingest_limit(1_600.0, None, 288.0), job_limit(289.0, 287.0, 291.0, "30 d"),
                    storage_limit(None, (1.0, 1.0, 1.0))))
    first = node.first
    assert first is not None and first.resource.startswith("aggregation job")
    assert OneNode((storage_limit(None, (1.0, 1.0, 1.0)),)).first is None
