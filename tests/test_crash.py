"""SIGKILL either side at random moments: the file stays sound and nothing committed is
lost under every profile; the retry worker's two-step completion tears under v2 and
never with transactions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from simulator.checks.crash import crash_loop
from simulator.checks.invariants import check_queue
from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.profiles import V2, V3, FixProfile, only

MISMATCH = FixProfile("flutter-wal-kotlin-truncate", flutter_journal_mode="WAL")


@pytest.mark.parametrize("profile", [V2, only("wal"), only("single_writer"), V3, MISMATCH],
                         ids=lambda p: p.name)
def test_killed_processes_leave_a_sound_file_and_lose_nothing_committed(
        tmp_path: Path, profile: FixProfile) -> None:
    report = crash_loop(tmp_path, profile, rounds=8, seed=3)
    assert report.rounds == 8 and sum(report.kills.values()) == 8
    assert report.integrity_failures == []
    assert report.lost == []
    assert report.rows > 100  # the sides really wrote between the kills
    if profile.transactions:
        assert report.torn == []


def test_a_kill_between_save_and_dequeue_tears_the_v2_completion(tmp_path: Path) -> None:
    report = crash_loop(tmp_path, V2, rounds=30, seed=1, max_delay_s=0.06)
    assert report.torn, "30 kills never landed between the two writes"
    assert all("saved as a contribution and still queued" in t for t in report.torn)


def test_transactions_make_the_completion_all_or_nothing(tmp_path: Path) -> None:
    report = crash_loop(tmp_path, only("transactions"), rounds=30, seed=1, max_delay_s=0.06)
    assert report.torn == [] and report.lost == [] and report.integrity_failures == []


def test_a_completion_that_fails_half_way_is_seen_only_without_transactions(
        tmp_path: Path) -> None:
    """The checker against a planted fault: the DELETE fails after the INSERT ran."""
    for profile in (V2, only("transactions")):
        path = tmp_path / f"{profile.name}.db"
        conn = connect(path)
        run(conn, schema.open_schema(profile.schema_version))
        run(conn, app.enqueue_upload("q1", "{}", 1))
        conn.execute("CREATE TRIGGER no_dequeue BEFORE DELETE ON upload_queue "
                     "BEGIN SELECT RAISE(ABORT, 'disk I/O error (planted)'); END")
        c = app.Contribution("q1", 1, 30, "u33dc0", True, 1, "user-1")
        with pytest.raises(sqlite3.IntegrityError, match="planted"):
            run(conn, app.complete_queued_upload("q1", c, profile))
        found = check_queue(conn)
        if profile.transactions:
            assert found == []
        else:
            assert [a.kind for a in found] == ["torn operation"] and found[0].label == "R5"
        conn.close()
