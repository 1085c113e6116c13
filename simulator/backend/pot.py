"""The daily pot's rules (review §3.2), as pure functions of a pot state and the time.

Rules (also in docs/api.md):
- the day is the UTC calendar day of the backend clock; at its start `uploads_today`
  goes back to 0 (a pot read on a new day shows the reset before anything is written);
- each distinct upload recorded (`POST /daily-pot/upload` with a batch id) counts once:
  a retry with the same batch id changes nothing;
- `is_unlocked = uploads_today >= uploads_required`, computed, never stored (review §7
  item 12);
- one claim per day: claiming needs an unlocked pot that has not been claimed today, and
  adds `reward` credits; a retry of the same claim (same key) returns the claimed state,
  a different claim the same day is refused as already claimed;
- every change bumps `version` and sets `updated_at` (the `backend_updated_at` a phone
  compares, review §3.4). Invariant: `version` only grows, `total_credits` never drops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from simulator.backend.payload import InputError
from simulator.instants import DAY_MS as DAY_MS


@dataclass(frozen=True)
class PotRules:
    """The pot's parameters."""

    uploads_required: int = 5
    reward: int = 10


@dataclass(frozen=True)
class Pot:
    """One user's pot as stored."""

    user_id: str
    total_credits: int
    uploads_today: int
    uploads_required: int
    pot_day: date
    last_claim_date: date | None
    version: int
    updated_at_ms: int


def day_of(now_ms: int) -> date:
    """The UTC calendar day of an instant."""
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()


def fresh(user_id: str, now_ms: int, rules: PotRules) -> Pot:
    """A user's pot before anything happened."""
    return Pot(user_id, 0, 0, rules.uploads_required, day_of(now_ms), None, 0, now_ms)


def current(pot: Pot, now_ms: int) -> Pot:
    """The pot as of `now_ms`: a new day resets the upload count (version unchanged
    until something is written)."""
    today = day_of(now_ms)
    if pot.pot_day >= today:
        return pot
    return replace(pot, uploads_today=0, pot_day=today)


def _changed(pot: Pot, now_ms: int, **changes: Any) -> Pot:
    return replace(pot, version=pot.version + 1, updated_at_ms=max(now_ms, pot.updated_at_ms),
                   **changes)


def record_upload(pot: Pot, now_ms: int) -> Pot:
    """One more upload today (the caller has made sure this batch is new)."""
    pot = current(pot, now_ms)
    return _changed(pot, now_ms, uploads_today=pot.uploads_today + 1)


def claim(pot: Pot, now_ms: int, rules: PotRules) -> Pot:
    """Claim today's pot, or raise the InputError the API returns (with the state)."""
    pot = current(pot, now_ms)
    if pot.last_claim_date == pot.pot_day:
        raise InputError(409, "already_claimed", f"the pot of {pot.pot_day} is already claimed")
    if pot.uploads_today < pot.uploads_required:
        raise InputError(409, "pot_locked", f"{pot.uploads_today} of {pot.uploads_required} "
                         f"uploads today; the pot unlocks at {pot.uploads_required}")
    return _changed(pot, now_ms, total_credits=pot.total_credits + rules.reward,
                    last_claim_date=pot.pot_day)


def as_json(pot: Pot) -> dict[str, Any]:
    """The state every pot endpoint returns."""
    return {
        "user_id": pot.user_id,
        "total_credits": pot.total_credits,
        "uploads_today": pot.uploads_today,
        "uploads_required": pot.uploads_required,
        "is_unlocked": pot.uploads_today >= pot.uploads_required,
        "has_claimed_today": pot.last_claim_date == pot.pot_day,
        "last_claim_date": pot.last_claim_date.isoformat() if pot.last_claim_date else None,
        "pot_day": pot.pot_day.isoformat(),
        "version": pot.version,
        "backend_updated_at": pot.updated_at_ms,
    }
