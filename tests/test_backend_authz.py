"""Authentication and authorisation of the reference backend, over real HTTP on a real
PostgreSQL under both schema variants: a device cannot upload as another, read or change
another user's pot, or replay another device's request; secrets are stored hashed and
compared in constant time; SQL injection in every string a client sends is inert."""

from __future__ import annotations

import asyncio
import copy
import hmac
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from test_backend_api import ENVELOPES, Phone, _count

from simulator.backend import store
from simulator.backend.server import BackgroundServer

INJECTIONS = ("' OR '1'='1", "x'; DROP TABLE device_secrets; --", "\"; SELECT pg_sleep(5); --",
              "1 UNION SELECT secret_hash FROM device_secrets", "$1", "%s", "\\x00",
              "x') ON CONFLICT DO NOTHING; --")


def _as_device(envelope: dict[str, Any], device_id: str, user_id: str) -> dict[str, Any]:
    """`envelope` as another device's batch: its ids, a new batch id."""
    other = copy.deepcopy(envelope)
    other.update(device_id=device_id, user_id=user_id, batch_id=str(uuid.uuid4()))
    return other


def _rows(server: BackgroundServer, sql: str) -> list[dict[str, Any]]:
    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(server.config.database_url)
        schema = "as_is" if server.config.schema == "as-is" else "recommended"
        rows = await conn.fetch(sql.format(schema=schema))
        await conn.close()
        return [dict(row) for row in rows]
    return asyncio.run(fetch())


def _two_phones(server: BackgroundServer) -> tuple[Phone, Phone, dict[str, Any]]:
    alice = Phone(server, ENVELOPES[0])
    bob_batch = _as_device(ENVELOPES[1], "bob-phone", "bob")
    return alice, Phone(server, bob_batch), bob_batch


def test_a_device_cannot_upload_as_another(server: BackgroundServer) -> None:
    alice, bob, _ = _two_phones(server)
    as_alice = bob.upload(ENVELOPES[0])  # alice's batch, bob's credentials
    assert as_alice.status_code == 403 and as_alice.json()["error"] == "device_mismatch"
    as_alices_user = _as_device(ENVELOPES[0], "bob-phone", ENVELOPES[0]["user_id"])
    answer = bob.upload(as_alices_user)  # bob's device, alice's user
    assert answer.status_code == 403 and answer.json()["error"] == "user_mismatch"
    forged = {**bob.auth, "X-Device-Id": ENVELOPES[0]["device_id"]}  # alice's id, bob's secret
    answer = bob.http.post("/upload", json=ENVELOPES[0], headers=forged)
    assert answer.status_code == 401 and answer.json()["error"] == "bad_credentials"
    assert _count(server, "sensor_batches") == 0
    assert alice.upload(ENVELOPES[0]).status_code == 201


def test_a_device_cannot_replay_another_devices_request(server: BackgroundServer) -> None:
    alice, bob, _ = _two_phones(server)
    assert alice.upload(ENVELOPES[0]).status_code == 201
    key = {"Idempotency-Key": ENVELOPES[0]["batch_id"]}
    # alice's request byte for byte, sent by bob: his credentials do not fit it
    replay = bob.upload(ENVELOPES[0], **key)
    assert replay.status_code == 403
    # alice's batch id on bob's own batch: the id is alice's (recommended), or stored
    # apart from hers (as-is, which has no receipts: review §4.1)
    hijack = _as_device(ENVELOPES[1], "bob-phone", "bob")
    hijack["batch_id"] = ENVELOPES[0]["batch_id"]
    answer = bob.upload(hijack, **key)
    rows = _rows(server, "SELECT device_hash, user_id FROM {schema}.sensor_batches")
    alices = [r for r in rows if r["device_hash"] == store.device_hash(ENVELOPES[0]["device_id"])]
    assert len(alices) == 1 and alices[0]["user_id"] == ENVELOPES[0]["user_id"]
    if server.config.schema == "recommended":
        assert answer.status_code == 422 and answer.json()["error"] == "idempotency_key_reused"
        assert "Idempotent-Replayed" not in answer.headers
        assert len(rows) == 1
    # a claim key is the user's own: bob's claim with alice's key is not alice's replay
    assert bob.http.post("/daily-pot/claim", headers={**bob.auth, "Idempotency-Key": "k"}
                         ).json()["state"]["user_id"] == "bob"


