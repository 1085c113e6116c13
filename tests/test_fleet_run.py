"""Fleet runs against the real embedded stack (PostgreSQL, the backend over HTTP, SQLite
files per phone): a clean run passes, planted faults are caught and named, the verdict
replays, and `ggsim run` keeps its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fleet_helpers import quick

from simulator.instants import parse_instant
from simulator.run_command import replay, run_scenario


def test_a_clean_run_delivers_everything_and_replays(database_url: str,
                                                     tmp_path: Path) -> None:
    result, directory = run_scenario(quick(), database_url=database_url, report=tmp_path)
    verdict = result.verdict
    assert result.passed, result.thresholds
    assert verdict.generated == 6 * 6 and verdict.buckets == {"delivered": 36}
    assert verdict.anomaly_count == 0
    assert {p.name for p in directory.iterdir()} >= {"trace.jsonl.gz", "summary.json",
                                                    "report.html"}
    html = (directory / "report.html").read_text()
    assert "<svg" in html and "PASS" in html
    assert replay(str(directory / "trace.jsonl.gz"), json_output=True) == 0
    # the summary's lateness is in the threshold's unit (wall ms), not simulated ms
    late = json.loads((directory / "summary.json").read_text())["performance"][
        "dispatch_late_wall_ms"]["p99"]
    judged = result.thresholds["load_generator_keeps_up"][1]
    assert abs(late - float(judged.split()[2])) < 1, (late, judged)


def test_dual_writer_storms_fail_v2_naming_the_races(database_url: str,
                                                                 tmp_path: Path) -> None:
    storm = {"dual_writer_storms_per_hour": 30}
    v2, _ = run_scenario(quick(profile="v2", faults=storm), database_url=database_url,
                         report=tmp_path / "v2")
    assert not v2.passed
    labels = {kind.split()[0] for kind in v2.verdict.anomalies}
    assert {"R1", "R2", "R3", "R4"} <= labels, v2.verdict.anomalies


def test_v3_survives_the_same_storms(database_url: str, tmp_path: Path) -> None:
    v3, _ = run_scenario(quick(profile="v3", faults={"dual_writer_storms_per_hour": 30}),
                         database_url=database_url, report=tmp_path)
    assert v3.passed and v3.verdict.anomaly_count == 0, v3.verdict.anomalies


@pytest.mark.parametrize("schema", ["as-is", "recommended"])
def test_lost_responses_duplicate_uploads_only_without_idempotency(
        database_url: str, tmp_path: Path, schema: str) -> None:
    lossy = quick(schema=schema, network={"loss_probability": 0.3},
                  thresholds={"min_delivered_fraction": 0.5})
    result, _ = run_scenario(lossy, database_url=database_url, report=tmp_path)
    assert result.faults["lost_responses"] > 0
    duplicates = result.verdict.anomalies.get("duplicate upload", 0)
    if schema == "as-is":
        assert duplicates > 0 and not result.passed
    else:
        assert duplicates == 0 and result.verdict.buckets["delivered"] == 36


def test_ggsim_run_exit_codes(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "run", "no-such-scenario"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown scenario" in done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nspeed = -1\n')
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "bad.toml" in done.stderr and "$.speed" in done.stderr
    good = tmp_path / "good.toml"
    good.write_text('name = "good"\nduration_s = 900\nspeed = 900\nprofile = "v3"\n'
                    '[fleet]\nphones = 3\n')
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(good), "--json",
                           "--report", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["passed"] and summary["verdict"]["generated"] == 9
    assert Path(summary["trace"]).is_file()


def test_tracking_sessions_follow_the_phones_day(database_url: str, tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from simulator.fleet import stack as stacks
    from simulator.fleet.runner import FleetRun

    scenario = quick(profile="v2", fleet={"phones": 3, "full_phones": 3})
    stack = stacks.embedded(scenario, database_url)
    try:
        result = asyncio.run(FleetRun(scenario, stack, workdir=tmp_path).run())
    finally:
        stack.stop()
    assert result.passed, result.verdict.anomalies
    for db in sorted(tmp_path.glob("phone-*.db")):
        conn = sqlite3.connect(db)
        sessions = conn.execute("SELECT started_at, stopped_at, duration_ms FROM "
                                "tracking_sessions").fetchall()
        conn.close()
        assert sessions, db.name
        assert all(stop is not None and duration == stop - start
                   for start, stop, duration in sessions)


def test_the_same_seed_gives_the_same_faults_and_verdict(tmp_path: Path) -> None:
    """Fault draws are keyed by request identity and attempt, and judged at each
    operation's scheduled instant, not by timing: every fault at once, twice."""
    lossy = quick(profile="v3", network={
        "loss_probability": 0.3, "offline": [{"at_s": 900, "duration_s": 300, "share": 0.5}]},
        faults={"app_kill_probability": 0.2, "reboots_per_day": 24,
                "server_errors": [{"at_s": 300, "duration_s": 300, "probability": 0.5}],
                "doze": [{"at_s": 1200, "duration_s": 400, "share": 0.5}],
                "clock_jumps": [{"at_s": 600, "jump_s": -900, "share": 0.5}]},
        thresholds={"max_anomalies": 1000, "min_delivered_fraction": 0.1})
    first, _ = run_scenario(lossy, report=tmp_path / "a")
    second, _ = run_scenario(lossy, report=tmp_path / "b")
    assert first.faults["lost_responses"] > 0 and first.faults["app_kills"] > 0
    assert first.faults["server_errors"] > 0 and first.faults["offline"] > 0
    # everything but `reordered`: which of a phone's concurrent requests (a retry, a new
    # window) reaches the server first is real timing, counted, not judged
    verdicts = [{k: v for k, v in r.verdict.as_json().items() if k != "reordered"}
                for r in (first, second)]
    assert verdicts[0] == verdicts[1]
    assert first.faults == second.faults


