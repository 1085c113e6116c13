"""Dual-writer storms: the two app sides racing on a fully simulated phone's own SQLite
file, during a fleet run.

Each storm is one of the racing pairs of review §2.2 (and the ones it missed), run with
the interleaving scheduler on the phone's real file in a schedule drawn from (seed,
phone, storm number: `schedule.Draw.STORM_KIND`), so it is real SQLite behaviour and
replays exactly:
- `R1`: the Kotlin upload flow's save of an acknowledged batch and Flutter's
  insertContribution of the same id with its own values;
- `R2`: stopTrackingSession from the UI and from the service on one active session;
- `R3`: fetchPotState caching an older backend state while recordUpload caches a newer;
- `R4`: two retry workers counting a failed attempt of one queued upload.
What the app believed is added to the phone's `Ledger`, so the phone-store invariants
checked at the end of the run name whatever broke. Storm rows use their own ids, user
and queue entries (prefix `storm-`), so they never mix with the phone's real uploads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.checks.invariants import Ledger
from simulator.drivers import interleave
from simulator.drivers.blocking import connect, run
from simulator.phone import app
from simulator.phone.profiles import FixProfile

KINDS = ("R1", "R2", "R3", "R4")
FAR_FUTURE_MS = 4_102_444_800_000  # 2100: the retry worker never picks storm entries


def storm(db: Path, profile: FixProfile, ledger: Ledger, *, u: float, phone: int,
          number: int, now_ms: int, user_id: str) -> str:
    """Run one storm on `db`; returns its kind and schedule ("R2:abab"). `u`: the storm's
    uniform (`schedule.RuntimeDraws.storm_kind`), which picks its race and interleaving."""
    kind = KINDS[int(u * len(KINDS)) % len(KINDS)]
    tag = f"storm-{phone}-{number}"
    user = f"{user_id}-{tag}"
    writers: list[tuple[str, Any, int]]
    setup = connect(db, timeout_s=5.0)
    try:
        if kind == "R1":
            kotlin = app.Contribution(tag, now_ms, 30, "u33dc0", True, now_ms, user)
            flutter = app.Contribution(tag, now_ms + 7, 12, "u33dc1", True, now_ms + 7, user)
            _, kotlin_op = app.kotlin_side_save(kotlin, profile)
            writers = [("kotlin", kotlin_op, profile.kotlin_busy_timeout_ms),
                       ("flutter", app.insert_contribution(flutter, profile),
                        profile.flutter_busy_timeout_ms)]
        elif kind == "R2":
            run(setup, app.start_tracking_session(now_ms, profile, user))
            writers = [(w, app.stop_tracking_session(now_ms + d, profile, w, user),
                        profile.flutter_busy_timeout_ms)
                       for w, d in (("ui", 1_000), ("service", 2_000))]
        elif kind == "R3":
            older, newer = _pot(user, now_ms, 2), _pot(user, now_ms + 60_000, 3)
            writers = [("fetch", app.cache_daily_pot(older, profile),
                        profile.flutter_busy_timeout_ms),
                       ("record", app.cache_daily_pot(newer, profile),
                        profile.flutter_busy_timeout_ms)]
        else:
            run(setup, app.enqueue_upload(tag, "{}", now_ms))
            setup.execute("UPDATE upload_queue SET next_retry_at = ? WHERE id = ?",
                          (FAR_FUTURE_MS, tag))
            writers = [(w, app.update_upload_retry(tag, w, FAR_FUTURE_MS, profile),
                        profile.flutter_busy_timeout_ms) for w in ("worker-1", "worker-2")]
    finally:
        setup.close()
    conns = [connect(db) for _ in writers]
    try:
        outcome = interleave.random_schedule(
            [interleave.Writer(name, conn, op, timeout)
             for (name, op, timeout), conn in zip(writers, conns, strict=True)],
            seed=int(u * 2**31) ^ (phone << 20) ^ number)
    finally:
        for conn in conns:
            conn.close()
    _believe(kind, outcome, ledger, user, now_ms, profile, tag)
    return f"{kind}:{outcome.schedule}"


def _pot(user: str, at_ms: int, uploads: int) -> dict[str, Any]:
    return {"user_id": user, "total_credits": 0, "uploads_today": uploads,
            "uploads_required": 5, "is_unlocked": int(uploads >= 5), "has_claimed_today": 0,
            "last_claim_date": None, "last_synced_at": at_ms, "cached_at": at_ms,
            "backend_updated_at": at_ms}


def _believe(kind: str, o: interleave.Interleaving, ledger: Ledger, user: str, now_ms: int,
             profile: FixProfile, tag: str) -> None:
    """What the app's code believed after the storm, as the hunt's judges record it."""
    if kind == "R1":
        kotlin = app.Contribution(tag, now_ms, 30, "u33dc0", True, now_ms, user)
        flutter = app.Contribution(tag, now_ms + 7, 12, "u33dc1", True, now_ms + 7, user)
        if profile.single_writer:
            if o.errors[0] is None:
                ledger.acknowledged.append(kotlin)
        else:  # the backend acknowledged before Kotlin's save
            ledger.acknowledged.append(kotlin)
            if o.results[0] == -1:
                ledger.kotlin_minus_one.add(tag)
        if o.errors[1] is None:
            ledger.acknowledged.append(flutter)
    elif kind == "R2":
        ledger.stops += [r for r, e in zip(o.results, o.errors, strict=True) if e is None]
    elif kind == "R3":
        for (at, uploads), error in zip(((now_ms, 2), (now_ms + 60_000, 3)), o.errors,
                                        strict=True):
            if error is None:
                ledger.pot_seen.append((user, at, uploads))
    else:
        ledger.retries[tag] += sum(1 for e in o.errors if e is None)
