"""The load generator's HTTP: requests built before a step starts, an open-model sender
(`send_at`) that measures, a closed loop (`closed_loop`) that only sets up, and the
client session both use.

The load is OPEN: arrival times are fixed before a step starts (offered rate, or a
burst's offsets) and each request goes at its time whether or not earlier ones were
answered, as phones do; a slow server does not slow the arrivals down (no coordinated
omission).

Invariants:
- `send_at` never waits for an answer before sending the next request: request i goes
  at offset i (or not at all, once its send window passed), each with its own timeout,
  and it returns at most one timeout (plus a second) after the last send; times are
  `time.perf_counter` seconds from the schedule's start (uvloop's loop clock has
  millisecond steps).
- `closed_loop` is set-up, never measured: at most `SETUP_CONCURRENCY` in flight, and
  every answer must be 2xx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from simulator.errors import SimulatorError, UsageError

CONNECTIONS = 1_000  # the generator's connection pool (a proxy's upstream pool in front)
SETUP_CONCURRENCY = 16  # registration and warm-up: a closed loop, not measured
KEEPALIVE_S = 3.0  # below uvicorn's keep-alive timeout (5 s), see `new_session`


@dataclass(frozen=True)
class HttpRequest:
    """A request ready to send (built before its step starts, so sending is cheap)."""

    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Exchange:
    """One request's fate, in seconds from its schedule's start (`time.perf_counter`). `sent_s`
    None: not sent (its time bound passed first). `failure` is "timeout" or
    "connection" when no HTTP answer came."""

    due_s: float
    sent_s: float | None
    done_s: float | None
    status: int | None
    failure: str | None

    @property
    def latency_ms(self) -> float | None:
        if self.sent_s is None or self.done_s is None:
            return None
        return (self.done_s - self.sent_s) * 1000.0


def uniform_offsets(count: int, rate_per_s: float) -> list[float]:
    """Arrival offsets (s) of `count` requests at `rate_per_s`: i / rate."""
    if not rate_per_s > 0 or count < 0:
        raise UsageError(f"a schedule needs a positive rate and a count >= 0, got "
                         f"{rate_per_s}/s and {count}")
    return [i / rate_per_s for i in range(count)]


async def send_at(session: aiohttp.ClientSession, base_url: str,
                  requests: Sequence[HttpRequest], offsets_s: Sequence[float], *,
                  timeout_s: float, send_window_s: float | None = None) -> list[Exchange]:
    """Send request i at offset i from now (open model: never waiting for answers), each
    with its own `timeout_s`; a request whose offset is past `send_window_s` (default:
    the last offset plus one second) when its turn comes is not sent. Returns when every
    sent request is answered or has timed out: at most `timeout_s` after the last send
    (plus one second of grace). Exchanges are in the order of `requests`."""
    if len(requests) != len(offsets_s):
        raise UsageError(f"{len(requests)} requests but {len(offsets_s)} offsets")
    # perf_counter, not loop.time(): uvloop's loop clock has millisecond steps
    loop, clock = asyncio.get_running_loop(), time.perf_counter
    start = clock()
    window = send_window_s if send_window_s is not None else max(offsets_s, default=0) + 1.0
    results: list[Exchange | None] = [None] * len(requests)
    limit = aiohttp.ClientTimeout(total=timeout_s)

    async def one(k: int) -> None:
        sent = clock() - start
        results[k] = Exchange(offsets_s[k], sent, None, None, "timeout")  # if cancelled
        status, failure = await _exchange(session, base_url, requests[k], limit)
        results[k] = Exchange(offsets_s[k], sent, clock() - start, status, failure)

    tasks: list[asyncio.Task[None]] = []
    order = sorted(range(len(requests)), key=offsets_s.__getitem__)
    next_up = 0
    while next_up < len(order) and offsets_s[order[next_up]] <= window:
        now = clock() - start
        if now > window:
            break  # too late for the rest: they are reported as not sent
        due = offsets_s[order[next_up]]
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while next_up < len(order) and offsets_s[order[next_up]] <= now:
            tasks.append(loop.create_task(one(order[next_up])))
            next_up += 1
    await _settle(tasks, timeout_s + 1.0)
    return [r if r is not None else Exchange(offsets_s[k], None, None, None, None)
            for k, r in enumerate(results)]


async def _settle(tasks: Sequence[asyncio.Task[None]], timeout_s: float) -> None:
    """Wait for `tasks` at most `timeout_s`; cancel the rest (their exchange says timeout)."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _exchange(session: aiohttp.ClientSession, base_url: str, request: HttpRequest,
                    limit: aiohttp.ClientTimeout) -> tuple[int | None, str | None]:
    """(status, None) for an HTTP answer; (None, "timeout" | "connection") for none."""
    try:
        async with session.request(request.method, base_url + request.path,
                                   data=request.body, headers=request.headers,
                                   timeout=limit) as answer:
            await answer.read()
            return answer.status, None
    except TimeoutError:  # aiohttp's ServerTimeoutError is one too
        return None, "timeout"
    except (aiohttp.ClientError, OSError):
        return None, "connection"


def new_session() -> aiohttp.ClientSession:
    """The generator's HTTP client: at most CONNECTIONS connections, and idle ones closed
    after KEEPALIVE_S, before uvicorn closes them (5 s): a request sent on a connection
    the server is closing fails with a disconnect that would count as a server error."""
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, keepalive_timeout=KEEPALIVE_S)
    return aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))


async def closed_loop(session: aiohttp.ClientSession, base_url: str,
                       requests: Sequence[HttpRequest],
                       concurrency: int = SETUP_CONCURRENCY) -> list[bytes]:
    """Send `requests` at most `concurrency` at a time (set-up, not measured); every
    answer must be 2xx (else SimulatorError naming it); returns the bodies in order."""
    gate = asyncio.Semaphore(concurrency)
    limit = aiohttp.ClientTimeout(total=60)

    async def one(request: HttpRequest) -> bytes:
        async with gate, session.request(request.method, base_url + request.path,
                                         data=request.body, headers=request.headers,
                                         timeout=limit) as answer:
            text = await answer.read()
            if answer.status // 100 != 2:
                raise SimulatorError(f"{request.method} {request.path} answered "
                                     f"{answer.status}: {text[:300]!r}")
            return text
    return list(await asyncio.gather(*(one(r) for r in requests)))
