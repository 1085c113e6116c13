"""Each app operation's effect on the tables, under v2 and v3, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import DRIVERS, Runner

from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.profiles import V2, V3, FixProfile

NOW = 1_704_110_400_000  # 2024-01-01T12:00:00Z
DAY = app.DAY_MS


@pytest.fixture(params=[V2, V3], ids=["v2", "v3"])
def profile(request: pytest.FixtureRequest) -> FixProfile:
    return request.param


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


class Db:
    """Operations through the driver under test; checks through a plain connection."""

    def __init__(self, path: Path, kind: str) -> None:
        self.runner = Runner(kind, path)
        self.check = connect(path)

    def run(self, operation: object) -> object:
        return self.runner.run(operation)

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        return self.check.execute(sql, params)


@pytest.fixture
def db_factory(driver: str, request: pytest.FixtureRequest):
    made: list[Db] = []

    def make(path: Path, profile: FixProfile) -> Db:
        db = Db(path, driver)
        db.run(schema.open_schema(profile.schema_version))
        made.append(db)
        return db

    yield make
    for db in made:
        db.runner.close()


def contribution(i: int, **changes: object) -> app.Contribution:
    base = app.Contribution(f"c{i}", NOW - i * 300_000, 30, "u33dc0", True, NOW, "user-1", None)
    return app.Contribution(**{**base.__dict__, **changes})


def test_flutter_insert_replaces_in_v2_and_refuses_in_v3(tmp_path: Path, profile: FixProfile,
                                                         db_factory) -> None:
    conn = db_factory(tmp_path / "gg.db", profile)
    conn.run(app.insert_contribution(contribution(1), profile))
    duplicate = contribution(1, samples_count=5)
    if profile.flutter_conflict == "REPLACE":
        conn.run(app.insert_contribution(duplicate, profile))  # silent overwrite (R1)
        assert conn.execute("SELECT samples_count FROM contributions").fetchall() == [(5,)]
    else:
        with pytest.raises(sqlite3.IntegrityError):
            conn.run(app.insert_contribution(duplicate, profile))
        assert conn.execute("SELECT samples_count FROM contributions").fetchall() == [(30,)]


def test_kotlin_save_reports_minus_one_on_conflict_and_on_busy(
        tmp_path: Path, profile: FixProfile, db_factory) -> None:
    path = tmp_path / "gg.db"
    conn = db_factory(path, profile)
    assert conn.run(app.kotlin_save_contribution(contribution(1), profile)) == 1
    assert conn.run(app.kotlin_save_contribution(contribution(1), profile)) == -1
    blocker = connect(path)
    blocker.execute("BEGIN IMMEDIATE")
    kotlin = connect(path)  # busy timeout 0: fails at once
    assert run(kotlin, app.kotlin_save_contribution(contribution(2), profile)) == -1
    blocker.execute("ROLLBACK")
    assert conn.execute("SELECT COUNT(*) FROM contributions").fetchone()[0] == 1  # lost


def test_sessions_start_stop_and_duration(
        tmp_path: Path, profile: FixProfile, db_factory) -> None:
    conn = db_factory(tmp_path / "gg.db", profile)
    sid = conn.run(app.start_tracking_session(NOW, profile, "user-1"))
    assert conn.run(app.get_active_tracking_session(profile, "user-1"))[0][0] == sid
    assert conn.run(app.stop_tracking_session(NOW + 60_000, profile, "user", "user-1")) == sid
    row = conn.execute("SELECT stopped_at, duration_ms, ended_reason FROM tracking_sessions"
                       ).fetchone()
    assert row == (NOW + 60_000, 60_000, "user")
    assert conn.run(app.stop_tracking_session(NOW + 90_000, profile, "again", "user-1")) is None
    assert conn.run(app.get_active_tracking_session(profile, "user-1")) == []


def test_state_pot_and_queue(
        tmp_path: Path, profile: FixProfile, db_factory) -> None:
    conn = db_factory(tmp_path / "gg.db", profile)
    assert conn.run(app.get_state("k")) is None
    conn.run(app.set_state("k", "v1", NOW))
    conn.run(app.set_state("k", "v2", NOW + 1))
    assert conn.run(app.get_state("k")) == "v2"
    pot = {"user_id": "user-1", "total_credits": 10, "uploads_today": 3, "uploads_required": 5,
           "is_unlocked": 0, "has_claimed_today": 0, "last_claim_date": None,
           "last_synced_at": NOW, "cached_at": NOW}
    conn.run(app.cache_daily_pot(pot))
    conn.run(app.cache_daily_pot({**pot, "uploads_today": 4}))
    assert conn.execute("SELECT uploads_today FROM daily_pot_cache").fetchall() == [(4,)]
    conn.run(app.enqueue_upload("u1", "{}", NOW))
    assert conn.run(app.update_upload_retry("u1", "503", NOW + 1000, profile)) == 1
    assert conn.run(app.update_upload_retry("u1", "503", NOW + 2000, profile)) == 2
    assert conn.execute("SELECT retry_count, last_error, next_retry_at FROM upload_queue"
                        ).fetchone() == (2, "503", NOW + 2000)


def test_maintenance_deletes_old_rows_and_vacuums(
        tmp_path: Path, profile: FixProfile, db_factory) -> None:
    conn = db_factory(tmp_path / "gg.db", profile)
    conn.run(app.insert_contribution(contribution(1, timestamp=NOW - 91 * DAY), profile))
    conn.run(app.insert_contribution(contribution(2, timestamp=NOW - DAY), profile))
    old = conn.run(app.start_tracking_session(NOW - 31 * DAY, profile, "user-1"))
    conn.run(app.stop_tracking_session(NOW - 31 * DAY + 1000, profile, None, "user-1"))
    conn.run(app.enqueue_upload("old", "{}", NOW - 8 * DAY))
    conn.run(app.enqueue_upload("new", "{}", NOW))
    conn.run(app.perform_maintenance(NOW))
    assert conn.execute("SELECT id FROM contributions").fetchall() == [("c2",)]
    assert conn.execute("SELECT id FROM tracking_sessions WHERE id = ?", (old,)).fetchall() == []
    assert conn.execute("SELECT id FROM upload_queue").fetchall() == [("new",)]


def test_tile_coverage_and_streak(
        tmp_path: Path, profile: FixProfile, db_factory) -> None:
    conn = db_factory(tmp_path / "gg.db", profile)
    for i, days_ago in enumerate((0, 0, 1, 2, 4)):
        conn.run(app.insert_contribution(
            contribution(i, timestamp=NOW - days_ago * DAY, geohash=f"u33dc{i % 2}"), profile))
    conn.run(app.insert_contribution(contribution(9, success=False), profile))
    coverage = sorted(conn.run(app.get_today_tile_coverage(NOW, profile, "user-1")))
    # today: c0 and the failed c9 in u33dc0 (failed samples do not count), c1 in u33dc1
    assert coverage == [("u33dc0", 2, 30), ("u33dc1", 1, 30)]
    assert conn.run(app.get_streak(NOW, profile, "user-1")) == 3


def test_open_connection_proceeds_when_the_mode_cannot_change(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    flutter = connect(path)
    assert run(flutter, app.open_connection("WAL", 2500)) == "WAL"
    run(flutter, schema.open_schema(2))
    kotlin = connect(path)
    assert run(kotlin, app.open_connection("TRUNCATE", 0)) == "WAL"  # refused, goes on
    assert run(kotlin, app.kotlin_save_contribution(contribution(1), V2)) == 1


def test_app_start_runs_maintenance_only_with_the_fix(tmp_path: Path) -> None:
    for profile, ran in ((V2, False), (V3, True)):
        conn = connect(tmp_path / f"{profile.name}.db")
        run(conn, schema.open_schema(profile.schema_version))
        run(conn, app.insert_contribution(contribution(1, timestamp=NOW - 100 * DAY), profile))
        run(conn, app.enqueue_upload("stale", "{}", NOW - 8 * DAY))
        assert run(conn, app.app_start(NOW, profile)) == (["stale"] if ran else None)
        left = conn.execute("SELECT COUNT(*) FROM contributions").fetchone()[0]
        assert left == (0 if ran else 1)
        queued = conn.execute("SELECT COUNT(*) FROM upload_queue").fetchone()[0]
        assert queued == (0 if ran else 1)


def test_maintenance_names_the_queue_entries_it_deletes(
        tmp_path: Path, profile: FixProfile, db_factory) -> None:
    """Review §5.5 deletes upload_queue entries created more than 7 days ago (strictly):
    the operation returns exactly those ids, oldest first, and leaves the rest."""
    conn = db_factory(tmp_path / "gg.db", profile)
    ages = {"q-month": 30 * DAY, "q-week-and-1ms": 7 * DAY + 1, "q-week": 7 * DAY,
            "q-almost-week": 7 * DAY - 1, "q-now": 0, "q-8-days": 8 * DAY}
    for upload_id, age in ages.items():
        conn.run(app.enqueue_upload(upload_id, "{}", NOW - age))
    # 23 days ago the oldest entry was exactly 7 days old: kept
    assert conn.run(app.expire_stale_uploads(NOW - 23 * DAY)) == []
    deleted = conn.run(app.perform_maintenance(NOW))
    assert deleted == ["q-month", "q-8-days", "q-week-and-1ms"]
    left = {r[0] for r in conn.execute("SELECT id FROM upload_queue")}
    assert left == {"q-week", "q-almost-week", "q-now"}
    assert conn.run(app.perform_maintenance(NOW)) == []  # already gone


def test_kotlin_side_save_goes_through_flutter_with_the_single_writer_fix() -> None:
    side, _ = app.kotlin_side_save(contribution(1), V2)
    assert side == app.KOTLIN
    side, _ = app.kotlin_side_save(contribution(1), V3)
    assert side == app.FLUTTER


def test_pot_versioning_keeps_the_newer_backend_state(tmp_path: Path) -> None:
    from simulator.phone.profiles import only

    profile = only("pot_versioning")
    conn = connect(tmp_path / "gg.db")
    run(conn, schema.open_schema(profile.schema_version))
    base = {"user_id": "user-1", "total_credits": 0, "uploads_required": 5, "is_unlocked": 0,
            "has_claimed_today": 0, "last_claim_date": None, "last_synced_at": NOW,
            "cached_at": NOW}
    run(conn, app.cache_daily_pot({**base, "uploads_today": 3, "backend_updated_at": 200},
                                  profile))
    run(conn, app.cache_daily_pot({**base, "uploads_today": 2, "backend_updated_at": 100},
                                  profile))  # older: ignored
    assert conn.execute("SELECT uploads_today, backend_updated_at FROM daily_pot_cache"
                        ).fetchall() == [(3, 200)]
    run(conn, app.cache_daily_pot({**base, "uploads_today": 4, "backend_updated_at": 300},
                                  profile))
    assert conn.execute("SELECT uploads_today FROM daily_pot_cache").fetchall() == [(4,)]
