"""The backend's jobs on a real PostgreSQL: migrations, aggregation (against aggregates
computed independently from the raw batches), retention and partitions."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import orjson
import pytest

from simulator.backend import jobs, migrations, store

T = TypeVar("T")
START_MS = 1_704_067_200_000


def run(url: str, schema: str, work: Callable[[Any], Awaitable[T]]) -> T:
    async def go() -> T:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn, schema)
            await conn.execute(f"SET search_path TO {migrations.namespace(schema)}")
            return await work(conn)
        finally:
            await conn.close()
    return asyncio.run(go())


def _fleet() -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "generate", "--phones", "6",
                          "--hours", "2", "--seed", "9", "--start", "2024-01-01T07:00:00Z",
                          "--out", "-", "--progress", "never"], capture_output=True,
                         check=True).stdout
    return [orjson.loads(line) for line in out.splitlines()]


FLEET = _fleet()


async def _insert(conn: Any, schema: str, envelopes: list[dict[str, Any]]) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=lambda v: v,
                              decoder=lambda v: v, format="text")
    for e in envelopes:
        await store.store_upload(
            conn, schema, device_id=e["device_id"], user_id=e["user_id"],
            batch_id=e["batch_id"], seq=e["seq"], timestamp_ms=e["payload"]["timestamp"],
            payload=orjson.dumps(e["payload"]).decode(), samples=len(e["payload"]["batch"]),
            body_sha256=orjson.dumps(e)[:32], now_ms=START_MS)


def _expected(envelopes: list[dict[str, Any]]) -> dict[tuple[datetime, str], tuple[Any, ...]]:
    """5-minute aggregates computed in Python from the payloads."""
    cells: dict[tuple[datetime, str], list[dict[str, Any]]] = defaultdict(list)
    origin = datetime(2020, 1, 1, tzinfo=UTC)
    for e in envelopes:
        t = datetime.fromtimestamp(e["payload"]["timestamp"] / 1000, tz=UTC)
        window = origin + timedelta(minutes=5 * ((t - origin) // timedelta(minutes=5)))
        cells[(window, e["payload"]["geohash"])].append(e)
    out = {}
    for key, members in cells.items():
        summaries = [m["payload"]["summary"] for m in members]
        light = [s["light"]["avg"] for s in summaries if s.get("light") and
                 s["light"]["avg"] is not None]
        pressure = [s["pressure"]["avg"] for s in summaries if s.get("pressure")]
        out[key] = (len(members), sum(s["count"] for s in summaries),
                    len({m["device_id"] for m in members}),
                    sum(light) / len(light) if light else None,
                    sum(pressure) / len(pressure) if pressure else None)
    return out


@pytest.mark.parametrize("schema", ["recommended", "as-is"])
def test_aggregation_matches_an_independent_computation_and_is_idempotent(
        database_url: str, schema: str) -> None:
    first, second = FLEET[: len(FLEET) // 2], FLEET[len(FLEET) // 2:]
    now_ms = START_MS + 9 * 3_600_000  # as-is looks back an hour of batch time: use more

    async def work(conn: Any) -> list[Any]:
        await _insert(conn, schema, first)
        await jobs.aggregate(conn, schema, now_ms, lag_s=0, lookback_s=86_400)
        await _insert(conn, schema, second)
        runs = [await jobs.aggregate(conn, schema, now_ms, lag_s=0, lookback_s=86_400)]
        before = await conn.fetch("SELECT * FROM sensor_aggregates_5m ORDER BY 1, 2")
        runs.append(await jobs.aggregate(conn, schema, now_ms, lag_s=0, lookback_s=86_400))
        after = await conn.fetch("SELECT * FROM sensor_aggregates_5m ORDER BY 1, 2")
        daily = await conn.fetch("SELECT day, SUM(batches), SUM(samples) FROM "
                                 "sensor_aggregates_daily GROUP BY day")
        return [before, after, daily, runs]

    before, after, daily, runs = run(database_url, schema, work)
    assert [tuple(r) for r in before] == [tuple(r) for r in after]  # twice: nothing changes
    expected = _expected(FLEET)
    got = {(r["window_start"], r["geohash"]): r for r in after}
    assert set(got) == set(expected)
    for key, (batches, samples, devices, light, pressure) in expected.items():
        row = got[key]
        assert (row["batches"], row["samples"], row["devices"]) == (batches, samples, devices)
        for value, want in ((row["light_avg"], light), (row["pressure_avg"], pressure)):
            assert (value is None) == (want is None)
            if want is not None:
                assert math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-9)
    assert sum(r[1] for r in daily) == len(FLEET)
    assert sum(r[2] for r in daily) == sum(e["payload"]["summary"]["count"] for e in FLEET)
    if schema == "recommended":
        assert runs[1].cells_5m == 0  # nothing new arrived: the watermark held


def test_retention_moves_old_batches_to_the_archive(database_url: str) -> None:
    now_ms = START_MS + 45 * 86_400_000

    async def work(conn: Any) -> tuple[Any, ...]:
        await jobs.ensure_partitions(conn, START_MS, 2)
        await _insert(conn, "recommended", FLEET[:20])
        result = await jobs.retention(conn, now_ms, keep_days=30)
        left = await conn.fetchval("SELECT COUNT(*) FROM sensor_batches")
        archived = await conn.fetchval("SELECT COUNT(*) FROM sensor_batches_archive")
        where = await conn.fetchval("SELECT tableoid::regclass::text FROM "
                                    "sensor_batches_archive LIMIT 1")
        return result, left, archived, where

    result, left, archived, where = run(database_url, "recommended", work)
    assert (result.archived, left, archived) == (20, 0, 20)
    assert result.receipts_deleted == 20
    assert where.endswith("sensor_batches_archive_2024_01")


def test_partitions_are_created_ahead_and_rows_leave_the_default_partition(
        database_url: str) -> None:
    async def work(conn: Any) -> tuple[int, int, str, int]:
        await _insert(conn, "recommended", FLEET[:5])  # January 2024: no partition yet
        created = await jobs.ensure_partitions(conn, START_MS, 3)
        again = await jobs.ensure_partitions(conn, START_MS, 3)
        where = await conn.fetchval("SELECT tableoid::regclass::text FROM sensor_batches "
                                    "LIMIT 1")
        count = await conn.fetchval("SELECT COUNT(*) FROM sensor_batches")
        return created, again, where, count

    created, again, where, count = run(database_url, "recommended", work)
    assert created == 2 * 5 and again == 0  # last month, this one, 3 ahead; both tables
    assert where.endswith("sensor_batches_2024_01") and count == 5


def test_migrations_run_once_and_refuse_an_edited_history(database_url: str) -> None:
    async def work(conn: Any) -> list[int]:
        again = await migrations.migrate(conn, "as-is")
        await conn.execute("UPDATE as_is.schema_migrations SET checksum = 'x'")
        with pytest.raises(migrations.MigrationError, match="different contents"):
            await migrations.migrate(conn, "as-is")
        return [m.version for m in again]

    assert run(database_url, "as-is", work) == []
    with pytest.raises(Exception, match="schema variant"):
        migrations.namespace("nope")
