"""Store uploads through the real upload path: the bundled backend on 127.0.0.1, each
device registered with `POST /devices`, each batch sent with `POST /upload` and counted
with `POST /daily-pot/upload`, as the app does after an upload.

The backend runs in this process (a thread) on simulated time set after the end of the
sample (`clock_ms`), so no batch is in its future and its monthly partitions are the
sample's months.
Invariant: `load_through_api` returns only when every request was answered 2xx; any other
answer raises `ApiLoadError` naming the request (the measurement would otherwise be of a
different set of rows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import orjson

from simulator.backend.app import BackendConfig
from simulator.backend.clock import BackendClock
from simulator.backend.ratelimit import RateLimit
from simulator.backend.server import BackgroundServer
from simulator.capacity.workload import Upload
from simulator.errors import ApiLoadError as ApiLoadError

CONCURRENCY = 16
T = TypeVar("T")


@dataclass(frozen=True)
class ApiLoad:
    """What went through the API."""

    devices: int
    uploads: int
    pot_uploads: int
    seconds: float


def load_through_api(database_url: str, schema: str, batches: Sequence[Upload],
                     clock_ms: int, progress: Callable[[str], None] | None = None) -> ApiLoad:
    """Start the backend on `database_url`, store `batches` through it, stop it."""
    # a bulk load of many days per device: the per-device rate limit is for phones
    config = BackendConfig(database_url=database_url, schema=schema, jobs_interval_s=0,
                           clock=BackendClock(origin_ms=clock_ms), rate_limit=RateLimit(0))
    with BackgroundServer(config) as server:
        return asyncio.run(_send_all(server.url, batches, progress))


async def _send_all(url: str, batches: Sequence[Upload],
                    progress: Callable[[str], None] | None) -> ApiLoad:
    loop = asyncio.get_running_loop()
    started = loop.time()
    owners = {b.device_id: b.user_id for b in batches}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        secrets = dict(zip(owners, await _gather(
            [_register(http, device, user) for device, user in owners.items()]), strict=True))
        done = 0
        for start in range(0, len(batches), 1000):
            chunk = batches[start:start + 1000]
            await _gather([_upload(http, b, secrets[b.device_id]) for b in chunk])
            done += len(chunk)
            if progress:
                progress(f"through the API: {done:,} of {len(batches):,} uploads")
    return ApiLoad(len(owners), len(batches), len(batches), loop.time() - started)


async def _gather(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await `calls`, at most CONCURRENCY at a time, results in order."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Awaitable[T]) -> T:
        async with limit:
            return await call
    return list(await asyncio.gather(*(one(c) for c in calls)))


async def _register(http: aiohttp.ClientSession, device_id: str, user_id: str) -> str:
    body = await _post(http, "/devices", orjson.dumps({"device_id": device_id,
                                                       "user_id": user_id}), {})
    return str(body["secret"])


async def _upload(http: aiohttp.ClientSession, batch: Upload, secret: str) -> None:
    auth = {"X-Device-Id": batch.device_id, "Authorization": f"Bearer {secret}"}
    await _post(http, "/upload", batch.body, {**auth, "Idempotency-Key": batch.batch_id})
    await _post(http, "/daily-pot/upload", orjson.dumps({"batch_id": batch.batch_id}), auth)


async def _post(http: aiohttp.ClientSession, path: str, body: bytes,
                headers: dict[str, str]) -> dict[str, object]:
    async with http.post(path, data=body, headers={
            **headers, "Content-Type": "application/json"}) as response:
        text = await response.read()
        if response.status // 100 != 2:
            raise ApiLoadError(f"POST {path} answered {response.status}: {text[:300]!r}")
        answer = orjson.loads(text)
        assert isinstance(answer, dict)
        return answer
