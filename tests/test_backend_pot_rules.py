"""The daily pot's rules as pure functions (no database): day boundary, unlock, claims."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.backend import pot
from simulator.backend.payload import InputError

RULES = pot.PotRules(uploads_required=3, reward=10)
NOON = 1_704_110_400_000  # 2024-01-01T12:00:00Z
DAY = pot.DAY_MS


def test_the_count_resets_at_utc_midnight_without_a_write() -> None:
    p = pot.fresh("u", NOON, RULES)
    for i in range(3):
        p = pot.record_upload(p, NOON + i)
    assert pot.as_json(p)["is_unlocked"]
    tomorrow = pot.current(p, NOON + DAY // 2)  # 00:00 next day
    assert (tomorrow.uploads_today, str(tomorrow.pot_day)) == (0, "2024-01-02")
    assert tomorrow.version == p.version  # nothing written yet
    assert pot.current(p, NOON + DAY // 2 - 1).uploads_today == 3  # 23:59:59.999


def test_claims_need_an_unlocked_pot_and_happen_once_a_day() -> None:
    p = pot.fresh("u", NOON, RULES)
    with pytest.raises(InputError) as locked:
        pot.claim(p, NOON, RULES)
    assert (locked.value.status, locked.value.code) == (409, "pot_locked")
    for i in range(3):
        p = pot.record_upload(p, NOON + i)
    p = pot.claim(p, NOON + 10, RULES)
    assert p.total_credits == 10 and pot.as_json(p)["has_claimed_today"]
    with pytest.raises(InputError) as twice:
        pot.claim(p, NOON + 20, RULES)
    assert (twice.value.status, twice.value.code) == (409, "already_claimed")
    nxt = p
    for i in range(3):
        nxt = pot.record_upload(nxt, NOON + DAY + i)
    assert pot.claim(nxt, NOON + DAY + 5, RULES).total_credits == 20


@given(st.lists(st.tuples(st.sampled_from(["upload", "claim"]),
                          st.integers(0, 3 * DAY)), max_size=40))
def test_version_only_grows_and_credits_never_drop(events: list[tuple[str, int]]) -> None:
    p = pot.fresh("u", NOON, RULES)
    now = NOON
    for kind, step in events:
        now += step // 40
        before = p
        try:
            p = pot.record_upload(p, now) if kind == "upload" else pot.claim(p, now, RULES)
        except InputError:
            continue
        assert p.version == before.version + 1
        assert p.total_credits >= before.total_credits
        assert p.updated_at_ms >= before.updated_at_ms