def test_a_device_reads_and_changes_only_its_own_users_pot(server: BackgroundServer) -> None:
    alice, bob, _ = _two_phones(server)
    for i in range(5):
        answer = alice.http.post("/daily-pot/upload", json={"batch_id": f"a{i}"},
                                 headers=alice.auth)
        assert answer.status_code == 200
    # no parameter names a user: a user_id in the query or the body is not read
    alice_user = ENVELOPES[0]["user_id"]
    seen = bob.http.get("/daily-pot", params={"user_id": alice_user}, headers=bob.auth)
    assert seen.status_code == 200 and seen.json()["user_id"] == "bob"
    assert seen.json()["uploads_today"] == 0
    counted = bob.http.post("/daily-pot/upload", json={"batch_id": "b0", "user_id": alice_user},
                            headers=bob.auth)
    assert counted.json()["user_id"] == "bob" and counted.json()["uploads_today"] == 1
    claim = bob.http.post("/daily-pot/claim", params={"user_id": alice_user},
                          headers={**bob.auth, "Idempotency-Key": "c1"})
    assert claim.status_code == 409 and claim.json()["error"] == "pot_locked"
    alices = alice.http.get("/daily-pot", headers=alice.auth).json()
    assert alices["uploads_today"] == 5 and alices["total_credits"] == 0
    for path in ("/daily-pot", "/daily-pot/upload", "/daily-pot/claim", "/upload"):
        method = "GET" if path == "/daily-pot" else "POST"
        anonymous = httpx.request(method, f"{server.url}{path}", json={"batch_id": "x"})
        assert anonymous.status_code == 401, path


def test_secrets_are_stored_hashed_and_compared_in_constant_time(
        server: BackgroundServer, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = Phone(server, ENVELOPES[0])
    rows = _rows(server, "SELECT device_id, secret_hash FROM {schema}.device_secrets")
    assert len(rows) == 1
    stored = bytes(rows[0]["secret_hash"])
    assert stored == store.secret_hash(alice.secret)
    assert alice.secret.encode() not in stored and len(stored) == 32
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    wrong = {**alice.auth, "Authorization": "Bearer " + "x" * len(alice.secret)}
    assert alice.http.get("/daily-pot", headers=wrong).status_code == 401
    assert alice.http.get("/daily-pot", headers=alice.auth).status_code == 200
    # both the refusal and the acceptance went through hmac.compare_digest, on hashes
    assert len(compared) == 2 and all(len(a) == len(b) == 32 for a, b in compared)


def test_sql_injection_in_every_string_is_inert(server: BackgroundServer) -> None:
    alice = Phone(server, ENVELOPES[0])
    assert alice.upload(ENVELOPES[0]).status_code == 201
    before = {t: _count(server, t) for t in ("sensor_batches", "device_secrets", "pot_events")}
    tried = 0
    for text in INJECTIONS:
        bodies = [{**ENVELOPES[1], field: text} for field in ("device_id", "user_id",
                                                                "batch_id")]
        bodies.append({**ENVELOPES[1], "payload": {**ENVELOPES[1]["payload"],
                                                   "geohash": text}})
        for body in bodies:
            answer = alice.upload(body)
            assert 400 <= answer.status_code < 500 and answer.json()["error"], answer.text
        answers = [
            alice.http.post("/devices", json={"user_id": text}),
            alice.http.post("/devices", json={"user_id": "u", "device_id": text}),
            alice.http.post("/daily-pot/upload", json={"batch_id": text}, headers=alice.auth),
            alice.http.post("/daily-pot/claim", headers={**alice.auth, "Idempotency-Key": text}),
            alice.http.get("/daily-pot", headers={**alice.auth, "X-Device-Id": text}),
            alice.http.get("/daily-pot", headers={**alice.auth,
                                                  "Authorization": f"Bearer {text}"}),
            alice.upload(ENVELOPES[1], **{"Idempotency-Key": text}),
        ]
        for answer in answers:
            assert 400 <= answer.status_code < 500, (text, answer.status_code, answer.text)
        tried += len(bodies) + len(answers)
    assert tried == len(INJECTIONS) * 11
    after = {t: _count(server, t) for t in before}
    assert after == before  # nothing written, nothing dropped
    assert alice.http.get("/daily-pot", headers=alice.auth).status_code == 200
