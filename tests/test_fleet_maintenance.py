"""performMaintenance at app start in a fleet run (review §5.5, §7 item 6), against the
real embedded stack: phones offline for more than a week whose apps start again (after
reboots) lose the queued uploads older than 7 days. The verdict names that loss apart
from "missing upload", with exactly as many batches as each phone's file held over a
week old just before each start (counted here with this test's own SQL), and the same
scenario without `auto_maintenance` loses none of them: they are still queued."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

from conftest import fresh_database
from fleet_helpers import quick

from simulator.checks.ledgers import MAINTENANCE_LOSS
from simulator.fleet import scenario as sc
from simulator.fleet import stack as stacks
from simulator.fleet.phone import Phone, PhoneLife
from simulator.fleet.result import RunResult
from simulator.fleet.runner import FleetRun

DAY_S = 86_400
WEEK_MS = 7 * DAY_S * 1000


def offline_week(profile: str) -> sc.Scenario:
    """3 full phones offline from the start to past the settle hour (never back: the
    queue is not drained, which keeps the run short) through 7.5 days, rebooting about
    4 times a day for an hour each: the starts in the last half day find entries over a
    week old; the hours off leave gaps, so the bounded queue (a week of batches) does not
    evict them first."""
    return quick(name=f"offline-week-{profile}", profile=profile,
                 start="2024-01-08T00:00:00Z", duration_s=7.5 * DAY_S, speed=100_000,
                 fleet={"phones": 3, "full_phones": 3},
                 network={"offline": [{"at_s": 0, "duration_s": 8 * DAY_S, "share": 1.0}]},
                 faults={"reboots_per_day": 4, "reboot_down_s": 3600},
                 thresholds={"max_anomalies": 100_000, "min_delivered_fraction": 0.0})


class CountingLife(PhoneLife):
    """The phones' operations, but just before each app start the phone's file is read
    here: the ids of upload_queue entries created more than 7 days before the phone's
    clock (what the review's DELETE removes). No await separates that read from the
    start's maintenance, so nothing changes the queue in between."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.starts: list[tuple[int, int, set[str]]] = []  # (phone, true time, ids)

    async def app_start(self, phone: Phone, tracking: bool) -> None:
        assert phone.db is not None
        at = self.clock.operation_ms()
        cutoff = self.phone_now(phone, at) - WEEK_MS
        conn = sqlite3.connect(phone.db)
        try:
            ids = {r[0] for r in conn.execute(
                "SELECT id FROM upload_queue WHERE created_at < ?", (cutoff,))}
        finally:
            conn.close()
        self.starts.append((phone.index, at, ids))
        await super().app_start(phone, tracking)


class CountingRun(FleetRun):
    """A fleet run whose phones are `CountingLife`'s."""

    life_type = CountingLife

    def __init__(self, scenario: sc.Scenario, stack: stacks.Stack, workdir: Path) -> None:
        # no in-flight cap: at 100,000x the dispatcher falls behind at each hour's load
        # and then starts its backlog before any of it runs (every task here ends at its
        # first step: the phones are offline), so a cap would turn uploads into "not
        # sent" by wall-clock timing, and this verdict must not depend on it
        super().__init__(scenario, stack, workdir, max_in_flight=sys.maxsize)

    @property
    def starts(self) -> list[tuple[int, int, set[str]]]:
        life = self.life
        assert isinstance(life, CountingLife)
        return life.starts


def _run(profile: str, database_url: str, workdir: Path) -> tuple[CountingRun, RunResult]:
    """A run of `offline_week(profile)` whose phone files stay in `workdir`."""
    scenario = offline_week(profile)
    workdir.mkdir(parents=True, exist_ok=True)
    stack = stacks.embedded(scenario, database_url)
    try:
        run = CountingRun(scenario, stack, workdir=workdir)
        return run, asyncio.run(run.run())
    finally:
        stack.stop()


def _still_queued(workdir: Path) -> set[str]:
    queued: set[str] = set()
    for db in workdir.glob("phone-*.db"):
        conn = sqlite3.connect(db)
        try:
            queued |= {r[0] for r in conn.execute("SELECT id FROM upload_queue")}
        finally:
            conn.close()
    return queued


def test_starts_after_a_week_offline_lose_the_old_queue_and_the_verdict_names_it(
        postgres: Any, tmp_path: Path) -> None:
    run, result = _run("v2+auto_maintenance", fresh_database(postgres.url), tmp_path / "a")
    verdict = result.verdict
    again, second = _run("v2+auto_maintenance", fresh_database(postgres.url), tmp_path / "b")
    # the same scenario and seed: the same starts, the same deletions, the same verdict
    assert again.starts == run.starts and again.maintained == run.maintained
    assert second.verdict.as_json() == verdict.as_json()
    over_a_week = [ids for _, _, ids in run.starts]
    expected = set().union(*over_a_week)
    # each start deletes what it found, so no batch is counted twice
    assert sum(map(len, over_a_week)) == len(expected) > 100, run.starts
    assert verdict.anomalies[MAINTENANCE_LOSS] == len(expected), verdict.anomalies
    assert verdict.buckets["maintenance"] == len(expected)
    assert set(run.maintained) == expected and not expected & _still_queued(tmp_path / "a")
    # they were queued by their own phone, each at its window's end, over a week earlier
    generated = {g.batch_id: g for g in run.generated}
    for phone, at, ids in run.starts:
        assert all(generated[i].phone == phone and generated[i].due_ms < at - WEEK_MS
                   for i in ids)
    example = verdict.examples[MAINTENANCE_LOSS]
    assert (example.phone, example.at_ms) in {(p, at) for p, at, ids in run.starts if ids}
    assert "performMaintenance" in example.detail
    assert "missing upload" not in verdict.anomalies, verdict.anomalies
    assert not result.passed  # data lost for good fails the run
    assert verdict.buckets["overflow"] == 0 and verdict.buckets["delivered"] == 0


def test_without_auto_maintenance_the_same_starts_lose_nothing(
        database_url: str, tmp_path: Path) -> None:
    run, result = _run("v2", database_url, tmp_path)
    verdict = result.verdict
    old = set().union(*(ids for _, _, ids in run.starts))
    assert len(old) > 100  # the same starts found entries over a week old ...
    assert MAINTENANCE_LOSS not in verdict.anomalies and "maintenance" not in verdict.buckets
    assert not run.maintained and old <= _still_queued(tmp_path)  # ... and kept them
    assert set(verdict.anomalies) <= {"lost to an app kill"}, verdict.anomalies  # reboots
