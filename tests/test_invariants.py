"""Each invariant checker passes on a clean file and catches a planted fault; R1, R2 and
R4 are produced by real interleavings and named."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from simulator.checks.invariants import (
    Ledger,
    check_all,
    check_contributions,
    check_daily_pot,
    check_integrity,
    check_sessions,
    check_upload_retries,
)
from simulator.drivers import interleave
from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.profiles import V2, V3, FixProfile

NOW = 1_704_110_400_000


def fresh(path: Path, profile: FixProfile = V2) -> sqlite3.Connection:
    path.unlink(missing_ok=True)
    conn = connect(path)
    run(conn, schema.open_schema(profile.schema_version))
    return conn


def contribution(i: int, **changes: object) -> app.Contribution:
    base = app.Contribution(f"c{i}", NOW + i, 30, "u33dc0", True, NOW, "user-1")
    return app.Contribution(**{**base.__dict__, **changes})


def test_a_clean_run_has_no_anomaly(tmp_path: Path) -> None:
    conn = fresh(tmp_path / "gg.db")
    ledger = Ledger()
    for i in range(3):
        run(conn, app.insert_contribution(contribution(i), V2))
        ledger.acknowledged.append(contribution(i))
    run(conn, app.start_tracking_session(NOW, V2))
    ledger.stops.append(run(conn, app.stop_tracking_session(NOW + 10, V2)))
    run(conn, app.enqueue_upload("u1", "{}", NOW))
    run(conn, app.update_upload_retry("u1", "503", NOW + 1, V2))
    ledger.retries["u1"] += 1
    assert check_all(conn, ledger) == []


def test_planted_faults_are_named(tmp_path: Path) -> None:
    conn = fresh(tmp_path / "gg.db")
    ledger = Ledger(acknowledged=[contribution(1), contribution(2), contribution(3)],
                    kotlin_minus_one={"c3"})
    run(conn, app.insert_contribution(contribution(2, samples_count=7), V2))
    kinds = sorted(a.kind for a in check_contributions(conn, ledger))
    assert kinds == ["dropped write", "lost write", "overwrite"]

    conn.execute("INSERT INTO tracking_sessions (started_at) VALUES (1), (2)")
    conn.execute("UPDATE tracking_sessions SET stopped_at = 5, duration_ms = 99 WHERE id = 1")
    conn.execute("INSERT INTO tracking_sessions (started_at) VALUES (3)")
    ledger.stops = [1, 1]
    assert sorted(a.label for a in check_sessions(conn, ledger)) == ["R2", "R2b", "R2c"]

    pot = {"user_id": "user-1", "total_credits": 0, "uploads_today": 2, "uploads_required": 5,
           "is_unlocked": 0, "has_claimed_today": 0, "last_claim_date": None,
           "last_synced_at": NOW, "cached_at": NOW}
    run(conn, app.cache_daily_pot(pot))
    ledger.pot_seen = [("user-1", NOW - 5, 1), ("user-1", NOW, 3)]
    assert [a.label for a in check_daily_pot(conn, ledger)] == ["R3"]

    run(conn, app.enqueue_upload("u1", "{}", NOW))
    run(conn, app.update_upload_retry("u1", "503", NOW, V2))
    ledger.retries["u1"] = 2
    assert [a.label for a in check_upload_retries(conn, ledger)] == ["R4"]


def test_corruption_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    conn = fresh(path)
    for i in range(200):
        run(conn, app.insert_contribution(contribution(i), V2))
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page + 8: 2 * page + 200] = b"\xff" * 192  # scribble over a b-tree page
    path.write_bytes(bytes(data))
    try:
        anomalies = check_integrity(connect(path))
    except sqlite3.DatabaseError:  # the file is too damaged to even check
        anomalies = ["unreadable"]  # type: ignore[list-item]
    assert anomalies





def test_r2_from_a_real_interleaving_is_named_with_its_schedule(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    for profile, expect in ((V2, ["R2"]), (V3, [])):
        conn = fresh(path, profile)
        run(conn, app.start_tracking_session(NOW, profile, "user-1"))
        conn.close()
        writers = [interleave.Writer(n, connect(path),
                                     app.stop_tracking_session(NOW + d, profile, n, "user-1"),
                                     profile.flutter_busy_timeout_ms)
                   for n, d in (("ui", 10), ("service", 20))]
        outcome = interleave.replay(writers, "abab")
        ledger = Ledger(stops=outcome.results, history=[outcome.schedule])
        found = check_sessions(connect(path), ledger)
        assert [a.label for a in found] == expect
        if found:
            assert found[0].history == ("abab",)


@pytest.mark.parametrize("profile, expect", [(V2, ["R4"]), (V3, [])], ids=["v2", "v3"])
def test_r4_lost_retry_count_from_a_real_interleaving(tmp_path: Path, profile: FixProfile,
                                                      expect: list[str]) -> None:
    path = tmp_path / "gg.db"
    conn = fresh(path, profile)
    run(conn, app.enqueue_upload("u1", "{}", NOW))
    conn.close()
    writers = [interleave.Writer(n, connect(path),
                                 app.update_upload_retry("u1", n, NOW, profile),
                                 profile.flutter_busy_timeout_ms) for n in ("a", "b")]
    interleave.replay(writers, "abab")
    ledger = Ledger()
    ledger.retries["u1"] = 2
    assert [a.label for a in check_upload_retries(connect(path), ledger)] == expect


def test_r1_overwrite_from_flutter_replace(tmp_path: Path) -> None:
    """Kotlin saved c1, then Flutter's REPLACE with the same id and other values."""
    path = tmp_path / "gg.db"
    for profile, expect in ((V2, ["overwrite"]), (V3, [])):
        conn = fresh(path, profile)
        kotlin_row = contribution(1)
        ledger = Ledger(acknowledged=[kotlin_row])
        run(conn, app.kotlin_save_contribution(kotlin_row, profile))
        with contextlib.suppress(sqlite3.IntegrityError):  # ABORT: sqflite raises, row kept
            run(conn, app.insert_contribution(contribution(1, samples_count=12), profile))
        assert [a.kind for a in check_contributions(conn, ledger)] == expect
