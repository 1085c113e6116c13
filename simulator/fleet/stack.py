"""The stack a fleet runs against: the embedded one (PostgreSQL + the reference backend
on simulated time) or a target URL (with an optional database URL for the ledgers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.backend.app import BackendConfig
from simulator.backend.clock import BackendClock
from simulator.backend.postgres import Database, open_database
from simulator.backend.pot import PotRules
from simulator.backend.server import BackgroundServer
from simulator.clock import parse_instant
from simulator.fleet.scenario import Scenario


@dataclass
class Stack:
    """Base URL to drive, the database to read the backend ledger from (if known), and
    for the embedded stack the server (restartable) and its clock."""

    url: str
    database_url: str | None
    schema: str
    server: BackgroundServer | None = None
    clock: BackendClock | None = None
    _database: Database | None = field(default=None, repr=False)

    def sync_clock(self, origin_ms: int, speed: float) -> None:
        """Put the embedded backend on the run's simulated time (no-op for a target)."""
        if self.clock is not None:
            self.clock.restart_at(origin_ms, speed)

    def restart(self, down_s: float, sleep: Any) -> Any:
        """Stop the embedded backend, wait `down_s` wall seconds, start it again on the
        same port (a coroutine; `sleep` is asyncio.sleep)."""
        async def go() -> None:
            if self.server is None:
                return
            port = int(self.url.rsplit(":", 1)[1])
            self.server.stop()
            await sleep(down_s)
            self.server = BackgroundServer(self.server.config, port=port).start()
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
    clock = BackendClock(origin_ms=parse_instant(scenario.start), speed=scenario.speed)
    try:
        config = BackendConfig(database.url, schema=scenario.schema, clock=clock,
                               pot=PotRules(uploads_required=scenario.fleet.uploads_required),
                               jobs_interval_s=0)
        server = BackgroundServer(config).start()
    except BaseException:
        database.stop()
        raise
    return Stack(server.url, database.url, scenario.schema, server, clock, database)


def target(url: str, scenario: Scenario, database_url: str | None) -> Stack:
    """A server someone else runs (its own clock); the ledgers need its database URL."""
    return Stack(url.rstrip("/"), database_url, scenario.schema)
