"""Per-device rate limits: the token bucket (pure), and the backend answering 429 with
Retry-After past it (real HTTP, real PostgreSQL), writing nothing for a refused request,
and leaving other devices alone."""

from __future__ import annotations

import httpx
import pytest
from test_backend_api import ENVELOPES, START_MS, Phone, _count

from simulator.backend.app import BackendConfig
from simulator.backend.clock import BackendClock
from simulator.backend.ratelimit import RateLimit, TokenBuckets
from simulator.backend.server import BackgroundServer


def test_a_bucket_allows_its_burst_then_a_token_per_refill_interval() -> None:
    buckets = TokenBuckets(RateLimit(burst=3, per_minute=6))  # a token every 10 s
    assert [buckets.take("a", 0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", 0) == 10 and buckets.take("a", 4_000) == 6  # refused: no spend
    assert buckets.take("b", 0) == 0  # another key has its own bucket
    assert buckets.take("a", 10_000) == 0 and buckets.take("a", 10_000) == 10
    assert [buckets.take("a", 60_000) for _ in range(4)] == [0, 0, 0, 10]  # capped at burst


def test_a_clock_set_back_refills_nothing() -> None:
    buckets = TokenBuckets(RateLimit(burst=1, per_minute=60))
    assert buckets.take("a", 100_000) == 0
    assert buckets.take("a", 50_000) == 1  # back in time: no token came back
    assert buckets.take("a", 51_000) == 0


def test_no_limit_and_no_refill() -> None:
    assert all(TokenBuckets(RateLimit(burst=0)).take("a", 0) == 0 for _ in range(1000))
    frozen = TokenBuckets(RateLimit(burst=1, per_minute=0))
    assert frozen.take("a", 0) == 0 and frozen.take("a", 10**12) == 3600


@pytest.mark.parametrize("schema", ["recommended", "as-is"])
def test_the_backend_answers_429_with_retry_after_and_writes_nothing(
        database_url: str, schema: str) -> None:
    clock = BackendClock(origin_ms=START_MS + 3_600_000, speed=1.0)
    config = BackendConfig(database_url, schema=schema, clock=clock,
                           rate_limit=RateLimit(burst=4, per_minute=2))  # then one per 30 s
    with BackgroundServer(config) as running:
        alice = Phone(running, ENVELOPES[0])
        for i in range(4):
            answer = alice.http.post("/daily-pot/upload", json={"batch_id": f"b{i}"},
                                     headers=alice.auth)
            assert answer.status_code == 200, answer.text
        refused = alice.upload(ENVELOPES[0])
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 30
        assert _count(running, "sensor_batches") == 0 and _count(running, "pot_events") == 4
        # another device is not limited by alice's requests
        other = {**ENVELOPES[1], "device_id": "bob-phone", "user_id": "bob"}
        bob = Phone(running, other)
        assert bob.http.get("/daily-pot", headers=bob.auth).status_code == 200
        # a wrong secret is 401 and spends nothing of alice's (nor of anyone's)
        wrong = {**alice.auth, "Authorization": "Bearer nope"}
        assert httpx.get(f"{running.url}/daily-pot", headers=wrong).status_code == 401
        clock.restart_at(clock.now_ms() + 30_000, 1.0)  # half a minute later
        assert alice.upload(ENVELOPES[0]).status_code == 201
        assert alice.upload(ENVELOPES[1]).status_code == 429
        assert _count(running, "sensor_batches") == 1
