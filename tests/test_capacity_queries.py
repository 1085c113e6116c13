"""The tile-coverage style queries (simulator.capacity.queries) on real engines: the
phone's Appendix B queries answer what a direct computation over the file's rows says
(planted contributions and a file the app core lived), their plans are what SQLite
really does, and the backend loads exactly the projected rows and answers what an
independent count of the loaded rows says. Nothing asserts on time."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from simulator.capacity import phone_file, queries
from simulator.capacity.aggregates import (
    AggregateCellsReport,
    measure_aggregate_cells,
    project_rows,
)
from simulator.capacity.phone_file import DAY_MS, START_MS, GrowthVariant, PhoneFile, live_day
from simulator.capacity.queries import (
    Budget,
    CoverageShape,
    QueryPlan,
    _tiles,
    growth_days,
    measure_phone_queries,
    measure_queries,
    measure_tile_queries,
    measure_user_coverage,
    ring_cells,
    sqlite_plan,
)
from simulator.capacity.queries._phone import measure_file
from simulator.capacity.queries._postgres import MIN_RUNS
from simulator.drivers.blocking import connect, run
from simulator.errors import UsageError
from simulator.instants import parse_instant
from simulator.phone import app, schema

V2_SHIPPED = GrowthVariant(schema.V2, "none")
V3_FIXED = GrowthVariant(schema.V3, "perform_maintenance")
NOW_MS = parse_instant(queries.NOW)
SMALL = Budget(6, 5.0)


@pytest.fixture(scope="module")
def cells() -> AggregateCellsReport:
    """A small cells model (20 phones of one seed on two dates): seconds, not minutes."""
    return measure_aggregate_cells(fleet_sizes=(5, 10, 15, 20), seeds=(1,), resamples=5)


def test_the_public_surface_is_pinned() -> None:
    assert queries.__all__ == sorted(queries.__all__, key=lambda n: (not n.isupper(),
                                                                     n[0].islower(), n))
    for name in queries.__all__:
        assert getattr(queries, name) is not None
    assert {"measure_queries", "QueryReport", "measure_phone_queries"} <= set(queries.__all__)


def test_misuse_says_what_to_give() -> None:
    with pytest.raises(UsageError, match="at least one user"):
        CoverageShape(0, 30, 10)
    with pytest.raises(UsageError, match="positive whole numbers"):
        measure_phone_queries(days=(0, 7))
    with pytest.raises(UsageError, match="runs must be"):
        measure_phone_queries(days=(7,), runs=0)


# -- the phone ------------------------------------------------------------------------


def test_the_days_are_the_phone_file_measurements_days() -> None:
    week = phone_file._generate(phone_file.DEFAULT_SEED, 7, START_MS, envelopes=False)
    days = growth_days(phone_file.DEFAULT_SEED)
    for day in (0, 6, 9, 40):
        mine = days.day(day)
        theirs = phone_file._day_uploads(week, phone_file.DEFAULT_SEED, day)
        assert [(u.due_ms, u.batch_id, u.timestamp_ms, u.samples, u.geohash) for u in mine] \
            == [(u.due_ms, u.batch_id, u.timestamp_ms, u.samples, u.geohash) for u in theirs]
        assert len({u.batch_id for u in mine}) == len(mine) > 200


def _planted(path: Path, version: int) -> tuple[int, int]:
    """A file with known contributions; returns (days lived, active session id). Now is
    the last millisecond of day 4: today is day 4."""
    conn = connect(path)
    run(conn, schema.open_schema(version))
    profile = (V2_SHIPPED if version == schema.V2 else V3_FIXED).profile

    def put(day: int, minute: int, geohash: str | None, success: bool, user: str = "u1"
            ) -> None:
        at = START_MS + day * DAY_MS + minute * 60_000
        run(conn, app.insert_contribution(app.Contribution(
            f"c-{day}-{minute}-{user}", at, 30, geohash, success, at, user), profile))

    for day in (0, 1, 3):  # day 2 has a failed upload only: the streak is days 3 and 4
        put(day, 10, "u33dc0", True)
    put(2, 10, "u33dc1", False)
    for minute, geohash in ((0, "u33dc0"), (5, "u33dc0"), (10, "u33dc2"), (15, "u33dc3"),
                            (20, None)):
        put(4, minute, geohash, True)
    put(4, 25, "u33dc4", False)  # counted as an upload of its tile, no samples
    put(4, 30, "u33zzz", True, user="u2")  # another user (v3 scopes it out)
    put(3, 1439, "u33dc5", True)  # yesterday's last minute: not today
    first = run(conn, app.start_tracking_session(START_MS, profile, "u1"))
    run(conn, app.stop_tracking_session(START_MS + 1000, profile, "idle", "u1"))
    active = run(conn, app.start_tracking_session(START_MS + 4 * DAY_MS, profile, "u1"))
    assert active != first
    conn.close()
    return 5, active


@pytest.mark.parametrize("variant", [V2_SHIPPED, V3_FIXED], ids=["v2", "v3"])
def test_planted_contributions_give_the_known_answers(tmp_path: Path,
                                                      variant: GrowthVariant) -> None:
    path = tmp_path / "planted.db"
    days, active = _planted(path, variant.schema_version)
    rows = {r.query: r for r in measure_file(path, variant, days, "u1", runs=3)}
    # today: u33dc0, u33dc2, u33dc3, u33dc4 of u1 (a NULL geohash is no tile), and u2's
    # u33zzz where the schema has no users
    tiles = 4 if variant.schema_version == schema.V3 else 5
    assert rows["getTodayTileCoverage"].answer == rows["getTodayTileCoverage"].rows_returned \
        == tiles
    assert rows["getStreak"].answer == 2
    assert rows["getStreak"].rows_returned == 4  # days 0, 1, 3, 4
    assert rows["getActiveTrackingSession"].answer == active
    assert all(r.runs == 3 and r.latency_us_median > 0 for r in rows.values())
    assert rows["getStreak"].contributions_rows == 12


def _direct(path: Path, now_ms: int, user: str | None) -> tuple[int, int, int | None]:
    """(today's tiles, streak, active session) computed from the file's rows in Python."""
    conn = sqlite3.connect(path)
    scoped = " WHERE user_id = ?" if user else ""
    args = (user,) if user else ()
    contributions = conn.execute(
        f"SELECT timestamp, geohash, success FROM contributions{scoped}", args).fetchall()
    sessions = conn.execute(f"SELECT id, started_at, stopped_at FROM tracking_sessions"
                            f"{scoped}", args).fetchall()
    conn.close()
    today = now_ms - now_ms % DAY_MS
    tiles = {g for t, g, _ in contributions if today <= t < today + DAY_MS and g is not None}
    days = {datetime.fromtimestamp(t / 1000, tz=UTC).date() for t, _, s in contributions if s}
    cursor: date = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()
    cursor = cursor if cursor in days else cursor - timedelta(days=1)
    streak = 0
    while cursor in days:
        streak, cursor = streak + 1, cursor - timedelta(days=1)
    open_ = [s for s in sessions if s[2] is None]
    return len(tiles), streak, max(open_, key=lambda s: s[1])[0] if open_ else None


@pytest.mark.parametrize("variant", [V2_SHIPPED, V3_FIXED], ids=["v2", "v3"])
def test_a_lived_file_answers_what_its_rows_say(tmp_path: Path, variant: GrowthVariant) -> None:
    phone = PhoneFile(tmp_path / "lived.db", variant.profile)
    week = growth_days()
    for day in range(3):
        live_day(phone, day, week.day(day), variant.maintenance)
    user = phone.user_id if variant.profile.user_scoping else None
    phone.close()
    rows = {r.query: r for r in measure_file(phone.path, variant, 3, phone.user_id, runs=2)}
    tiles, streak, active = _direct(phone.path, START_MS + 3 * DAY_MS - 1, user)
    # 3 days lived; the first day's first uploads are windows of the evening before
    assert tiles > 1 and streak in (3, 4) and active is not None
    assert rows["getTodayTileCoverage"].answer == tiles
    assert rows["getStreak"].answer == streak
    assert rows["getActiveTrackingSession"].answer == active


def test_the_plans_are_what_sqlite_does() -> None:
    """Verified on SQLite 3.40: v2's tile coverage is NOT a full scan (idx_timestamp serves
    its time range: the review's claim is wrong); v3's uses the (user_id, timestamp)
    index; getStreak is a full scan in v2 and, in v3, an index search on success that
    still reads every row; the active session walks idx_session_started in v2 and
    searches idx_sessions_user in v3 (Appendix B's partial index is not chosen)."""
    report = measure_phone_queries(days=(2,), runs=2)
    plans = {(r.profile.split("-")[0].split("+")[0], r.query): r.plan for r in report.rows}
    assert len(report.rows) == 6 and not report.has_statistics
    tile2, tile3 = plans["v2", "getTodayTileCoverage"], plans["v3", "getTodayTileCoverage"]
    assert not tile2.full_scan and tile2.searched == ("idx_timestamp",)
    assert not tile3.full_scan and tile3.searched == ("idx_contributions_user",)
    assert plans["v2", "getStreak"].scanned == ("contributions",)
    assert plans["v3", "getStreak"].searched == ("idx_contributions_success",)
    assert plans["v2", "getActiveTrackingSession"].index_walks == ("idx_session_started",)
    assert plans["v3", "getActiveTrackingSession"].searched == ("idx_sessions_user",)
    assert all(p.temp_btrees == 2 for k, p in plans.items() if k[1] == "getStreak")


def test_the_plan_classifier_on_a_known_table() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b INTEGER)")
    conn.execute("CREATE INDEX t_a ON t (a)")
    scan = sqlite_plan(conn, "SELECT * FROM t WHERE b = 1")
    search = sqlite_plan(conn, "SELECT * FROM t WHERE a = ?", (1,))
    walk = sqlite_plan(conn, "SELECT a FROM t ORDER BY a")
    assert scan.full_scan and scan.scanned == ("t",) and not scan.uses_index
    assert search.searched == ("t_a",) and not search.full_scan
    assert walk.index_walks == ("t_a",) and not walk.full_scan and walk.uses_index


# -- which aggregate rows a fleet has ---------------------------------------------------


def test_fill_hits_the_total_within_the_caps() -> None:
    expected = np.array([1.0, 2.0, 0.0, 0.0, 4.0])
    caps = np.array([3.0, 3.0, 5.0, 10.0, 2.0])
    for total in range(int(caps.sum()) + 1):
        x = _tiles.fill(expected, caps, total)
        assert int(x.sum()) == total and (x <= caps).all() and (x >= 0).all()
    assert list(_tiles.fill(expected, caps, 3)) == [0, 1, 0, 0, 2]
    with pytest.raises(UsageError):
        _tiles.fill(expected, caps, int(caps.sum()) + 1)


def test_the_rings_are_the_cells_models_rings(cells: AggregateCellsReport) -> None:
    model = cells.occupancy
    rings = ring_cells(model.ring_cells.size, model.ring_m)
    # the last ring is cut at the model's reach, these at a whole ring: more cells there
    assert (rings.sizes[:-1] == model.ring_cells[:-1]).all()
    assert rings.sizes[-1] >= model.ring_cells[-1]
    centre = rings.geohash[: rings.start[1]]
    assert all(len(g) == 6 for g in rings.geohash) and len(set(rings.geohash)) == len(
        rings.geohash)
    assert "u33dc0" in rings.geohash[: rings.start[4]]  # the centre (review §4.2) is central
    assert len(centre) == model.ring_cells[0]


def test_the_row_plan_and_its_draw(cells: AggregateCellsReport) -> None:
    model = cells.occupancy
    rings = ring_cells(model.ring_cells.size, model.ring_m)
    projected = round(project_rows(cells, 50, 30)[0])
    daily = project_rows(cells, 50, 30, table="sensor_aggregates_daily")[0]
    plan = _tiles.plan_rows(model, rings, 50, NOW_MS, projected, daily)
    assert int(plan.cells.sum()) == projected and plan.cells.shape == (8640, rings.sizes.size)
    assert (plan.cells <= plan.day_cells).all() and (plan.day_cells <= rings.sizes).all()
    rows = _tiles.draw_rows(plan, rings, 20_000, seed=7)
    again = _tiles.draw_rows(plan, rings, 20_000, seed=7)
    other = _tiles.draw_rows(plan, rings, 20_000, seed=8)
    assert rows.cell.size == 20_000 and (rows.cell == again.cell).all()
    assert not (rows.cell == other.cell).all()
    assert rows.window_ms.max() == NOW_MS - _tiles.WINDOW_MS  # the newest windows
    pairs = set(zip(rows.window_ms.tolist(), rows.cell.tolist(), strict=True))
    assert len(pairs) == rows.cell.size  # no window has a tile twice
    ring_of = np.searchsorted(rings.start, rows.cell, side="right") - 1
    for day in np.unique(rows.window_ms // DAY_MS):
        mine = rows.window_ms // DAY_MS == day
        _, first = np.unique(rows.cell[mine], return_index=True)
        per_ring = np.bincount(ring_of[mine][first], minlength=rings.sizes.size)
        assert (per_ring <= plan.day_cells).all()  # a day's windows share its tiles


# -- the backend ------------------------------------------------------------------------


def _today_tiles_by_hand(cells: AggregateCellsReport, users: int, rows: int, seed: int
                         ) -> tuple[set[str], set[str]]:
    """Today's and the last hour's geohashes of the rows a load holds, by set arithmetic
    on strings (the load's own count uses numpy on cell numbers)."""
    model = cells.occupancy
    rings = ring_cells(model.ring_cells.size, model.ring_m)
    plan = _tiles.plan_rows(model, rings, users, NOW_MS, round(project_rows(cells, users, 30)[0]),
                            project_rows(cells, users, 30, table="sensor_aggregates_daily")[0])
    drawn = _tiles.draw_rows(plan, rings, rows, seed)
    today = NOW_MS - NOW_MS % DAY_MS
    pairs = list(zip(drawn.window_ms.tolist(), drawn.cell.tolist(), strict=True))
    return ({rings.geohash[c] for w, c in pairs if w >= today},
            {rings.geohash[c] for w, c in pairs if w >= NOW_MS - 3_600_000})


def test_tile_queries_load_exactly_and_answer_what_was_loaded(
        database_url: str, cells: AggregateCellsReport) -> None:
    found = measure_tile_queries(database_url, cells, (1, 200), now_ms=NOW_MS, cap_rows=40_000,
                                 seed=3, budget=SMALL)
    one, many = found
    assert not one.load.capped and one.load.loaded_rows_5m == one.load.requested_rows_5m \
        == round(project_rows(cells, 1, 30)[0])
    assert one.load.days_loaded == 30 and one.load.today_complete
    assert many.load.capped and many.load.loaded_rows_5m == many.load.requested_rows_5m \
        == 40_000 < many.load.projected_rows_5m
    for coverage in found:
        today, hour = _today_tiles_by_hand(cells, coverage.load.users,
                                           coverage.load.requested_rows_5m, 3)
        by_name = {q.query: q for q in coverage.queries}
        assert by_name["tiles today (5-minute table)"].answer_rows == len(today) > 0
        assert by_name["tiles today (daily table)"].answer_rows == len(today)
        assert by_name["tiles in the last hour (5-minute table)"].answer_rows == len(hour)
        for q in coverage.queries:
            assert q.answers_match and q.answer_rows == q.expected_rows
            assert MIN_RUNS <= q.runs <= SMALL.runs and q.plan.rows_returned == q.answer_rows
            assert q.plan.node_types and q.latency_ms_p99 >= q.latency_ms_median
            assert q.generic_plan_runs + q.custom_plan_runs == q.runs
            assert q.generic_plan_nodes  # the embedded server is PostgreSQL 16 or newer


def test_user_coverage_answers_each_users_tiles(database_url: str) -> None:
    shape = CoverageShape(2, 3, 4)
    found = measure_user_coverage(database_url, shape, now_ms=NOW_MS, seed=5, budget=SMALL)
    assert found.query.answers_match and found.query.answer_rows == found.query.expected_rows > 0
    # each queried user: 3 days of about 284 uploads up to now; 4 more users' today
    assert 3 * 250 < found.rows_per_user <= 3 * 288
    assert 0 < found.today_rows_per_user <= 18 * 12
    assert found.table_rows == pytest.approx(
        2 * found.rows_per_user + 4 * found.today_rows_per_user, rel=0.3)
    assert found.table_bytes > 0 and found.query.plan.uses_index


def test_measure_queries_end_to_end(database_url: str, cells: AggregateCellsReport) -> None:
    plan = QueryPlan((2,), 2, (1, 50), 5_000, Budget(5, 1.0), CoverageShape(1, 2, 2))
    lines: list[str] = []
    report = measure_queries(database_url, quick=True, cells=cells, plan=plan,
                             progress=lines.append)
    assert len(report.phone.rows) == 2 * 3 and len(report.tiles) == 2
    assert [t.load.loaded_rows_5m for t in report.tiles] == [
        min(round(project_rows(cells, n, 30)[0]), 5_000) for n in (1, 50)]
    assert report.user_coverage.query.answers_match
    assert "given cells report" in report.cells_source
    assert any("capped" in n for n in report.notes) and lines
    assert report.to_json()["tiles"][0]["load"]["users"] == 1
    with pytest.raises(UsageError):
        measure_queries(database_url, quick=True, cells=cells,
                        plan=QueryPlan((2,), 2, (), 5_000, Budget(5, 1.0),
                                       CoverageShape(1, 2, 2)))
