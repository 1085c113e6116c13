"""Race scenarios and the search behind `ggsim races`.

A scenario sets up a fresh file, gives two writers one app operation each, and turns
the outcome of an interleaving into a `Ledger` for the invariant checkers. The search
explores every schedule of each scenario (they are short; `interleave.exhaustive`) or,
past the budget, stops; every anomaly comes with the schedule string that replays it.

Scenarios (review labels):
- `double-stop` (R2): two stopTrackingSession calls on one active session;
- `retry-count` (R4): two updateUploadRetry calls on one queued upload;
- `same-id-save` (R1): Kotlin's save and Flutter's insertContribution of one id with
  different values (the review's "UUID collision or clock skew"). Kotlin's upload was
  acknowledged by the backend before its save, so a silent -1 loses it; a save that
  raises is a visible failure the app can handle and is not counted;
- `stale-pot` (R3): fetchPotState caching an older backend state while recordUpload
  caches the newer confirmed one;
- `torn-complete` (R5): the retry worker's completion (save, then dequeue) while another
  connection looks at the file: the observer must never see the upload both saved and
  still queued (a retry worker scanning then would send it again, and a crash there
  leaves it so for good; `simulator.checks.crash` shows the second).
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.checks.invariants import (
    Anomaly,
    Ledger,
    check_contributions,
    check_daily_pot,
    check_integrity,
    check_queue,
    check_sessions,
    check_upload_retries,
)
from simulator.drivers import interleave
from simulator.drivers.blocking import connect, file_bytes
from simulator.errors import UsageError
from simulator.phone import app, schema
from simulator.phone.effects import Operation, Sql
from simulator.phone.profiles import FIXES, V2, V3, FixProfile, only

NOW = 1_704_110_400_000
STRATEGIES = ("exhaustive", "random", "pct")


@dataclass(frozen=True)
class Scenario:
    """Two writers racing on one fresh file, and how to judge the outcome."""

    name: str
    label: str
    setup: Callable[[FixProfile], list[Operation[Any]]]
    writers: Callable[[FixProfile], list[tuple[str, Operation[Any], int]]]
    judge: Callable[[Any, FixProfile, interleave.Interleaving], list[Anomaly]]


def _double_stop_setup(p: FixProfile) -> list[Operation[Any]]:
    return [app.start_tracking_session(NOW, p, "user-1")]


def _double_stop_writers(p: FixProfile) -> list[tuple[str, Operation[Any], int]]:
    return [(w, app.stop_tracking_session(NOW + d, p, w, "user-1"), p.flutter_busy_timeout_ms)
            for w, d in (("ui", 10_000), ("service", 20_000))]


def _double_stop_judge(conn: Any, p: FixProfile, o: interleave.Interleaving) -> list[Anomaly]:
    ledger = Ledger(stops=[r for r, e in zip(o.results, o.errors, strict=True) if e is None],
                    history=[o.schedule])
    return check_sessions(conn, ledger)


def _retry_setup(p: FixProfile) -> list[Operation[Any]]:
    return [app.enqueue_upload("u1", "{}", NOW)]


def _retry_writers(p: FixProfile) -> list[tuple[str, Operation[Any], int]]:
    return [(w, app.update_upload_retry("u1", w, NOW, p), p.flutter_busy_timeout_ms)
            for w in ("worker-1", "worker-2")]


def _retry_judge(conn: Any, p: FixProfile, o: interleave.Interleaving) -> list[Anomaly]:
    ledger = Ledger(history=[o.schedule])
    ledger.retries["u1"] = sum(1 for e in o.errors if e is None)
    return check_upload_retries(conn, ledger)


KOTLIN_ROW = app.Contribution("c1", NOW, 30, "u33dc0", True, NOW, "user-1")
FLUTTER_ROW = app.Contribution("c1", NOW + 7, 12, "u33dc1", True, NOW + 7, "user-1")


def _same_id_writers(p: FixProfile) -> list[tuple[str, Operation[Any], int]]:
    _, kotlin_op = app.kotlin_side_save(KOTLIN_ROW, p)
    return [("kotlin", kotlin_op, p.kotlin_busy_timeout_ms),
            ("flutter", app.insert_contribution(FLUTTER_ROW, p), p.flutter_busy_timeout_ms)]


def _same_id_judge(conn: Any, p: FixProfile, o: interleave.Interleaving) -> list[Anomaly]:
    ledger = Ledger(history=[o.schedule])
    kotlin_result, kotlin_error = o.results[0], o.errors[0]
    if p.single_writer:  # handed to Flutter: a failure raises, the app sees it
        if kotlin_error is None:
            ledger.acknowledged.append(KOTLIN_ROW)
    else:  # the backend acknowledged first; a -1 is silent
        ledger.acknowledged.append(KOTLIN_ROW)
        if kotlin_result == -1:
            ledger.kotlin_minus_one.add(KOTLIN_ROW.id)
    if o.errors[1] is None:
        ledger.acknowledged.append(FLUTTER_ROW)
    # only the last successful write of an id can be in the file: judge each against it
    return check_contributions(conn, ledger)


def _pot(updated_at: int, uploads: int) -> dict[str, Any]:
    return {"user_id": "user-1", "total_credits": 10, "uploads_today": uploads,
            "uploads_required": 5, "is_unlocked": int(uploads >= 5), "has_claimed_today": 0,
            "last_claim_date": None, "last_synced_at": updated_at, "cached_at": updated_at,
            "backend_updated_at": updated_at}


OLDER_POT, NEWER_POT = _pot(NOW, 2), _pot(NOW + 60_000, 3)


def _stale_pot_writers(p: FixProfile) -> list[tuple[str, Operation[Any], int]]:
    # fetchPotState got the older state from the backend and caches it late; meanwhile
    # recordUpload's confirmed newer state is cached (review §2.2 R3).
    return [("fetch", app.cache_daily_pot(OLDER_POT, p), p.flutter_busy_timeout_ms),
            ("record", app.cache_daily_pot(NEWER_POT, p), p.flutter_busy_timeout_ms)]


def _stale_pot_judge(conn: Any, p: FixProfile, o: interleave.Interleaving) -> list[Anomaly]:
    ledger = Ledger(history=[o.schedule])
    for pot, error in zip((OLDER_POT, NEWER_POT), o.errors, strict=True):
        if error is None:
            ledger.pot_seen.append(("user-1", pot["backend_updated_at"], pot["uploads_today"]))
    return check_daily_pot(conn, ledger)


TORN_QUERY = ("SELECT q.id FROM upload_queue q JOIN contributions c ON c.id = q.id "
              "ORDER BY q.id")


def _observe_torn() -> Operation[list[str]]:
    rows = yield Sql(TORN_QUERY)
    return [str(r[0]) for r in rows]


def _torn_writers(p: FixProfile) -> list[tuple[str, Operation[Any], int]]:
    c = app.Contribution("q1", NOW, 30, "u33dc0", True, NOW, "user-1")
    return [("worker", app.complete_queued_upload("q1", c, p), p.flutter_busy_timeout_ms),
            ("observer", _observe_torn(), p.flutter_busy_timeout_ms)]


def _torn_judge(conn: Any, p: FixProfile, o: interleave.Interleaving) -> list[Anomaly]:
    seen = o.results[1] or []
    return check_queue(conn) + [Anomaly("torn operation", "R5",
                            f"upload {uid} seen saved and still queued mid-operation",
                            (o.schedule,)) for uid in seen]


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("double-stop", "R2", _double_stop_setup, _double_stop_writers, _double_stop_judge),
    Scenario("retry-count", "R4", _retry_setup, _retry_writers, _retry_judge),
    Scenario("same-id-save", "R1", lambda p: [], _same_id_writers, _same_id_judge),
    Scenario("stale-pot", "R3", lambda p: [], _stale_pot_writers, _stale_pot_judge),
    Scenario("torn-complete", "R5", lambda p: [app.enqueue_upload("q1", "{}", NOW)],
             _torn_writers, _torn_judge),
)}


@dataclass(frozen=True)
class Found:
    """One anomaly and the schedule that produces it."""

    scenario: str
    schedule: str
    anomaly: Anomaly
    history: tuple[str, ...]


@functools.cache
def _start_file(scenario: Scenario, profile: FixProfile) -> bytes:
    """The bytes of a scenario's start file, built once per scenario and profile (a
    search runs thousands of schedules; building the schema each time costs fsyncs).
    The last connection's close checkpoints a WAL, so the bytes are the whole file."""
    return file_bytes([app.open_connection(profile.flutter_journal_mode, 0),
                       schema.open_schema(profile.schema_version), *scenario.setup(profile)])