def test_a_session_stop_is_scheduled_when_its_gap_is_known_not_when_the_next_loads(
        tmp_path: Path) -> None:
    """Pure schedule logic, without a run or a stack: a stop must be in the schedule once
    the loaded windows prove the gap, an hour ahead, so it is dispatched on time and
    `tracking` is right during the gap (a reboot there must not resume a session the user
    ended)."""
    from simulator.fleet import sessions
    from simulator.fleet.events import Event, SessionStart, SessionStop
    from simulator.fleet.phone import Phone
    from simulator.phone.uploader import Credentials

    scheduled: list[tuple[int, Event]] = []

    def schedule(at_ms: int, event: Event) -> None:
        scheduled.append((at_ms, event))
    hour = parse_instant(quick().start) // 3_600_000  # 08:00
    minute = 60_000
    early, late = (Phone(i, f"d{i}", f"u{i}", Credentials(f"d{i}", "s"), None,  # type: ignore[arg-type]
                         db=tmp_path / f"{i}.db") for i in range(2))
    at_8 = hour * 3_600_000
    sessions.track(early, at_8 + 5 * minute, schedule)
    sessions.track(early, at_8 + 10 * minute, schedule)
    sessions.track(late, at_8 + 63 * minute, schedule)  # the window that starts at 08:58
    sessions.end_sessions([early, late], at_8 + 65 * minute, schedule)  # hour 8 loaded
    stops = sorted((at, e.phone.index) for at, e in scheduled if isinstance(e, SessionStop))
    assert stops == [(at_8 + 10 * minute + 1, 0)]  # late's next window may come at 09:04
    sessions.track(early, at_8 + 185 * minute, schedule)  # 11:05: a new session
    sessions.track(early, at_8 + 225 * minute, schedule)  # 11:45: a gap inside one load
    starts = sorted(at for at, e in scheduled
                    if isinstance(e, SessionStart) and e.phone is early)
    assert starts == [at_8 + 5 * minute - 1, at_8 + 185 * minute - 1,
                      at_8 + 225 * minute - 1]
    early_stops = sorted(at for at, e in scheduled
                         if isinstance(e, SessionStop) and e.phone is early)
    assert early_stops == [at_8 + 10 * minute + 1, at_8 + 185 * minute + 1]
