"""The phone file's measurement (simulator.capacity.phone_file) on real SQLite files:
page accounting checked against records whose bytes are computed by hand, the schemas
and the maintenance compared on files the app core wrote, and the outage's losses
against a planted outage whose answer is known."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from simulator.capacity import phone_file
from simulator.capacity.phone_file import (
    DAY_MS,
    START_MS,
    GrowthPoint,
    GrowthVariant,
    OutageVariant,
    PhoneFile,
    PlannedUpload,
    check_batching,
    dbstat_available,
    file_stats,
    live_day,
    measure_growth,
    measure_phone_file,
    simulate_outage,
)
from simulator.errors import UsageError
from simulator.phone.profiles import V2

HOUR_MS = 3_600_000
V3_ONLY_INDEXES = {"idx_contributions_user", "idx_contributions_session",
                   "idx_contributions_geohash", "idx_contributions_success",
                   "idx_sessions_user", "idx_active_sessions", "idx_upload_queue_retry"}


def _blob_table(path: Path, rows: int, blob_bytes: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
    conn.execute("CREATE INDEX t_b ON t (b)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t (id, b) VALUES (?, ?)",
                     ((i, i.to_bytes(4, "big") * (blob_bytes // 4)) for i in range(1, rows + 1)))
    conn.execute("COMMIT")
    return conn


def _int_bytes(value: int) -> int:
    """Bytes of a non-negative integer in a record (SQLite file format 2.1: serial types
    8 and 9 store 0 and 1 in no bytes, 1-6 the others)."""
    if value in (0, 1):
        return 0
    for size, limit in ((1, 2**7), (2, 2**15), (3, 2**23), (4, 2**31), (6, 2**47)):
        if value < limit:
            return size
    return 8


def test_this_sqlite_has_dbstat(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    assert dbstat_available(conn)  # else the per-object numbers fall back to page totals


def test_file_stats_of_known_records(tmp_path: Path) -> None:
    # a 100-byte blob has serial type 212 (2-byte varint); the rowid alias is stored as
    # NULL (serial type 0): table records are 1 + 1 + 2 header bytes + 100 = 104 bytes;
    # index records add the rowid as an integer: 1 + 2 + 1 header bytes + 100 + rowid
    conn = _blob_table(tmp_path / "known.db", rows=500, blob_bytes=100)
    stats = file_stats(conn)
    assert stats.rows == {"t": 500}
    table, index = stats.object("t"), stats.object("t_b")
    assert table is not None and index is not None
    assert table.payload_bytes == 500 * 104
    assert index.payload_bytes == sum(104 + _int_bytes(i) for i in range(1, 501))
    assert (index.table, index.kind, table.kind) == ("t", "index", "table")
    assert table.overflow_pages == index.overflow_pages == 0
    assert stats.file_bytes == os.path.getsize(tmp_path / "known.db")
    assert stats.file_bytes == stats.page_count * stats.page_size_bytes
    assert sum(o.pages for o in stats.objects) + stats.freelist_pages == stats.page_count
    assert stats.other_pages == 0 and stats.auto_vacuum == "NONE"


def test_deleted_rows_go_to_the_free_list_until_vacuum(tmp_path: Path) -> None:
    conn = _blob_table(tmp_path / "free.db", rows=2000, blob_bytes=400)
    full = file_stats(conn)
    conn.execute("DELETE FROM t WHERE id > 500")
    deleted = file_stats(conn)
    assert deleted.rows == {"t": 500}
    assert deleted.file_bytes == full.file_bytes and deleted.freelist_pages > 0
    assert deleted.freelist_bytes == deleted.freelist_pages * deleted.page_size_bytes
    assert (sum(o.pages for o in deleted.objects) + deleted.freelist_pages
            == deleted.page_count)
    conn.execute("VACUUM")
    vacuumed = file_stats(conn)
    assert vacuumed.freelist_pages == 0 and vacuumed.rows == {"t": 500}
    assert vacuumed.page_count == sum(o.pages for o in vacuumed.objects)
    assert vacuumed.page_count <= deleted.page_count - deleted.freelist_pages
    assert vacuumed.file_bytes == vacuumed.page_count * vacuumed.page_size_bytes


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> list[GrowthPoint]:
    """Two days of v2 and v3 as shipped (no maintenance), auto_vacuum NONE and FULL."""
    variants = [GrowthVariant(2, "none"), GrowthVariant(3, "none"),
                GrowthVariant(2, "none", "FULL")]
    points, _ = measure_growth(tmp_path_factory.mktemp("growth"), days=(1, 2),
                               variants=variants, seed=11)
    return points


def test_growth_rows_come_from_the_core_and_pages_add_up(two_days: list[GrowthPoint]) -> None:
    points = two_days
    assert len(points) == 6
    for point in points:
        stats = point.stats
        assert point.contributions_rows == point.uploads == point.saved_uploads > 250 * point.days
        assert point.tracking_sessions_rows == 4 * point.days
        assert stats.rows["daily_pot_cache"] == stats.rows["app_state"] == 1
        assert stats.rows["upload_queue"] == 0
        assert stats.file_bytes == stats.page_count * stats.page_size_bytes
        assert point.bytes_per_contribution_row == pytest.approx(
            stats.table_bytes("contributions") / point.contributions_rows)
    full = [p for p in points if p.variant.auto_vacuum == "FULL"]
    assert all(p.stats.auto_vacuum == "FULL" and p.stats.other_pages >= 1 for p in full)
    assert all(p.stats.other_pages == 0 for p in points if p.variant.auto_vacuum == "NONE")


def test_v3_is_bigger_than_v2_by_its_indexes(two_days: list[GrowthPoint]) -> None:
    v2, v3 = (next(p for p in two_days if p.days == 2 and p.variant == GrowthVariant(v, "none"))
              for v in (2, 3))
    names = {o.name for o in v3.stats.objects} - {o.name for o in v2.stats.objects}
    assert names == V3_ONLY_INDEXES
    assert v2.contributions_rows == v3.contributions_rows
    indexes = sum(o.allocated_bytes for o in v3.stats.objects if o.name in V3_ONLY_INDEXES)
    assert v3.file_bytes - v2.file_bytes >= indexes > 0
    # and v3's rows are longer: user_id (28 characters: 1 header byte + 28) and a NULL
    # session_id (1 header byte) on every contribution, the same rows otherwise
    tables = [p.stats.object("contributions") for p in (v2, v3)]
    assert tables[0] is not None and tables[1] is not None
    assert tables[1].payload_bytes - tables[0].payload_bytes == 30 * v3.contributions_rows


def test_same_seed_same_numbers(two_days: list[GrowthPoint], tmp_path: Path) -> None:
    points, _ = measure_growth(tmp_path, days=(1, 2), variants=[GrowthVariant(2, "none")],
                               seed=11)
    assert points == [p for p in two_days if p.variant == GrowthVariant(2, "none")]


def _plant(phone: PhoneFile, day: int, count: int) -> None:
    """`count` uploads on `day`, each through the core (upload, pot sync)."""
    uploads = [PlannedUpload(START_MS + day * DAY_MS + 60_000 * (i + 1), f"d{day}-{i:05d}",
                             START_MS + day * DAY_MS + 60_000 * i, 30, "u33dc0", b"")
               for i in range(count)]
    live_day(phone, day, uploads, "none")


@pytest.mark.parametrize("auto_vacuum", ["NONE", "FULL"])
def test_clean_old_data_without_vacuum_keeps_the_file_vacuum_shrinks_it(
        tmp_path: Path, auto_vacuum: str) -> None:
    phone = PhoneFile(tmp_path / "phone.db", V2, auto_vacuum=auto_vacuum)
    try:
        _plant(phone, 0, 1500)  # old: more than 90 days before the clean-up
        _plant(phone, 95, 500)
        before = file_stats(phone.conn)
        now = START_MS + 96 * DAY_MS
        phone.app_start(now, "clean_old_data")
        cleaned = file_stats(phone.conn)
        phone.app_start(now, "perform_maintenance")
        maintained = file_stats(phone.conn)
    finally:
        phone.close()
    assert before.rows["contributions"] == 2000
    assert cleaned.rows["contributions"] == maintained.rows["contributions"] == 500
    if auto_vacuum == "NONE":  # SQLite's default: the pages go to the free list
        assert cleaned.file_bytes == before.file_bytes
        assert cleaned.freelist_pages > 0
    else:  # Android's build (auto_vacuum=1): the commit gives them back
        assert cleaned.file_bytes < before.file_bytes
        assert cleaned.freelist_pages == 0
    assert maintained.file_bytes < before.file_bytes / 2
    assert maintained.freelist_pages == 0
    assert maintained.file_bytes <= cleaned.file_bytes


def _hourly_outage(days: int, envelope_bytes: int) -> list[PlannedUpload]:
    envelope = b'{"pad":"' + b"x" * (envelope_bytes - 10) + b'"}'
    assert len(envelope) == envelope_bytes
    return [PlannedUpload(START_MS + d * DAY_MS + h * HOUR_MS + HOUR_MS // 2, f"b{d:02d}-{h:02d}",
                          START_MS + d * DAY_MS + h * HOUR_MS, 30, "u33dc0", envelope)
            for d in range(days) for h in range(24)]


def test_outage_loses_exactly_the_entries_older_than_seven_days(tmp_path: Path) -> None:
    # offline 10 days, an upload every hour; the app starts at each midnight and its
    # maintenance deletes queue entries created before now - 7 days. The last start
    # inside the outage is day 9's: it deletes what was queued before day 2, i.e. days 0
    # and 1: 48 uploads of 1,000 bytes
    uploads = _hourly_outage(10, 1000)
    points = simulate_outage(tmp_path / "outage.db", OutageVariant(2, "perform_maintenance",
                                                                   None),
                             uploads, days=(7, 8, 10))
    expected = {d: sum(u.due_ms < START_MS + (d - 1 - 7) * DAY_MS for u in uploads)
                for d in (7, 8, 10)}
    assert expected == {7: 0, 8: 0, 10: 48}
    for point in points:
        lost = expected[point.days_offline]
        assert point.uploads == 24 * point.days_offline
        assert point.deleted_by_maintenance == point.lost_uploads == lost
        assert point.lost_bytes == point.deleted_by_maintenance_bytes == 1000 * lost
        assert point.queue_rows == point.uploads - lost
        assert point.queue_payload_bytes == 1000 * point.queue_rows
        assert point.evicted_by_cap == 0
    assert _queued(tmp_path / "outage.db") == {u.batch_id for u in uploads[48:]}


def _queued(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {str(r[0]) for r in conn.execute("SELECT id FROM upload_queue")}
    finally:
        conn.close()


def test_outage_without_maintenance_keeps_everything(tmp_path: Path) -> None:
    uploads = _hourly_outage(10, 1000)
    (point,) = simulate_outage(tmp_path / "outage.db", OutageVariant(2, "none", None), uploads,
                               days=(10,))
    assert (point.queue_rows, point.lost_uploads, point.deleted_by_maintenance) == (240, 0, 0)
    assert point.stats.rows["upload_queue"] == 240


def test_outage_under_the_core_cap_evicts_the_oldest(tmp_path: Path) -> None:
    # cap 100: from the 101st upload on, each evicts the oldest; the maintenance finds
    # nothing 7 days old left (the queue holds the last 100 hours)
    uploads = _hourly_outage(10, 500)
    (point,) = simulate_outage(tmp_path / "outage.db", OutageVariant(3, "perform_maintenance",
                                                                     100),
                               uploads, days=(10,))
    assert point.queue_rows == 100
    assert point.evicted_by_cap == 240 - 100
    assert point.deleted_by_maintenance == 0
    assert point.lost_uploads == 140 and point.lost_bytes == 140 * 500
    assert _queued(tmp_path / "outage.db") == {u.batch_id for u in uploads[140:]}


def test_a_day_per_transaction_changes_no_page_but_the_header(tmp_path: Path) -> None:
    for version in (2, 3):
        check = check_batching(tmp_path, GrowthVariant(version, "none"), days=1, seed=5)
        assert check.per_day.page_count == check.per_statement.page_count
        assert check.per_day.objects == check.per_statement.objects
        assert check.per_day.rows == check.per_statement.rows
        assert check.differing_pages <= 1  # page 1 holds the change counter


def test_measure_phone_file_small_run_is_json_and_consistent() -> None:
    report = measure_phone_file(days=(1,), outage_days=(1,), seed=3, quick=True)
    data = json.loads(json.dumps(report.to_json()))
    assert data["seed"] == 3 and data["quick"] is True
    assert len(report.growth) == 7 and len(report.catch_ups) == 3
    assert len(report.outages) == 6 and len(report.batching) == 2
    for outage in report.outages:
        assert outage.uploads == (outage.queue_rows + outage.evicted_by_cap
                                  + outage.deleted_by_maintenance)
        assert outage.lost_uploads == 0  # a day offline loses nothing
    assert 3000 < report.envelope_bytes_mean < 6000


@pytest.mark.parametrize("call", [
    lambda: GrowthVariant(4, "none"),
    lambda: GrowthVariant(2, "vacuum"),
    lambda: GrowthVariant(2, "none", "INCREMENTAL"),
    lambda: OutageVariant(2, "none", 0),
    lambda: measure_phone_file(days=(0,)),
    lambda: measure_phone_file(outage_days=()),
    lambda: measure_phone_file(seed=-1),
])
def test_bad_arguments_say_what_to_fix(call: object) -> None:
    with pytest.raises(UsageError):
        call()  # type: ignore[operator]


def test_a_phone_file_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "used.db").write_bytes(b"")
    with pytest.raises(UsageError, match="new path"):
        PhoneFile(tmp_path / "used.db", V2)


def test_public_surface_is_pinned() -> None:
    assert phone_file.__all__ == sorted(phone_file.__all__, key=lambda n: (not n.isupper(),
                                                                           n[0].islower(), n))
    assert {"measure_phone_file", "PhoneFileReport", "file_stats"} <= set(phone_file.__all__)
    for name in phone_file.__all__:
        assert hasattr(phone_file, name), name
