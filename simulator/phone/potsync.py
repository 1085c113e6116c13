"""DailyPotService (review §3.2-3.4) as sans-I/O network operations.

`record_upload`: the optimistic update (uploads_today + 1) is cached, then
POST /daily-pot/upload; the confirmed state is cached. On failure the profile decides
(§3.3): as shipped the optimistic state is kept; with `pot_versioning` the cache reverts
to the last state the backend confirmed, and the upload is remembered as pending so the
next sync re-sends it (the backend counts a batch id once).

`reconcile`: on app restart, GET /daily-pot and keep whichever of cache and backend is
newer by `backend_updated_at` (§3.4); as shipped, the backend state overwrites the cache
(the "Fetch from backend" row of §3.3).

`claim`: with the network, POST /daily-pot/claim; offline, as shipped, the claim fails
(§3.3 "not supported"); with `pot_versioning` it is queued (`app_state`) and sent with its
idempotency key when the phone is next online (`flush_pending`).

The sync state (synced / pending / conflict, §3.4) is kept in `app_state` under
`pot_sync_state`. Invariant: a cached state the backend confirmed is never replaced by
an older confirmed state when `pot_versioning` is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from simulator.phone import app
from simulator.phone.effects import Http, HttpResponse, NetOperation, NetworkError, Operation, Sql
from simulator.phone.profiles import FixProfile
from simulator.phone.uploader import Credentials

SYNC_KEY = "pot_sync_state"
PENDING_UPLOADS_KEY = "pot_pending_uploads"
PENDING_CLAIM_KEY = "pot_pending_claim"


def _cache_row(state: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A backend pot state as a daily_pot_cache row."""
    return {"user_id": state["user_id"], "total_credits": state["total_credits"],
            "uploads_today": state["uploads_today"],
            "uploads_required": state["uploads_required"],
            "is_unlocked": int(state["is_unlocked"]),
            "has_claimed_today": int(state["has_claimed_today"]),
            "last_claim_date": state["last_claim_date"], "last_synced_at": now_ms,
            "cached_at": now_ms, "backend_updated_at": state["backend_updated_at"]}


def _columns(profile: FixProfile) -> list[str]:
    """The cache's columns: v3 adds backend_updated_at (review §3.4)."""
    return [*app.POT_COLUMNS, *(["backend_updated_at"] if profile.schema_version == 3 else [])]


def cached(user_id: str, profile: FixProfile) -> NetOperation[dict[str, Any] | None]:
    """The cached pot row as a dict (None if nothing is cached)."""
    columns = _columns(profile)
    rows = yield Sql(f"SELECT {', '.join(columns)} FROM daily_pot_cache WHERE user_id = ?",
                     (user_id,))
    return dict(zip(columns, rows[0], strict=True)) if rows else None


def _write_row(row: dict[str, Any], profile: FixProfile) -> NetOperation[None]:
    """Replace the cached row as is (the optimistic update and the revert: no version
    check, the row's own backend_updated_at is kept)."""
    columns = _columns(profile)
    yield Sql(f"INSERT OR REPLACE INTO daily_pot_cache ({', '.join(columns)}) "
              f"VALUES ({', '.join('?' * len(columns))})", tuple(row.get(c) for c in columns))


def _request(method: str, path: str, creds: Credentials, body: bytes = b"",
             key: str | None = None) -> NetOperation[HttpResponse | NetworkError]:
    headers = creds.headers()
    if key:
        headers = (*headers, ("Idempotency-Key", key))
    try:
        response: HttpResponse = yield Http(method, path, body, headers)
    except NetworkError as exc:
        return exc
    return response


def _set_state(now_ms: int, sync: str) -> NetOperation[None]:
    yield from app.set_state(SYNC_KEY, sync, now_ms)


def _pending(key: str) -> NetOperation[list[str]]:
    value = yield from app.get_state(key)
    return list(orjson.loads(value)) if value else []


def _confirm(response: HttpResponse, now_ms: int,
             profile: FixProfile) -> NetOperation[dict[str, Any]]:
    state: dict[str, Any] = orjson.loads(response.body)
    yield from app.cache_daily_pot(_cache_row(state, now_ms), profile)
    yield from _set_state(now_ms, "synced")
    return state


def record_upload(user_id: str, batch_id: str, creds: Credentials, now_ms: int,
                  profile: FixProfile) -> NetOperation[str]:
    """After a saved upload: optimistic cache, POST, confirmed cache. Returns the sync
    state afterwards ("synced" or "pending")."""
    before = yield from cached(user_id, profile)
    if before is not None:
        optimistic = {**before, "uploads_today": before["uploads_today"] + 1,
                      "cached_at": now_ms}
        optimistic["is_unlocked"] = int(optimistic["uploads_today"] >=
                                        optimistic["uploads_required"])
        yield from _write_row(optimistic, profile)
    response = yield from _request("POST", "/daily-pot/upload", creds,
                                   orjson.dumps({"batch_id": batch_id}))
    if isinstance(response, HttpResponse) and response.status == 200:
        yield from _confirm(response, now_ms, profile)
        return "synced"
    if profile.pot_versioning:  # §3.3: revert to the last known good state, re-send later
        if before is not None:
            yield from _write_row(before, profile)
        pending = yield from _pending(PENDING_UPLOADS_KEY)
        yield from app.set_state(PENDING_UPLOADS_KEY, orjson.dumps([*pending, batch_id])
                                 .decode(), now_ms)
    yield from _set_state(now_ms, "pending")
    return "pending"