def _make(directory: Path, scenario: Scenario, profile: FixProfile
          ) -> Callable[[], Sequence[interleave.Writer]]:
    path = directory / "greengains.db"

    def make() -> list[interleave.Writer]:
        # unlink, never overwrite: the last schedule's connections may still be open
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.write_bytes(_start_file(scenario, profile))
        return [interleave.Writer(name, connect(path), op, timeout)
                for name, op, timeout in scenario.writers(profile)]

    return make


def judge(directory: Path, scenario: Scenario, profile: FixProfile,
          outcome: interleave.Interleaving) -> list[Found]:
    """Anomalies of one finished interleaving, with its step history."""
    conn = connect(directory / "greengains.db")
    try:
        anomalies = check_integrity(conn) + scenario.judge(conn, profile, outcome)
    finally:
        conn.close()
    history = tuple(f"{interleave.LETTERS[s.writer]}: {' '.join(s.statement.split())} -> "
                    f"{s.outcome}" for s in outcome.steps)
    return [Found(scenario.name, outcome.schedule, a, history) for a in anomalies]


def _outcomes(make: Callable[[], Sequence[interleave.Writer]], strategy: str, seed: int,
              max_schedules: int) -> Iterator[interleave.Interleaving]:
    if strategy == "exhaustive":
        yield from interleave.exhaustive(make, max_schedules=max_schedules)
        return
    search = interleave.random_schedule if strategy == "random" else interleave.pct_schedule
    for n in range(max_schedules):
        yield search(make(), seed + n)


