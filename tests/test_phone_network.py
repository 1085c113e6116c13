"""The phone's upload and pot-sync logic (sans-I/O core) on a real SQLite file, with the
backend's answers scripted (pure logic: the real backend is in the fleet tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from simulator.drivers.blocking import connect, run
from simulator.drivers.network import run_blocking
from simulator.phone import app, potsync, schema
from simulator.phone.effects import Http, HttpResponse, NetworkError
from simulator.phone.profiles import V2, V3, FixProfile
from simulator.phone.uploader import (
    Credentials,
    QueuePolicy,
    backoff_ms,
    drain_queue,
    upload_batch,
)

NOW = 1_704_110_400_000
CREDS = Credentials("dev-1", "s3cret")


def phone(tmp_path: Path, profile: FixProfile):  # type: ignore[no-untyped-def]
    conn = connect(tmp_path / f"{profile.name}.db")
    run(conn, schema.open_schema(profile.schema_version))
    return conn


def contribution(i: int) -> app.Contribution:
    return app.Contribution(f"b{i}", NOW + i, 30, "u33dc0", True, NOW + i, "user-1")


def script(*answers: HttpResponse | NetworkError) -> tuple[Callable[[Http], object], list[Http]]:
    sent: list[Http] = []
    pending = list(answers)

    def respond(request: Http) -> HttpResponse | NetworkError:
        sent.append(request)
        return pending.pop(0)
    return respond, sent


def rows(conn, sql: str) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    return conn.execute(sql).fetchall()


@pytest.mark.parametrize("profile", [V2, V3], ids=lambda p: p.name)
def test_an_acknowledged_upload_is_saved_and_not_queued(tmp_path: Path,
                                                        profile: FixProfile) -> None:
    conn = phone(tmp_path, profile)
    respond, sent = script(HttpResponse(201, b"{}"))
    outcome = run_blocking(conn, respond, upload_batch(b'{"x":1}', contribution(1), CREDS,
                                                       NOW, 0.5, profile))
    assert outcome.result == "saved" and outcome.status == 201
    assert sent[0].path == "/upload" and ("Idempotency-Key", "b1") in sent[0].headers
    assert rows(conn, "SELECT id, samples_count FROM contributions") == [("b1", 30)]
    assert rows(conn, "SELECT COUNT(*) FROM upload_queue") == [(0,)]


def test_failures_are_queued_with_backoff_and_the_worker_delivers_them(
        tmp_path: Path) -> None:
    conn = phone(tmp_path, V3)
    respond, _ = script(HttpResponse(503), NetworkError("timeout"), HttpResponse(422))
    results = [run_blocking(conn, respond, upload_batch(b'{"n":%d}' % i, contribution(i),
                                                        CREDS, NOW, 1.0, V3)).result
               for i in range(3)]
    assert results == ["queued", "queued", "refused"]  # a 422 cannot be fixed by retrying
    queue = rows(conn, "SELECT id, retry_count, last_error, next_retry_at FROM upload_queue "
                       "ORDER BY id")
    assert queue == [("b0", 0, "http 503", NOW + 30_000), ("b1", 0, "timeout", NOW + 30_000)]
    # offline: the worker stops at the first network error and counts the attempt
    respond, sent = script(NetworkError("offline"))
    done = run_blocking(conn, respond, drain_queue(CREDS, NOW + 60_000, [1.0], V3,
                                                   lambda b, e: contribution(int(b[1:]))))
    assert [d[1].result for d in done] == ["queued"] and len(sent) == 1
    assert rows(conn, "SELECT retry_count, next_retry_at FROM upload_queue WHERE id = 'b0'") == [
        (1, NOW + 60_000 + 60_000)]
    respond, sent = script(HttpResponse(201), HttpResponse(201))
    done = run_blocking(conn, respond, drain_queue(CREDS, NOW + 10 * 60_000, [1.0], V3,
                                                   lambda b, e: contribution(int(b[1:]))))
    assert sorted((b, d.result) for b, d in done) == [("b0", "saved"), ("b1", "saved")]
    assert rows(conn, "SELECT COUNT(*) FROM upload_queue") == [(0,)]
    assert sorted(r[0] for r in rows(conn, "SELECT id FROM contributions")) == ["b0", "b1"]
    assert orjson.loads(sent[0].body) == {"n": 1} or orjson.loads(sent[0].body) == {"n": 0}


def test_the_queue_is_bounded_and_drops_the_oldest(tmp_path: Path) -> None:
    conn = phone(tmp_path, V2)
    policy = QueuePolicy(max_entries=2)
    respond, _ = script(*[HttpResponse(500)] * 3)
    outcomes = [run_blocking(conn, respond, upload_batch(b"{}", contribution(i), CREDS,
                                                         NOW + i, 0.0, V2, policy))
                for i in range(3)]
    assert [o.result for o in outcomes] == ["queued", "queued", "queued"]
    assert [o.evicted for o in outcomes] == [None, None, "b0"]
    assert [r[0] for r in rows(conn, "SELECT id FROM upload_queue ORDER BY id")] == ["b1", "b2"]


def test_backoff_grows_exponentially_within_its_jitter_and_cap() -> None:
    policy = QueuePolicy(base_backoff_ms=1_000, max_backoff_ms=60_000)
    assert [backoff_ms(n, 1.0, policy) for n in range(8)] == [
        1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
    assert backoff_ms(3, 0.0, policy) == 4_000 and backoff_ms(100, 0.5, policy) == 45_000


def _state(uploads: int, updated: int) -> bytes:
    return orjson.dumps({"user_id": "user-1", "total_credits": 0, "uploads_today": uploads,
                         "uploads_required": 5, "is_unlocked": uploads >= 5,
                         "has_claimed_today": False, "last_claim_date": None,
                         "pot_day": "2024-01-01", "version": uploads,
                         "backend_updated_at": updated})


def _cached_uploads(conn) -> int:  # type: ignore[no-untyped-def]
    return int(rows(conn, "SELECT uploads_today FROM daily_pot_cache")[0][0])


@pytest.mark.parametrize("profile", [V2, V3], ids=lambda p: p.name)
def test_a_failed_pot_sync_keeps_the_optimistic_state_only_as_shipped(
        tmp_path: Path, profile: FixProfile) -> None:
    conn = phone(tmp_path, profile)
    respond, _ = script(HttpResponse(200, _state(1, NOW)), NetworkError("offline"))
    assert run_blocking(conn, respond, potsync.record_upload(
        "user-1", "b1", CREDS, NOW, profile)) == "synced"
    assert _cached_uploads(conn) == 1
    assert run_blocking(conn, respond, potsync.record_upload(
        "user-1", "b2", CREDS, NOW + 1, profile)) == "pending"
    if profile.pot_versioning:  # §3.3: revert to the last confirmed state, re-send later
        assert _cached_uploads(conn) == 1
        respond, sent = script(HttpResponse(200, _state(2, NOW + 5)))
        assert run_blocking(conn, respond, potsync.flush_pending(
            "user-1", CREDS, NOW + 10, profile)) == 1
        assert orjson.loads(sent[0].body) == {"batch_id": "b2"}
        assert _cached_uploads(conn) == 2
    else:  # as shipped: the optimistic count stays, unconfirmed
        assert _cached_uploads(conn) == 2


def test_a_pot_upload_queued_while_pending_ones_are_sent_stays_queued(
        tmp_path: Path) -> None:
    """flush_pending's requests await: another operation can queue a pot upload in
    between. Only what flush delivered leaves the queue (it used to write back the list
    it read first, dropping the newcomer)."""
    conn = phone(tmp_path, V3)
    respond, _ = script(NetworkError("offline"))
    run_blocking(conn, respond, potsync.record_upload("user-1", "b1", CREDS, NOW, V3))
    assert orjson.loads(run(conn, app.get_state(potsync.PENDING_UPLOADS_KEY))) == ["b1"]

    def respond_and_queue_another(request: Http) -> HttpResponse:
        # while b1's request is out, b2's pot sync fails and queues b2
        run_blocking(conn, lambda _: NetworkError("timeout"), potsync.record_upload(
            "user-1", "b2", CREDS, NOW + 1, V3))
        return HttpResponse(200, _state(1, NOW + 2))
    assert run_blocking(conn, respond_and_queue_another, potsync.flush_pending(
        "user-1", CREDS, NOW + 3, V3)) == 1
    assert orjson.loads(run(conn, app.get_state(potsync.PENDING_UPLOADS_KEY))) == ["b2"]


def test_reconcile_keeps_the_newer_of_cache_and_backend_with_versioning(
        tmp_path: Path) -> None:
    for profile, expected in ((V2, "synced"), (V3, "conflict")):
        conn = phone(tmp_path, profile)
        respond, _ = script(HttpResponse(200, _state(3, NOW + 100)),
                            HttpResponse(200, _state(2, NOW + 50)))
        run_blocking(conn, respond, potsync.reconcile("user-1", CREDS, NOW, profile))
        assert _cached_uploads(conn) == 3
        # the backend answers an older state (a stale replica, a restored backup)
        assert run_blocking(conn, respond, potsync.reconcile(
            "user-1", CREDS, NOW + 1, profile)) == expected
        assert _cached_uploads(conn) == (2 if profile is V2 else 3)


def test_an_offline_claim_is_queued_with_versioning_and_sent_later(tmp_path: Path) -> None:
    conn = phone(tmp_path, V2)
    respond, _ = script(NetworkError("offline"))
    assert run_blocking(conn, respond, potsync.claim("user-1", "c-1", CREDS, NOW, V2)) == "failed"
    conn = phone(tmp_path, V3)
    respond, _ = script(NetworkError("offline"))
    assert run_blocking(conn, respond, potsync.claim("user-1", "c-1", CREDS, NOW, V3)) == "queued"
    respond, sent = script(HttpResponse(200, _state(5, NOW + 9)))
    assert run_blocking(conn, respond, potsync.flush_pending("user-1", CREDS, NOW + 10, V3)) == 1
    assert ("Idempotency-Key", "c-1") in sent[0].headers
    assert rows(conn, f"SELECT COUNT(*) FROM app_state WHERE key = "
                      f"'{potsync.PENDING_CLAIM_KEY}'") == [(0,)]


def test_an_app_killed_mid_operation_keeps_only_what_was_committed(tmp_path: Path) -> None:
    """run_async's kill: v2's two-step completion tears, v3's transaction rolls back."""
    import asyncio

    from simulator.checks.invariants import check_queue
    from simulator.drivers.network import AppKilled, run_async
    from simulator.phone.uploader import drain_queue

    sent: list[Http] = []

    async def backend(request: Http) -> HttpResponse:
        sent.append(request)
        return HttpResponse(201, b"{}")

    for profile, torn in ((V2, True), (V3, False)):
        conn = phone(tmp_path, profile)
        run(conn, app.enqueue_upload("b1", "{}", NOW))
        # effects of the drain: SELECT due, POST, [BEGIN,] INSERT, ... : die after INSERT
        kill = 3 if profile is V2 else 4
        with pytest.raises(AppKilled):
            asyncio.run(run_async(tmp_path / f"{profile.name}.db", backend, drain_queue(
                CREDS, NOW + 10**9, [0.5], profile, lambda b, e: contribution(1)),
                kill_after=kill))
        assert [a.kind for a in check_queue(conn)] == (["torn operation"] if torn else [])
        assert rows(conn, "SELECT COUNT(*) FROM upload_queue") == [(1,)]  # still queued
        conn.close()
    sent.clear()
    with pytest.raises(AppKilled):
        asyncio.run(run_async(tmp_path / "v3.db", backend, upload_batch(
            b"{}", contribution(2), CREDS, NOW, 0.5, V3), kill_after=0))
    assert sent == []  # killed before the request: the batch existed only in memory


