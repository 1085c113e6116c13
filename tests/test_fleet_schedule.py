"""Seed-fixed plans and runtime draws: a pure function of the seed and what is decided,
each kind of decision on its own index (the old hand-picked key offsets overlapped)."""

from __future__ import annotations

import itertools

from simulator.fleet.schedule import (
    DAY_MS,
    HOUR_MS,
    Draw,
    RuntimeDraws,
    claim_times,
    storm_times,
)

START = 1_704_700_800_000  # 2024-01-08T08:00:00Z


def test_two_kinds_of_decision_never_share_a_draw() -> None:
    draws = RuntimeDraws(7, 0.5)
    for key in range(40):
        values = [draws._uniform(3, kind, key) for kind in Draw]
        assert len(set(values)) == len(values), key
    # the collision the offsets allowed: a storm numbered n and an upload whose batch id
    # has crc32 n drew 3_000_000 + n alike; now they are different kinds
    assert draws._uniform(3, Draw.STORM_KIND, 12) != draws._uniform(3, Draw.UPLOAD_JITTER, 12)


def test_draws_are_fixed_by_the_seed_and_change_with_it() -> None:
    one, again, other = RuntimeDraws(7, 0.5), RuntimeDraws(7, 0.5), RuntimeDraws(8, 0.5)
    keys = [f"upload b{i}" for i in range(200)]
    assert [one.kill_after(1, k) for k in keys] == [again.kill_after(1, k) for k in keys]
    assert [one.kill_after(1, k) for k in keys] != [other.kill_after(1, k) for k in keys]
    kills = [one.kill_after(1, k) for k in keys]
    assert 60 < sum(k is not None for k in kills) < 140  # about half, at p = 0.5
    assert {k for k in kills if k is not None} <= set(range(6))
    assert RuntimeDraws(7, 0.0).kill_after(1, "upload b0") is None
    jitters = one.drain_jitters(2, 5)
    assert len(jitters) == 4 and len(set(jitters)) == 4 and all(0 <= u < 1 for u in jitters)


def test_each_user_claims_once_a_day_between_ten_and_twenty_utc() -> None:
    draws = RuntimeDraws(7, 0.0)
    end = START + 3 * DAY_MS
    times = list(claim_times(draws, range(5), START, end))
    by_phone = {p: [at for at, q in times if q == p] for p in range(5)}
    for ats in by_phone.values():
        assert all(START <= at < end for at in ats)
        assert all(10 * HOUR_MS <= at % DAY_MS < 20 * HOUR_MS for at in ats)
        assert len({at // DAY_MS for at in ats}) == len(ats) >= 2  # one a day


def test_storms_are_evenly_spaced_from_a_seeded_phase() -> None:
    draws = RuntimeDraws(7, 0.0)
    storms = list(storm_times(draws, [0, 1], 4.0, START, START + HOUR_MS))
    assert [n for _, p, n in storms if p == 0] == [0, 1, 2, 3]
    for phone in (0, 1):
        ats = [at for at, p, _ in storms if p == phone]
        gaps = {b - a for a, b in itertools.pairwise(ats)}
        assert gaps <= {HOUR_MS // 4 - 1, HOUR_MS // 4, HOUR_MS // 4 + 1}
    assert [at for at, p, _ in storms if p == 0] != [at for at, p, _ in storms if p == 1]
    assert list(storm_times(draws, [0], 0.0, START, START + HOUR_MS)) == []


def test_the_scalar_hash_is_the_vectorised_one_bit_for_bit() -> None:
    """Runtime draws use the plain-integer hash (fast on one key); it must give exactly
    what `uniform_hash` gives, negative and large keys included, or a phone's decisions
    would change with the code path."""
    import numpy as np

    from simulator.seeds import Stream, uniform_hash, uniform_hash_scalar

    rng = np.random.default_rng(5)
    for _ in range(300):
        seed = int(rng.integers(0, 2**63 - 1))
        keys = [int(k) for k in rng.integers(-(2**62), 2**62, size=int(rng.integers(1, 5)))]
        keys.append(int(rng.integers(0, 2**32)))  # a crc32
        stream = list(Stream)[int(rng.integers(0, len(Stream)))]
        vectorised = float(uniform_hash(seed, stream, *(np.int64(k) for k in keys)))
        assert uniform_hash_scalar(seed, stream, *keys) == vectorised