def hunt(profile: FixProfile, *, budget_s: float = 10.0, scenarios: Sequence[str] = (),
         max_schedules: int = 1_000, strategy: str = "exhaustive",
         seed: int = 0) -> tuple[list[Found], int]:
    """Explore each scenario's schedules (every one, or `max_schedules` seeded random or
    PCT ones from `seed` on) within `budget_s`; returns (anomalies, schedules run)."""
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    unknown = [n for n in scenarios if n not in SCENARIOS]
    if unknown:
        raise UsageError(f"unknown race scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    chosen = [SCENARIOS[n] for n in scenarios] if scenarios else list(SCENARIOS.values())
    found: list[Found] = []
    explored = 0
    directory = Path(tempfile.mkdtemp(prefix="ggsim-hunt-"))
    try:
        for scenario in chosen:  # each scenario gets its share of the budget
            deadline = time.monotonic() + budget_s / len(chosen)
            for outcome in _outcomes(_make(directory, scenario, profile), strategy, seed,
                                     max_schedules):
                explored += 1
                found += judge(directory, scenario, profile, outcome)
                if time.monotonic() > deadline:
                    break
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return found, explored


@dataclass(frozen=True)
class Detection:
    """How long a search took to break an invariant (or gave up)."""

    found: Found | None
    schedules: int
    seconds: float


def until_found(profile: FixProfile, scenario_name: str, *, strategy: str = "random",
                seed: int = 0, max_schedules: int = 100_000,
                budget_s: float = 60.0) -> Detection:
    """Run one scenario's schedules (`strategy` from `seed`) until the first anomaly, at
    most `max_schedules` schedules or `budget_s` seconds: time to first detection."""
    if scenario_name not in SCENARIOS:
        raise UsageError(f"unknown race scenario {scenario_name!r}; known: "
                         f"{', '.join(SCENARIOS)}")
    scenario = SCENARIOS[scenario_name]
    directory = Path(tempfile.mkdtemp(prefix="ggsim-detect-"))
    start = time.perf_counter()
    runs = 0
    try:
        for outcome in _outcomes(_make(directory, scenario, profile), strategy, seed,
                                 max_schedules):
            runs += 1
            found = judge(directory, scenario, profile, outcome)
            if found:
                return Detection(found[0], runs, time.perf_counter() - start)
            if time.perf_counter() - start > budget_s:
                break
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return Detection(None, runs, time.perf_counter() - start)


def replay(profile: FixProfile, scenario_name: str, schedule: str) -> list[Found]:
    """Run one scenario with one schedule, exactly; its anomalies (with history)."""
    if scenario_name not in SCENARIOS:
        raise UsageError(f"unknown race scenario {scenario_name!r}; known: "
                         f"{', '.join(SCENARIOS)}")
    scenario = SCENARIOS[scenario_name]
    directory = Path(tempfile.mkdtemp(prefix="ggsim-replay-"))
    try:
        outcome = interleave.replay(_make(directory, scenario, profile)(), schedule)
        found = judge(directory, scenario, profile, outcome)
        return found or [Found(scenario.name, outcome.schedule,
                               Anomaly("none", "-", "no invariant broken"),
                               tuple(f"{interleave.LETTERS[s.writer]}: {s.outcome}"
                                     for s in outcome.steps))]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def matrix(budget_s: float = 30.0) -> dict[str, dict[str, bool]]:
    """For each scenario, under v2, each single fix and v3: does the race remain?"""
    profiles = [V2, *(only(f) for f in FIXES), V3]
    per = budget_s / len(profiles)
    table: dict[str, dict[str, bool]] = {s: {} for s in SCENARIOS}
    for profile in profiles:
        found, _ = hunt(profile, budget_s=per)
        hit = {f.scenario for f in found}
        for s in SCENARIOS:
            table[s][profile.name] = s in hit
    return table