@pytest.mark.parametrize("profile", [V2, V3], ids=lambda p: p.name)
def test_retry_after_is_honoured_only_by_the_profile_that_has_it(
        tmp_path: Path, profile: FixProfile) -> None:
    """Five queued batches, every answer 429 with Retry-After 600 s: as shipped (v2) the
    worker sends all five and keeps its own 60 s backoff; v3 stops after the first and
    waits the ten minutes; a new upload's first retry waits them too."""
    conn = phone(tmp_path, profile)
    limited = HttpResponse(429, b'{"error":"rate_limited"}', retry_after_s=600)
    respond, _ = script(*[limited] * 5)
    for i in range(5):
        outcome = run_blocking(conn, respond, upload_batch(b'{"n":%d}' % i, contribution(i),
                                                           CREDS, NOW, 1.0, profile))
        assert outcome.result == "queued"
    first_try = [r[0] - NOW for r in rows(conn, "SELECT next_retry_at FROM upload_queue")]
    assert first_try == [600_000 if profile.honor_retry_after else 30_000] * 5
    respond, sent = script(*[limited] * 5)
    done = run_blocking(conn, respond, drain_queue(CREDS, NOW + 600_000, [1.0], profile,
                                                   lambda b, e: contribution(int(b[1:]))))
    assert [o.result for _, o in done] == ["queued"] * len(sent)
    waits = {r[0] - (NOW + 600_000) for r in rows(
        conn, "SELECT next_retry_at FROM upload_queue WHERE retry_count = 1")}
    if profile.honor_retry_after:
        assert len(sent) == 1 and waits == {600_000}
    else:
        assert len(sent) == 5 and waits == {60_000}
    assert rows(conn, "SELECT COUNT(*) FROM upload_queue") == [(5,)]  # nothing lost