def reconcile(user_id: str, creds: Credentials, now_ms: int,
              profile: FixProfile) -> NetOperation[str]:
    """App start: fetch and compare (see the module docstring). Returns the sync state."""
    response = yield from _request("GET", "/daily-pot", creds)
    if not isinstance(response, HttpResponse) or response.status != 200:
        yield from _set_state(now_ms, "pending")
        return "pending"
    backend: dict[str, Any] = orjson.loads(response.body)
    mine = yield from cached(user_id, profile)
    if (profile.pot_versioning and mine is not None
            and (mine.get("backend_updated_at") or 0) > backend["backend_updated_at"]):
        yield from _set_state(now_ms, "conflict")  # the cache claims to be newer
        return "conflict"
    yield from _confirm(response, now_ms, profile)
    return "synced"


def claim(user_id: str, claim_id: str, creds: Credentials, now_ms: int,
          profile: FixProfile) -> NetOperation[str]:
    """Claim today's pot: "claimed", "refused" (locked or already claimed: the backend's
    state is cached), "queued" (no answer, pot_versioning), "failed" (no network, as
    shipped: the claim is lost) or "error" (another failure, as shipped: the app shows
    it; the backend may or may not have the claim)."""
    response = yield from _request("POST", "/daily-pot/claim", creds, key=claim_id)
    if isinstance(response, HttpResponse):
        if response.status == 200:
            yield from _confirm(response, now_ms, profile)
            return "claimed"
        if response.status in (409, 422):
            state = orjson.loads(response.body).get("state")
            if state:
                yield from app.cache_daily_pot(_cache_row(state, now_ms), profile)
            return "refused"
    if profile.pot_versioning:
        yield from app.set_state(PENDING_CLAIM_KEY, claim_id, now_ms)
        yield from _set_state(now_ms, "pending")
        return "queued"
    offline = isinstance(response, NetworkError) and response.kind == "offline"
    return "failed" if offline else "error"


def flush_pending(user_id: str, creds: Credentials, now_ms: int,
                  profile: FixProfile) -> NetOperation[int]:
    """Send queued pot uploads and a queued claim (idempotent on the backend); returns
    how many went through. Only what was delivered leaves the queue: the queue is read
    again after the requests (no statement awaits, so the read and the write see one
    state), so a pot upload another operation queued meanwhile is kept."""
    sent = 0
    pending = yield from _pending(PENDING_UPLOADS_KEY)
    delivered: set[str] = set()
    for batch_id in pending:
        response = yield from _request("POST", "/daily-pot/upload", creds,
                                       orjson.dumps({"batch_id": batch_id}))
        if isinstance(response, HttpResponse) and response.status == 200:
            yield from _confirm(response, now_ms, profile)
            delivered.add(batch_id)
            sent += 1
    if delivered:  # re-read: a pot upload may have been queued during our requests
        now_pending = yield from _pending(PENDING_UPLOADS_KEY)
        left = [b for b in now_pending if b not in delivered]
        yield from app.set_state(PENDING_UPLOADS_KEY, orjson.dumps(left).decode(), now_ms)
    claim_id = yield from app.get_state(PENDING_CLAIM_KEY)
    if claim_id:
        result = yield from claim(user_id, claim_id, creds, now_ms, profile)
        if result in ("claimed", "refused"):
            yield Sql("DELETE FROM app_state WHERE key = ? AND value = ?",
                      (PENDING_CLAIM_KEY, claim_id))  # not a claim queued meanwhile
            sent += 1
    return sent


def after_upload(user_id: str, batch_id: str, creds: Credentials, now_ms: int,
                 profile: FixProfile) -> NetOperation[str]:
    """What DailyPotService does after a delivered upload, in one operation (one open
    of the file): send what is pending (the phone is evidently online), then record this
    upload. Returns record_upload's sync state."""
    yield from flush_pending(user_id, creds, now_ms, profile)
    return (yield from record_upload(user_id, batch_id, creds, now_ms, profile))


@dataclass(frozen=True)
class PotCheck:
    """What a verdict reads of a phone's pot at the end: the cached (uploads_today,
    last_synced_at), the claim still waiting to be sent, and the sync state (§3.4)."""

    cached: tuple[int, int] | None
    pending_claim: str | None
    sync_state: str | None


def pot_check(user_id: str) -> Operation[PotCheck]:
    """The phone's pot as a verdict reads it (`PotCheck`)."""
    rows = yield Sql("SELECT uploads_today, last_synced_at FROM daily_pot_cache "
                     "WHERE user_id = ?", (user_id,))
    pending = yield from app.get_state(PENDING_CLAIM_KEY)
    sync = yield from app.get_state(SYNC_KEY)
    return PotCheck((rows[0][0], rows[0][1]) if rows else None, pending, sync)
