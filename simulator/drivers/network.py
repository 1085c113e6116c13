"""Drivers for network operations: `Sql` effects on a real SQLite file, `Http` effects
through a `Transport` (the seam where the backend, or faults in front of it, plug in).

Contract (as the SQLite-only drivers): every effect runs exactly once, in order; a
`sqlite3.Error` or a `NetworkError` is thrown back into the operation. The SQLite file
is opened when the operation first needs it and closed when it ends (the Kotlin side's
`db.use {}`): a phone keeps no idle connection between operations.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from simulator.drivers.blocking import connect_as_app, execute
from simulator.errors import AppKilled as AppKilled
from simulator.errors import StateError
from simulator.phone.effects import (
    Cursor,
    Http,
    HttpResponse,
    NetOperation,
    NetworkError,
    Sql,
    retry_after,
)

T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on uvloop where it is installed (asyncio's own loop
    elsewhere): the fleet's client spends much of its time in the loop's scheduling, and
    uvloop cut that time enough to give 12 % more full-phone uploads per second
    (tests/benchmarks/bench_fleet.py).

    SIGTERM cancels `main` (its cleanup runs) and then raises KeyboardInterrupt, as
    Ctrl-C does under asyncio. Done here, on the loop, rather than by a handler that
    calls asyncio's Ctrl-C one: a background job started by a shell ignores SIGINT, and
    asyncio then installs no Ctrl-C handler to call."""
    try:
        import uvloop
        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # Windows: uvloop is not a dependency there
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_cancelled_by_sigterm(main))


async def _cancelled_by_sigterm(main: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        if not terminated:  # a second SIGTERM does not cut the cleanup short
            terminated = True
            task.cancel()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
        return await main
    try:
        return await main
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)  # which sets SIG_DFL: put back ours
        if terminated:  # the caller's cleanup comes next: more SIGTERMs must not cut it
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Transport(Protocol):
    """Sends one request; returns the response or raises NetworkError."""

    def __call__(self, request: Http) -> Awaitable[HttpResponse]: ...


async def run_async(path: str | Path, transport: Transport, operation: NetOperation[T],
                    busy_timeout_s: float = 2.5, journal_mode: str | None = None,
                    kill_after: int | None = None,
                    conn: sqlite3.Connection | None = None,
                    alive: Callable[[], bool] | None = None,
                    prepare: Callable[[sqlite3.Connection], None] | None = None) -> T:
    """Run a network operation: SQL on `path` (opened on first use, asking for
    `journal_mode` as the side's own open does), HTTP on `transport`. SQLite calls run
    on the event loop: each is short, and a phone's file is its own, so the only lock
    waits are the two sides of one phone.

    `kill_after=k`: the app dies after k effects (SQL or HTTP): the operation never
    resumes, its connection closes without COMMIT (SQLite rolls back what is open), and
    AppKilled is raised. What was committed, and what the server got, stays.

    `conn`: an open connection the caller owns (the Flutter side's, kept for the app's
    life) instead of opening `path`; it is not closed here, and a kill leaves closing it
    to the caller. Shared between operations, it must not carry a transaction across a
    request (another operation's statements would join it): that raises StateError (a
    RuntimeError).

    `alive`: False once the app process this operation belongs to has died (another
    operation's kill, a reboot); the operation then dies too, at its next effect.

    `prepare`: run on the connection before the operation's first statement (the
    phone's storage state, `fleet.storage`)."""
    cursor = Cursor(operation)
    shared = conn is not None
    done = 0
    prepared = prepare is None
    try:
        while (effect := cursor.pending) is not None:
            if kill_after is not None and done >= kill_after:
                cursor.close()
                raise AppKilled(f"killed after {done} effects")
            if alive is not None and not alive():
                cursor.close()
                raise AppKilled("the app process died")
            done += 1
            if isinstance(effect, Sql):
                if conn is None:
                    conn = connect_as_app(path, journal_mode, busy_timeout_s)
                if not prepared and prepare is not None:
                    prepare(conn)
                    prepared = True
                execute(conn, cursor, effect)
            else:
                if shared and conn is not None and conn.in_transaction:
                    raise StateError(f"an operation holds a transaction across {effect.path} "
                                     "on a shared connection")
                try:
                    response = await transport(effect)
                except NetworkError as exc:
                    cursor.throw(exc)
                else:
                    cursor.send(response)
    finally:
        if conn is not None and not shared:
            conn.close()
    return cursor.outcome()  # type: ignore[no-any-return]




def run_blocking(conn: Any,
                 respond: Callable[[Http], HttpResponse | NetworkError],
                 operation: NetOperation[T], *,
                 sql: Callable[[Any, Cursor[Any], Sql], None] = execute) -> T:
    """Run a network operation with SQL on `conn` and HTTP answered by `respond`,
    synchronously (unit tests of the core's logic, the load test's phones, the power-loss
    workload; fleets use `run_async`). `sql` runs one statement on `conn` and feeds the
    cursor (`blocking.execute` on a sqlite3 connection, `apsw_sql.execute` on an apsw
    one; a caller that must not block its thread on a lock runs it elsewhere)."""
    cursor = Cursor(operation)
    while (effect := cursor.pending) is not None:
        if isinstance(effect, Sql):
            sql(conn, cursor, effect)
            continue
        answer = respond(effect)
        if isinstance(answer, NetworkError):
            cursor.throw(answer)
        else:
            cursor.send(answer)
    return cursor.outcome()  # type: ignore[no-any-return]


class AiohttpTransport:
    """`Transport` over one aiohttp ClientSession (keep-alive, `max_connections`). The
    fleet's client: on this machine it sustains about 1,600 uploads/s at 0.3 core where
    httpx.AsyncClient manages 180-550 at a full core, its pool slowing as connections
    grow (tests/benchmarks/bench_http_clients.py). A timeout or a connection failure
    becomes NetworkError; every HTTP status is a response. Create it inside the loop."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0,
                 max_connections: int = 200) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            cookie_jar=aiohttp.DummyCookieJar())

    async def __call__(self, request: Http) -> HttpResponse:
        try:
            async with self.session.request(request.method, self.base_url + request.path,
                                            data=request.body or None,
                                            headers=dict(request.headers)) as response:
                body = await response.read()
                return HttpResponse(response.status, body,
                                    retry_after(response.headers.get("Retry-After")))
        except TimeoutError:
            raise NetworkError("timeout", "no response in time") from None
        except (self._aiohttp.ClientError, OSError) as exc:
            raise NetworkError("refused", str(exc)) from None

    async def aclose(self) -> None:
        await self.session.close()


class HttpxTransport:
    """`Transport` over an httpx.AsyncClient (keep-alive pool, timeouts). A timeout or a
    connection failure becomes NetworkError; every HTTP status is a response."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0,
                 max_connections: int = 200) -> None:
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits)

    async def __call__(self, request: Http) -> HttpResponse:
        try:
            response = await self.client.request(request.method, request.path,
                                                 content=request.body,
                                                 headers=list(request.headers))
        except httpx.TimeoutException as exc:
            raise NetworkError("timeout", str(exc)) from None
        except httpx.TransportError as exc:
            raise NetworkError("refused", str(exc)) from None
        return HttpResponse(response.status_code, response.content,
                            retry_after(response.headers.get("Retry-After")))

    async def aclose(self) -> None:
        await self.client.aclose()
