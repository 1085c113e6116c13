"""The same operations under the asyncio driver (aiosqlite) give the same tables."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simulator.drivers import asyncio_driver
from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.profiles import V2, V3, FixProfile

NOW = 1_704_110_400_000


async def scenario(path: Path, profile: FixProfile) -> list[object]:
    conn = await asyncio_driver.connect(path)
    try:
        await asyncio_driver.run(conn, schema.open_schema(profile.schema_version))
        c = app.Contribution("c1", NOW, 30, "u33dc0", True, NOW, "user-1")
        await asyncio_driver.run(conn, app.insert_contribution(c, profile))
        minus_one = await asyncio_driver.run(conn, app.kotlin_save_contribution(c, profile))
        sid = await asyncio_driver.run(conn, app.start_tracking_session(NOW, profile, "user-1"))
        stopped = await asyncio_driver.run(
            conn, app.stop_tracking_session(NOW + 5, profile, "x", "user-1"))
        streak = await asyncio_driver.run(conn, app.get_streak(NOW, profile, "user-1"))
        return [minus_one, sid, stopped, streak]
    finally:
        await conn.close()


def blocking_scenario(path: Path, profile: FixProfile) -> list[object]:
    conn = connect(path)
    run(conn, schema.open_schema(profile.schema_version))
    c = app.Contribution("c1", NOW, 30, "u33dc0", True, NOW, "user-1")
    run(conn, app.insert_contribution(c, profile))
    minus_one = run(conn, app.kotlin_save_contribution(c, profile))
    sid = run(conn, app.start_tracking_session(NOW, profile, "user-1"))
    stopped = run(conn, app.stop_tracking_session(NOW + 5, profile, "x", "user-1"))
    streak = run(conn, app.get_streak(NOW, profile, "user-1"))
    return [minus_one, sid, stopped, streak]


def test_asyncio_and_blocking_drivers_agree(tmp_path: Path) -> None:
    for profile in (V2, V3):
        a, b = tmp_path / f"a-{profile.name}.db", tmp_path / f"b-{profile.name}.db"
        assert asyncio.run(scenario(a, profile)) == blocking_scenario(b, profile) == [-1, 1, 1, 1]
        for table in ("contributions", "tracking_sessions"):
            rows_a = connect(a).execute(f"SELECT * FROM {table}").fetchall()
            rows_b = connect(b).execute(f"SELECT * FROM {table}").fetchall()
            assert rows_a == rows_b
