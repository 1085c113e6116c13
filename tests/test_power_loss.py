"""Power loss on the phone's file: the rebuilt disk (pure), the recording VFS on real
SQLite commits, and the judged workload, whose checker is proven on `synchronous = OFF`
(a setting that corrupts on power loss) before it is trusted on the profiles."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from simulator.checks.power_loss import android_synchronous, power_loss
from simulator.drivers.power_vfs import (
    SECTOR,
    RecordingVFS,
    WriteLog,
    disk_after_cut,
)
from simulator.phone.profiles import V2, V3


def _log(*ops: tuple[str, str, int, bytes, int]) -> WriteLog:
    log = WriteLog(initial={"/f": b"", "/f-shm": None, "/new": None})
    for path, kind, offset, data, at in ops:
        log.now_ms = at
        log.add(path, kind, offset, data)
    return log


def test_what_was_synced_is_on_the_disk_and_nothing_after_the_cut() -> None:
    log = _log(("/f", "write", 0, b"A" * 100, 0), ("/f", "sync", 0, b"", 0),
               ("/f", "write", 0, b"B" * 100, 0))
    for seed in range(50):
        assert disk_after_cut(log, 2, random.Random(seed))["/f"] == b"A" * 100  # synced
        assert disk_after_cut(log, 3, random.Random(seed))["/f"] in (b"A" * 100, b"B" * 100)
        assert disk_after_cut(log, 1, random.Random(seed))["/f"] in (b"", b"A" * 100)


def test_an_unsynced_write_is_kept_dropped_or_torn_at_sector_bounds() -> None:
    old, new = b"o" * (4 * SECTOR), b"n" * (4 * SECTOR)
    log = _log(("/f", "write", 0, old, 0), ("/f", "sync", 0, b"", 0),
               ("/f", "write", 0, new, 0))
    seen = set()
    for seed in range(200):
        disk = disk_after_cut(log, 3, random.Random(seed))["/f"]
        assert disk is not None and len(disk) == len(old)
        sectors = tuple(disk[i:i + SECTOR] for i in range(0, len(disk), SECTOR))
        assert all(s in (old[:SECTOR], new[:SECTOR]) for s in sectors)  # never mid-sector
        seen.add("kept" if disk == new else "dropped" if disk == old else "torn")
    assert seen == {"kept", "dropped", "torn"}


def test_old_enough_writes_were_written_back_and_new_files_need_a_sync() -> None:
    log = _log(("/f", "write", 0, b"old", 0), ("/new", "write", 0, b"x", 0),
               ("/f", "write", 3, b"new", 60_000), ("/f-shm", "write", 0, b"s", 60_000))
    for seed in range(50):
        disk = disk_after_cut(log, 4, random.Random(seed), written_back_ms=30_000)
        assert disk["/f"] is not None and disk["/f"].startswith(b"old")
        assert disk["/new"] == b"x" and disk["/f-shm"] is None  # shared memory is gone
    worst = [disk_after_cut(log, 4, random.Random(seed))["/new"] for seed in range(50)]
    assert None in worst  # never synced, nothing written back: it may not exist


def test_the_vfs_logs_a_commit_in_sqlites_order(tmp_path: Path) -> None:
    log = WriteLog()
    vfs = RecordingVFS("ggsim-test-recording", log)
    try:
        conn = apsw.Connection(str(tmp_path / "t.db"), vfs="ggsim-test-recording")
        conn.execute("PRAGMA journal_mode = TRUNCATE; PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (x)")
        start = log.count
        conn.execute("INSERT INTO t VALUES (1)")
        conn.close()
    finally:
        vfs.unregister()
    commit = [(Path(op.path).name, op.kind) for op in log.ops[start:]]
    journal_sync = commit.index(("t.db-journal", "sync"))
    database_write = commit.index(("t.db", "write"))
    # rollback journal: the old pages are durable before the database is changed
    assert journal_sync < database_write < commit.index(("t.db", "sync"))


def test_the_checker_catches_an_unsafe_setting() -> None:
    """A planted fault: synchronous = OFF never syncs, and power loss corrupts."""
    report = power_loss(V2, synchronous="OFF", seed=1, windows=48, cuts=80, writeback_s=None)
    assert report.corrupt_cuts and not report.clean


@pytest.mark.parametrize("profile", [V2, V3], ids=lambda p: p.name)
def test_with_synchronous_full_nothing_acknowledged_is_lost(profile: object) -> None:
    for seed in (0, 1):
        report = power_loss(profile, synchronous="FULL", seed=seed, windows=48, cuts=80,
                            writeback_s=None)  # the worst case: nothing written back
        assert report.clean, report.as_json()
        assert report.cuts == 80 and report.operations > 80


def test_androids_wal_setting_keeps_the_file_whole_but_not_every_commit() -> None:
    """v3 in WAL with Android's NORMAL: SQLite promises consistency, not durability."""
    assert (android_synchronous(V2), android_synchronous(V3)) == ("FULL", "NORMAL")
    report = power_loss(V3, seed=0, windows=48, cuts=80, writeback_s=None)
    assert report.synchronous == "NORMAL" and not report.corrupt_cuts
    assert report.lost_saved > 0  # committed, acknowledged, and gone: the finding


def test_the_same_seed_gives_the_same_cuts_and_findings() -> None:
    first = power_loss(V3, seed=4, windows=32, cuts=40)
    again = power_loss(V3, seed=4, windows=32, cuts=40)
    assert first.as_json() == again.as_json()


def test_the_command_reports_and_exits_by_its_findings() -> None:
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "races", "--power-loss",
                           "30", "--profile", "v2", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["synchronous"] == "FULL"
    unsafe = subprocess.run([sys.executable, "-m", "simulator.cli", "races", "--power-loss",
                             "60", "--profile", "v2", "--synchronous", "OFF", "--writeback",
                             "0"], capture_output=True, text=True, timeout=120)
    assert unsafe.returncode == 1 and "corruption" in unsafe.stdout, unsafe.stdout
