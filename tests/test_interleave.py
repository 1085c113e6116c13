"""The interleaving scheduler: real SQLite outcomes, exact replay, R2 found and fixed."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.drivers import interleave
from simulator.drivers.blocking import connect, run
from simulator.errors import UsageError
from simulator.phone import app, schema
from simulator.phone.profiles import V2, V3, FixProfile

NOW = 1_704_110_400_000


def two_stoppers(path: Path, profile: FixProfile) -> list[interleave.Writer]:
    """A fresh file with one active session, and two stopTrackingSession calls (R2)."""
    path.unlink(missing_ok=True)
    setup = connect(path)
    run(setup, schema.open_schema(profile.schema_version))
    run(setup, app.start_tracking_session(NOW, profile, "user-1"))
    setup.close()
    return [interleave.Writer(name, connect(path),
                              app.stop_tracking_session(NOW + delay, profile, name, "user-1"),
                              profile.flutter_busy_timeout_ms)
            for name, delay in (("ui", 60_000), ("service", 90_000))]


def dump(path: Path) -> list[tuple[object, ...]]:
    conn = connect(path)
    return conn.execute("SELECT * FROM tracking_sessions ORDER BY id").fetchall()


def stopped_twice(outcome: interleave.Interleaving) -> bool:
    return all(r is not None for r in outcome.results)


def test_the_same_schedule_gives_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    first = interleave.replay(two_stoppers(path, V2), "abab")
    one = dump(path)
    second = interleave.replay(two_stoppers(path, V2), first.schedule)
    assert second.schedule == first.schedule and dump(path) == one
    assert [s.statement for s in second.steps] == [s.statement for s in first.steps]


def test_different_schedules_give_different_files_where_operations_race(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    sequential = interleave.replay(two_stoppers(path, V2), "aab")
    after_sequential = dump(path)
    racing = interleave.replay(two_stoppers(path, V2), "abab")
    after_racing = dump(path)
    assert not stopped_twice(sequential)  # the second call finds no active session
    assert stopped_twice(racing)  # R2: both read it as active, both stop it
    assert after_sequential != after_racing  # the later stop overwrote the first


@pytest.mark.parametrize("search", [interleave.random_schedule, interleave.pct_schedule])
def test_seeded_search_finds_r2_under_v2_and_never_under_v3(
        tmp_path: Path, search: Callable[..., interleave.Interleaving]) -> None:
    path = tmp_path / "gg.db"
    found = [stopped_twice(search(two_stoppers(path, V2), seed)) for seed in range(40)]
    assert any(found)
    fixed = [search(two_stoppers(path, V3), seed) for seed in range(40)]
    assert not any(stopped_twice(o) for o in fixed)
    assert all(e is None for o in fixed for e in o.errors)  # waits, then succeeds


def test_a_writer_holding_a_lock_forever_times_the_other_out(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    conn = connect(path)
    conn.execute("CREATE TABLE t (x)")

    def hold() -> app.Operation[None]:
        yield app.Sql("BEGIN IMMEDIATE")
        yield app.Sql("INSERT INTO t VALUES (1)")  # and never commits

    def write() -> app.Operation[None]:
        yield app.Sql("INSERT INTO t VALUES (2)")

    outcome = interleave.replay([interleave.Writer("a", connect(path), hold()),
                                 interleave.Writer("b", connect(path), write(), 2500)], "ab")
    assert isinstance(outcome.errors[1], sqlite3.OperationalError)
    assert any(s.outcome == "busy-wait" for s in outcome.steps)


def test_a_schedule_naming_an_unknown_writer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="names no writer"):
        interleave.replay(two_stoppers(tmp_path / "gg.db", V2), "abz")


def test_exhaustive_exploration_enumerates_every_schedule_once(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    runs = list(interleave.exhaustive(lambda: two_stoppers(path, V2)))
    schedules = [r.schedule for r in runs]
    assert len(schedules) == len(set(schedules)) >= 3
    assert {"aab", "bba"} <= set(schedules)  # both orders run one after the other
    doubled = [r.schedule for r in runs if stopped_twice(r)]
    assert doubled and all(s.index("b") < s.rindex("a") for s in doubled)
    assert not any(stopped_twice(r) for r in interleave.exhaustive(lambda: two_stoppers(path, V3)))
    bounded = list(interleave.exhaustive(lambda: two_stoppers(path, V2), max_preemptions=0))
    assert {r.schedule for r in bounded} == {"aab", "bba"}  # no preemption: one after other
    assert all(interleave.preemptions(r.schedule, r.steps) == 0 for r in bounded)
    assert max(interleave.preemptions(r.schedule, r.steps) for r in runs) >= 1
