"""The stack a fleet runs against: the embedded one (PostgreSQL, and the reference
backend as its own process on simulated time) or a target URL (with an optional database
URL for the backend ledger).

The embedded backend runs in a separate process (`ggsim serve --sim-control`), so the
fleet's event loop and the server do not share one interpreter lock: on a 2-core machine
the load generator would otherwise slow the server it measures. A restart fault stops
that process (SIGTERM, or SIGKILL) and starts it again on the same port.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from simulator.backend.postgres import Database, open_database, reachable_url
from simulator.backend.server import stop_serve_process
from simulator.errors import SimulatorError
from simulator.fleet.scenario import Scenario
from simulator.instants import format_instant, parse_instant

_URL = re.compile(r"http://127\.0\.0\.1:\d+")


@dataclass
class ServerProcess:
    """`ggsim serve` as a child process."""

    database_url: str
    scenario: Scenario
    port: int = 0
    url: str = ""
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)

    def start(self, origin_ms: int, timeout_s: float = 60.0) -> ServerProcess:
        s = self.scenario
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "serve", "--port", str(self.port),
             "--schema", s.schema, "--database-url", self.database_url,
             "--clock-start", format_instant(origin_ms), "--clock-speed", str(s.speed),
             "--uploads-required", str(s.fleet.uploads_required), "--jobs-interval", "0",
             "--sim-control", "--stop-at-stdin-eof"],
            # the pipe is its life line: it closes however this process ends
            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self._proc.stderr is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(
            self._proc.stderr.readline() if self._proc and self._proc.stderr else ""),
            daemon=True)
        reader.start()
        reader.join(timeout_s)
        match = _URL.search(found[0]) if found else None
        if match is None:
            self.stop()
            raise SimulatorError(f"the backend process did not start: {found[:1]}")
        self.url = match[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        for _ in range(int(timeout_s * 10)):
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None:
                break
            threading.Event().wait(0.1)
        self.stop()
        raise SimulatorError("the backend process did not become healthy")

    def _drain_stderr(self) -> None:
        # keep reading so the child never blocks on a full pipe; its log goes to ours
        proc = self._proc
        if proc is not None and proc.stderr is not None:
            for line in proc.stderr:
                sys.stderr.write(line)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_serve_process(proc)

    @property
    def pid(self) -> int | None:
        """The running process's id (None when it is not running)."""
        return self._proc.pid if self._proc is not None else None

    def kill(self) -> None:
        """SIGKILL: the process dies where it is (what it was answering is cut; what
        PostgreSQL had committed stays, the rest rolls back when its connections drop)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
        stop_serve_process(proc)  # closes the life line


def set_backend_clock(url: str, origin_ms: int, speed: float) -> httpx.Response:
    """Ask the backend at `url` to run on simulated time from `origin_ms` at `speed`
    (`POST /_sim/clock`: the bundled backend, `ggsim serve --sim-control`); its answer
    (a backend without simulation control refuses)."""
    return httpx.post(f"{url.rstrip('/')}/_sim/clock",
                      json={"origin_ms": origin_ms, "speed": speed}, timeout=10)


@dataclass
class Stack:
    """Base URL to drive, the database to read the backend ledger from (if known), and
    for the embedded stack its server process."""

    url: str
    database_url: str | None
    schema: str
    server: ServerProcess | None = None
    _database: Database | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        return self.server is not None

    @property
    def owns_database(self) -> bool:
        """Whether the database is an embedded one this stack started (and may restart)."""
        return self._database is not None and self._database.embedded

    def sync_clock(self, origin_ms: int, speed: float) -> None:
        """Put the embedded backend on the run's simulated time (no-op for a target)."""
        if self.server is not None:
            answer = set_backend_clock(self.url, origin_ms, speed)
            if answer.status_code != 200:
                raise SimulatorError(f"could not set the backend clock: {answer.text}")

    def restart(self, down_s: float, sleep: Callable[[float], Awaitable[None]],
                now_ms: Callable[[], int], speed: float, *, kill: bool = False
                ) -> Awaitable[None]:
        """Stop the embedded backend (SIGTERM, or SIGKILL with `kill`), wait `down_s` wall
        seconds, start it again on the same port on the run's clock (a coroutine)."""
        async def go() -> None:
            import asyncio
            server = self.server
            if server is None:
                return
            await asyncio.to_thread(server.kill if kill else server.stop)
            await sleep(down_s)
            await asyncio.to_thread(server.start, now_ms())
            await asyncio.to_thread(self.sync_clock, now_ms(), speed)
        return go()

    def restart_database(self, down_s: float) -> Awaitable[None]:
        """Shut the embedded PostgreSQL down in immediate mode for `down_s` wall seconds
        (a coroutine; the backend process stays up and reconnects by itself)."""
        async def go() -> None:
            import asyncio
            assert self._database is not None and self.owns_database, "checked at start"
            await asyncio.to_thread(self._database.restart_immediately, down_s)
        return go()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._database is not None:
            self._database.stop()
            self._database = None


def embedded(scenario: Scenario, database_url: str | None = None) -> Stack:
    """Start PostgreSQL (embedded unless a URL is given) and the backend on 127.0.0.1."""
    database = open_database(database_url)
    try:
        server = ServerProcess(database.url, scenario).start(parse_instant(scenario.start))
    except BaseException:
        database.stop()
        raise
    return Stack(server.url, database.url, scenario.schema, server, database)


def target(url: str, scenario: Scenario, database_url: str | None) -> Stack:
    """A server someone else runs (its own clock); the ledgers need its database URL,
    checked now (`--database-url`), not when the run ends and reads them."""
    if database_url:
        reachable_url(database_url)
    return Stack(url.rstrip("/"), database_url, scenario.schema)
