"""PostgreSQL shut down in immediate mode under load and started again, the backend left
running: while the database is down every answer is 503 with Retry-After (never 500),
the backend reconnects by itself, and every upload it acknowledged is stored once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from conftest import BACKEND_START_MS

from simulator.backend.app import BackendConfig
from simulator.backend.clock import BackendClock
from simulator.backend.postgres import start_embedded
from simulator.backend.server import BackgroundServer

PHONES = 6
PACE_S = 0.1  # between a device's uploads: 24 of them span the 2 s outage


def _envelopes() -> dict[str, list[dict[str, Any]]]:
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "generate", "--phones",
                          str(PHONES), "--hours", "2", "--seed", "8", "--start",
                          "2024-01-01T00:00:00Z", "--out", "-", "--progress", "never"],
                         capture_output=True, check=True).stdout
    by_device: dict[str, list[dict[str, Any]]] = {}
    for line in out.splitlines():
        envelope = orjson.loads(line)
        by_device.setdefault(envelope["device_id"], []).append(envelope)
    return by_device


def _send_all(url: str, envelopes: list[dict[str, Any]], statuses: Counter[int],
              acknowledged: list[str], deadline: float) -> None:
    """One device's batches, each until it is acknowledged (a test client, not the app:
    it retries at once after a 503, so it keeps sending while the database is down)."""
    first = envelopes[0]
    with httpx.Client(base_url=url, timeout=10) as http:
        secret = http.post("/devices", json={"device_id": first["device_id"],
                                             "user_id": first["user_id"]}).json()["secret"]
        auth = {"X-Device-Id": first["device_id"], "Authorization": f"Bearer {secret}"}
        for envelope in envelopes:
            while time.monotonic() < deadline:
                answer = http.post("/upload", content=orjson.dumps(envelope), headers={
                    **auth, "Idempotency-Key": envelope["batch_id"]})
                statuses[answer.status_code] += 1
                if answer.status_code == 503:
                    assert answer.headers["Retry-After"].isdigit()
                    assert answer.json()["error"] == "database_unavailable"
                if answer.status_code == 201:
                    acknowledged.append(envelope["batch_id"])
                    break
                time.sleep(0.05)
            time.sleep(PACE_S)


@pytest.mark.slow
def test_a_database_restart_is_503_then_nothing_acknowledged_is_lost(
        caplog: pytest.LogCaptureFixture) -> None:
    database = start_embedded()
    try:
        config = BackendConfig(database.url, clock=BackendClock(
            origin_ms=BACKEND_START_MS + 7_200_000))
        by_device = _envelopes()
        statuses: Counter[int] = Counter()
        acknowledged: list[str] = []
        health: Counter[int] = Counter()
        with BackgroundServer(config) as running:
            deadline = time.monotonic() + 60
            senders = [threading.Thread(target=_send_all, args=(
                running.url, envelopes, statuses, acknowledged, deadline))
                for envelopes in by_device.values()]
            for sender in senders:
                sender.start()
            time.sleep(0.3)
            restart = threading.Thread(target=database.restart_immediately, args=(2.0,))
            restart.start()
            while restart.is_alive():
                health[httpx.get(f"{running.url}/healthz", timeout=10).status_code] += 1
                time.sleep(0.1)
            for sender in senders:
                sender.join()
            after = httpx.get(f"{running.url}/healthz", timeout=10).status_code
        stored = asyncio.run(_stored(database.url))
    finally:
        database.stop()
    print("statuses", dict(statuses), "health", dict(health))
    assert set(statuses) <= {201, 503}, statuses  # never a 500
    assert statuses[503] > 0 and health[503] > 0  # the outage was seen, as 503
    assert after == 200  # reconnected by itself
    outage_lines = [r.getMessage() for r in caplog.records if r.name == "ggsim.backend"]
    assert sum("database unavailable (first" in m for m in outage_lines) == 1, outage_lines
    assert sum("database back after" in m for m in outage_lines) == 1, outage_lines
    total = sum(len(e) for e in by_device.values())
    assert len(acknowledged) == len(set(acknowledged)) == total  # everything, in the end
    assert stored == Counter({batch_id: 1 for batch_id in acknowledged})  # each once


async def _stored(url: str) -> Counter[str]:
    conn = await asyncpg.connect(url)
    rows = await conn.fetch("SELECT batch_id::text FROM recommended.upload_receipts")
    await conn.close()
    return Counter(row[0] for row in rows)
