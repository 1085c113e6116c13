"""The reference backend over real HTTP on a real PostgreSQL: registration, auth,
uploads (validation, idempotency, as-is duplicates), the daily pot, health, metrics and
the OpenAPI document."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from conftest import BACKEND_START_MS

from simulator.backend.app import BackendConfig
from simulator.backend.clock import BackendClock
from simulator.backend.server import BackgroundServer

START_MS = BACKEND_START_MS


def _envelopes(n: int = 3) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "generate", "--phones", "2",
                          "--hours", "1", "--seed", "5", "--start", "2024-01-01T00:00:00Z",
                          "--out", "-", "--progress", "never"],
                         capture_output=True, check=True).stdout
    lines = [orjson.loads(line) for line in out.splitlines()]
    phone0 = [e for e in lines if e["device_id"].endswith("p000000")]
    return phone0[:n]


ENVELOPES = _envelopes()


class Phone:
    """A registered device talking to the server."""

    def __init__(self, server: BackgroundServer, envelope: dict[str, Any]) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=10)
        answer = self.http.post("/devices", json={"device_id": envelope["device_id"],
                                                  "user_id": envelope["user_id"]})
        assert answer.status_code == 201, answer.text
        self.secret = answer.json()["secret"]
        self.auth = {"X-Device-Id": envelope["device_id"], "Authorization": f"Bearer {self.secret}"}

    def upload(self, envelope: dict[str, Any] | bytes, **headers: str) -> httpx.Response:
        body = envelope if isinstance(envelope, bytes) else orjson.dumps(envelope)
        return self.http.post("/upload", content=body, headers={**self.auth, **headers})


def _count(server: BackgroundServer, table: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(server.config.database_url)
        schema = "as_is" if server.config.schema == "as-is" else "recommended"
        value = await conn.fetchval(f"SELECT COUNT(*) FROM {schema}.{table}")
        await conn.close()
        return int(value)
    return asyncio.run(count())


def test_an_upload_is_stored_once_and_its_retry_returns_the_same_result(
        server: BackgroundServer) -> None:
    phone = Phone(server, ENVELOPES[0])
    first = phone.upload(ENVELOPES[0])
    assert first.status_code == 201, first.text
    again = phone.upload(ENVELOPES[0], **{"Idempotency-Key": ENVELOPES[0]["batch_id"]})
    assert again.status_code == 201
    stored = _count(server, "sensor_batches")
    if server.config.schema == "recommended":
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
        assert stored == 1
    else:  # review §4.1 as it is: no key, the retry is stored again
        assert stored == 2
    assert phone.upload(ENVELOPES[1]).status_code == 201


def test_the_stored_payload_is_the_bytes_the_phone_sent(server: BackgroundServer) -> None:
    phone = Phone(server, ENVELOPES[0])
    assert phone.upload(ENVELOPES[0]).status_code == 201

    async def stored() -> Any:
        conn = await asyncpg.connect(server.config.database_url)
        schema = "as_is" if server.config.schema == "as-is" else "recommended"
        row = await conn.fetchrow(f"SELECT batch_json::text AS j, user_id FROM "
                                  f"{schema}.sensor_batches")
        await conn.close()
        return row
    row = asyncio.run(stored())
    assert orjson.loads(row["j"]) == ENVELOPES[0]["payload"]
    assert row["user_id"] == ENVELOPES[0]["user_id"]


def test_a_batch_id_reused_with_another_body_is_refused(database_url: str) -> None:
    config = BackendConfig(database_url, clock=BackendClock(origin_ms=START_MS + 3_600_000))
    with BackgroundServer(config) as running:
        phone = Phone(running, ENVELOPES[0])
        assert phone.upload(ENVELOPES[0]).status_code == 201
        other = {**ENVELOPES[1], "batch_id": ENVELOPES[0]["batch_id"]}
        answer = phone.upload(other)
        assert answer.status_code == 422 and answer.json()["error"] == "idempotency_key_reused"
        assert _count(running, "sensor_batches") == 1


def _bad_bodies() -> list[tuple[str, bytes, int, str]]:
    good = ENVELOPES[0]

    def edit(change: Any) -> bytes:
        envelope = copy.deepcopy(good)
        change(envelope)
        return orjson.dumps(envelope)

    def future(e: dict[str, Any]) -> None:
        e["payload"]["timestamp"] = START_MS + 3_600_000 + 3_600_000

    return [
        ("malformed", b'{"device_id": ', 400, "malformed_json"),
        ("not json", b"\xff\xfe", 400, "malformed_json"),
        ("array", b"[]", 422, "invalid_field"),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, 422, "invalid_field"),
        ("deep but small", b'{"device_id": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 422,
         "invalid_field"),
        ("wrong type", edit(lambda e: e["payload"].__setitem__("timestamp", "soon")), 422,
         "invalid_field"),
        ("missing field", edit(lambda e: e["payload"].pop("geohash")), 422, "invalid_field"),
        ("unknown envelope key", edit(lambda e: e.__setitem__("extra", 1)), 422,
         "invalid_field"),
        ("count mismatch", edit(lambda e: e["payload"]["summary"].__setitem__("count", 99)),
         422, "invalid_field"),
        ("light out of range", edit(lambda e: e["payload"]["batch"][0].__setitem__(
            "light", -5)), 422, "invalid_field"),
        ("bad geohash", edit(lambda e: e["payload"].__setitem__("geohash", "u33dca")), 422,
         "invalid_field"),
        ("future timestamp", edit(future), 422, "timestamp_in_future"),
        ("before 2020", edit(lambda e: e["payload"].__setitem__("timestamp", 0)), 422,
         "invalid_field"),
        ("bad batch id", edit(lambda e: e.__setitem__("batch_id", "x")), 422,
         "invalid_field"),
        ("another device", edit(lambda e: e.__setitem__("device_id", "sim-other")), 403,
         "device_mismatch"),
        ("huge", b" " * 300_000, 413, "body_too_large"),
        # PostgreSQL's json and jsonb cannot store U+0000 (it used to answer 500)
        ("NUL in the payload", edit(lambda e: e["payload"].__setitem__("note", "a\x00b")),
         422, "invalid_field"),
        ("NUL in a payload key", edit(lambda e: e["payload"].__setitem__("k\x00", 1)), 422,
         "invalid_field"),
    ]


@pytest.mark.parametrize(("name", "body", "status", "code"), _bad_bodies(),
                         ids=[b[0] for b in _bad_bodies()])
def test_bad_uploads_get_a_specific_4xx_and_write_nothing(
        server: BackgroundServer, name: str, body: bytes, status: int, code: str) -> None:
    phone = Phone(server, ENVELOPES[0])
    answer = phone.upload(body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code and answer.json()["detail"]
    assert _count(server, "sensor_batches") == 0
    assert _count(server, "user_stats") == 0


def test_credentials_are_required_and_checked(server: BackgroundServer) -> None:
    phone = Phone(server, ENVELOPES[0])
    body = orjson.dumps(ENVELOPES[0])
    for headers in ({}, {"X-Device-Id": ENVELOPES[0]["device_id"]},
                    {**phone.auth, "Authorization": "Bearer wrong"},
                    {**phone.auth, "X-Device-Id": "sim-unknown"}):
        answer = phone.http.post("/upload", content=body, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] in (
            "missing_credentials", "bad_credentials")
        assert phone.http.get("/daily-pot", headers=headers).status_code == 401
    assert _count(server, "sensor_batches") == 0
    again = phone.http.post("/devices", json={"device_id": ENVELOPES[0]["device_id"],
                                              "user_id": "someone"})
    assert again.status_code == 409 and "secret" not in again.json()
    assert phone.http.post("/devices", json={"user_id": 7}).status_code == 422


def test_the_daily_pot_unlocks_claims_once_and_replays(server: BackgroundServer) -> None:
    phone = Phone(server, ENVELOPES[0])
    state = phone.http.get("/daily-pot", headers=phone.auth).json()
    assert (state["uploads_today"], state["is_unlocked"], state["pot_day"]) == (
        0, False, "2024-01-01")
    locked = phone.http.post("/daily-pot/claim", headers={**phone.auth, "Idempotency-Key": "a"})
    assert locked.status_code == 409 and locked.json()["error"] == "pot_locked"
    assert locked.json()["state"]["total_credits"] == 0
    for i in range(6):  # five distinct uploads and one retry
        answer = phone.http.post("/daily-pot/upload", json={"batch_id": f"b{min(i, 4)}"},
                                 headers=phone.auth)
        assert answer.status_code == 200
    assert answer.headers["Idempotent-Replayed"] == "true"
    state = answer.json()
    assert (state["uploads_today"], state["is_unlocked"]) == (5, True)
    claimed = phone.http.post("/daily-pot/claim", headers={**phone.auth, "Idempotency-Key": "a"})
    assert claimed.status_code == 200 and claimed.json()["total_credits"] == 10
    assert claimed.json()["version"] > state["version"]
    assert claimed.json()["backend_updated_at"] >= state["backend_updated_at"]
    replay = phone.http.post("/daily-pot/claim", headers={**phone.auth, "Idempotency-Key": "a"})
    assert replay.status_code == 200 and replay.json() == claimed.json()
    second = phone.http.post("/daily-pot/claim", headers={**phone.auth, "Idempotency-Key": "b"})
    assert second.status_code == 409 and second.json()["error"] == "already_claimed"
    assert second.json()["state"]["total_credits"] == 10
    no_key = phone.http.post("/daily-pot/claim", headers=phone.auth)
    assert no_key.status_code == 422


def test_ids_follow_one_rule_everywhere_and_a_refused_one_writes_nothing(
        server: BackgroundServer) -> None:
    """Device, user and batch ids and claim keys: 1-128 of [A-Za-z0-9._:-], as the upload
    envelope has them. A NUL in a pot batch id used to reach PostgreSQL (500)."""
    phone = Phone(server, ENVELOPES[0])
    for bad in ("a\x00b", "", "has space", "x" * 129, "é"):
        pot = phone.http.post("/daily-pot/upload", json={"batch_id": bad}, headers=phone.auth)
        assert pot.status_code == 422 and pot.json()["path"] == "$.batch_id", pot.text
        device = phone.http.post("/devices", json={"user_id": bad or "u", "device_id": bad
                                                   or "d d"})
        assert device.status_code == 422 and device.json()["error"] == "invalid_field"
    claim = phone.http.post("/daily-pot/claim", headers={**phone.auth,
                                                        "Idempotency-Key": "has space"})
    assert claim.status_code == 422 and claim.json()["error"] == "invalid_field"
    assert phone.http.post("/devices", json={"user_id": None}).status_code == 422
    for absent_is_not_empty in ("", None):  # only a missing device_id is generated
        device = phone.http.post("/devices", json={"user_id": "u",
                                                   "device_id": absent_is_not_empty})
        assert device.status_code == 422 and device.json()["path"] == "$.device_id"
    assert _count(server, "pot_events") == 0
    assert _count(server, "device_secrets") == 1  # the phone's own registration only


def test_concurrent_pot_changes_count_each_event_once(server: BackgroundServer) -> None:
    """Forty requests at once on one user's pot: 20 distinct uploads each sent twice,
    then 8 claims with different keys. Each upload counts once, exactly one claim wins,
    and the event rows match the pot (the version guard, not a row lock, decides)."""
    phone = Phone(server, ENVELOPES[0])

    async def burst(requests: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            answers = await asyncio.gather(*(client.post(path, json=body, headers={
                **phone.auth, **extra}) for path, body, extra in requests))
        return [a.status_code for a in answers]
    uploads = [("/daily-pot/upload", {"batch_id": f"c{i % 20}"}, {}) for i in range(40)]
    assert asyncio.run(burst(uploads)) == [200] * 40
    claims = [("/daily-pot/claim", {}, {"Idempotency-Key": f"k{i}"}) for i in range(8)]
    statuses = asyncio.run(burst(claims))
    assert sorted(statuses) == [200] + [409] * 7, statuses
    state = phone.http.get("/daily-pot", headers=phone.auth).json()
    assert (state["uploads_today"], state["total_credits"]) == (20, 10)

    async def events() -> list[tuple[str, int]]:
        conn = await asyncpg.connect(server.config.database_url)
        try:
            ns = "recommended" if server.config.schema == "recommended" else "as_is"
            rows = await conn.fetch(f"SELECT kind, count(*) FROM {ns}.pot_events WHERE "
                                    "user_id = $1 GROUP BY kind ORDER BY kind",
                                    ENVELOPES[0]["user_id"])
            return [(r[0], r[1]) for r in rows]
        finally:
            await conn.close()
    assert asyncio.run(events()) == [("claim", 1), ("upload", 20)]


def test_health_metrics_and_openapi(server: BackgroundServer) -> None:
    phone = Phone(server, ENVELOPES[0])
    assert phone.upload(ENVELOPES[0]).status_code == 201
    assert phone.upload(b"{").status_code == 400
    health = phone.http.get("/healthz").json()
    assert health["status"] == "ok" and health["schema"] == server.config.schema
    metrics = phone.http.get("/metrics").text
    assert 'ggsim_http_requests_total{method="POST",route="upload",status="201"} 1.0' in metrics
    assert 'ggsim_rejected_inputs_total{reason="malformed_json"} 1.0' in metrics
    assert 'ggsim_rows_written_total{table="sensor_batches"} 1.0' in metrics
    assert "ggsim_http_request_duration_seconds_bucket" in metrics
    spec = phone.http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/upload", "/devices", "/daily-pot", "/daily-pot/upload", "/daily-pot/claim",
            "/healthz", "/metrics"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["Envelope"]["properties"]["payload"] == {
        "$ref": "#/components/schemas/Payload"}  # not "anything", null included
    pot_body = spec["paths"]["/daily-pot/upload"]["post"]["requestBody"]
    batch_id = pot_body["content"]["application/json"]["schema"]["properties"]["batch_id"]
    assert batch_id["minLength"] == 1 and batch_id["pattern"] == "^[A-Za-z0-9._:-]+$"
    claim = spec["paths"]["/daily-pot/claim"]["post"]["responses"]
    assert "pot_locked" in claim["409"]["description"]
    missing = phone.http.get("/nowhere")
    assert missing.status_code == 404


def test_the_server_runs_the_aggregation_job_by_itself(database_url: str) -> None:
    import time

    config = BackendConfig(database_url, clock=BackendClock(origin_ms=START_MS + 3_600_000),
                           jobs_interval_s=0.2, aggregation_lag_s=0.0)
    with BackgroundServer(config) as running:
        phone = Phone(running, ENVELOPES[0])
        assert phone.upload(ENVELOPES[0]).status_code == 201
        for _ in range(100):
            if _count(running, "sensor_aggregates_5m") == 1:
                break
            time.sleep(0.1)
        assert _count(running, "sensor_aggregates_5m") == 1
        assert running.backend.job_runs >= 1
