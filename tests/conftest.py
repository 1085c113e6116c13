"""Factories shared by the tests."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

from simulator.sensors.batch import BatchBlock

# `pytest --hypothesis-profile=long` for a long CI job: the race state machines run
# 2,000 programs of up to 50 steps each instead of the default suite's short run.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.register_profile("long", max_examples=2_000, stateful_step_count=50, deadline=None,
                          print_blob=True)
# .ci/run sets HYPOTHESIS_PROFILE=ci; `pytest --hypothesis-profile=NAME` still wins.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def make_block(
    rng: np.random.Generator,
    n_batches: int = 5,
    *,
    max_readings: int = 32,
    nan_probability: float = 0.0,
    barometer_probability: float = 0.5,
) -> BatchBlock:
    """A random but well-formed BatchBlock (for encoder and summary tests)."""
    counts = rng.integers(1, max_readings + 1, n_batches)
    offsets = np.zeros(n_batches + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n = int(offsets[-1])
    start = 1_704_067_200_000 + np.sort(rng.integers(0, 86_400_000, n_batches))

    def f32(*shape: int, scale: float = 1.0, loc: float = 0.0) -> np.ndarray:
        values = (loc + scale * rng.standard_normal(shape)).astype(np.float32)
        if nan_probability:
            values[rng.random(shape) < nan_probability] = np.nan
        return values

    return BatchBlock(
        phone=rng.integers(0, 100, n_batches),
        seq=rng.integers(0, 10_000, n_batches),
        device_id=np.array([f"dev-{i}".encode() for i in range(n_batches)]),
        user_id=np.array([f"user-{i}".encode() for i in range(n_batches)]),
        batch_id=np.array([f"{i:08x}-0000-4000-8000-000000000000".encode()
                           for i in range(n_batches)]),
        order_ms=start,
        period_start_ms=start,
        period_end_ms=start + 300_000,
        offsets=offsets,
        t_ms=np.repeat(start, counts) + rng.integers(0, 300_000, n),
        light=np.abs(f32(n, scale=500.0)),
        accel=f32(n, 3, scale=3.0),
        gyro=f32(n, 3, scale=0.3),
        pressure=f32(n, scale=5.0, loc=1013.0),
        has_pressure=rng.random(n_batches) < barometer_probability,
        lat=52.5 + 0.1 * rng.standard_normal(n_batches),
        lon=13.4 + 0.1 * rng.standard_normal(n_batches),
        accuracy_m=np.abs(f32(n_batches, scale=10.0)),
        geohash=np.array([b"u33dc0"] * n_batches),
        battery_level=rng.integers(0, 101, n_batches),
        is_charging=rng.random(n_batches) < 0.3,
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


class Runner:
    """Runs core operations on one SQLite file through a named driver (for tests that
    must hold for every driver)."""

    def __init__(self, kind: str, path: object, timeout_s: float = 0.0) -> None:
        import asyncio

        from simulator.drivers import asyncio_driver
        from simulator.drivers.blocking import connect

        self.kind = kind
        if kind == "asyncio":
            self._loop = asyncio.new_event_loop()
            self._aconn = self._loop.run_until_complete(
                asyncio_driver.connect(path, timeout_s=timeout_s))
        else:
            self._conn = connect(path, timeout_s=timeout_s)

    def run(self, operation: object) -> object:
        from simulator.drivers import asyncio_driver, blocking, interleave

        if self.kind == "asyncio":
            return self._loop.run_until_complete(
                asyncio_driver.run(self._aconn, operation))
        if self.kind == "interleave":
            outcome = interleave.replay(
                [interleave.Writer("a", self._conn, operation)], "")
            if outcome.errors[0] is not None:
                raise outcome.errors[0]
            return outcome.results[0]
        return blocking.run(self._conn, operation)

    def close(self) -> None:
        if self.kind == "asyncio":
            self._loop.run_until_complete(self._aconn.close())
            self._loop.close()
        else:
            self._conn.close()


DRIVERS = ["blocking", "asyncio", "interleave"]


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """One real PostgreSQL for the test run: $DATABASE_URL, else an embedded server."""
    from simulator.backend.postgres import open_database

    database = open_database()
    yield database
    database.stop()


def fresh_database(server_url: str) -> str:
    """Create a new, empty database on the server at `server_url`; returns its URL (for
    a test that needs more than one, say two runs of one scenario)."""
    import asyncio
    import uuid

    import asyncpg

    name = f"test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    base, _, query = server_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@pytest.fixture
def database_url(postgres) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database on the test server (its URL)."""
    return fresh_database(postgres.url)


BACKEND_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: the backend tests' batches


@pytest.fixture(params=["recommended", "as-is"])
def server(request: pytest.FixtureRequest, database_url: str):  # type: ignore[no-untyped-def]
    """The reference backend on a fresh database, under each schema variant, its clock an
    hour past the backend tests' batches (yields a running `BackgroundServer`)."""
    from simulator.backend.app import BackendConfig
    from simulator.backend.clock import BackendClock
    from simulator.backend.server import BackgroundServer

    config = BackendConfig(database_url, schema=request.param,
                           clock=BackendClock(origin_ms=BACKEND_START_MS + 3_600_000))
    with BackgroundServer(config) as running:
        yield running
