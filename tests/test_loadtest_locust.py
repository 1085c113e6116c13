"""Stock locust running the simulator's phones against the bundled backend (embedded
PostgreSQL, real HTTP on 127.0.0.1): one process, a planted gate failure, and a master
with two workers. Each run is bounded by locust's own `-t`."""

from __future__ import annotations

import csv
import json
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

LOCUSTFILE = str(Path(__file__).resolve().parents[1] / "loadtests" / "locustfile.py")
FAST = ["--speed", "600", "--only-summary", "--loglevel", "WARNING"]


def locust(*args: str, cwd: Path, timeout_s: float = 180,
           locustfile: str = LOCUSTFILE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "locust", "-f", locustfile, *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "summary.json").read_text())
    return data


def test_a_headless_run_delivers_every_upload_exactly_once_and_compare_reads_it(
        tmp_path: Path) -> None:
    done = locust("--headless", "-u", "6", "-r", "6", "-t", "15s", *FAST,
                  "--summary-dir", str(tmp_path / "locust-smoke"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    s = summary(tmp_path / "locust-smoke")
    verdict = s["verdict"]
    assert s["passed"] and s["fleet"]["phones"] == 6
    assert verdict["generated"] > 6 * 10  # 15 s at 600x: 2.5 simulated hours
    assert verdict["buckets"] == {"delivered": verdict["generated"]}
    assert verdict["anomalies"] == {}
    assert s["cluster"]["phones_are_0_to_n_minus_1"]
    assert s["cluster"]["phones_run_more_than_once"] == []
    assert {g["name"] for g in s["gates"] if g["passed"]} >= {"exactly once", "upload p99"}
    assert s["equivalent"]["real_fleet_phones"] == 6 * 600
    shown = subprocess.run([sys.executable, "-m", "simulator.cli", "compare", "--json",
                            "--out", str(tmp_path / "c.html"), str(tmp_path / "locust-smoke")],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout)["runs"][0]
    assert row["generated"] == verdict["generated"] and row["passed"] is True


def test_locusts_own_processes_csv_and_html_work_with_the_phones(tmp_path: Path) -> None:
    """`--processes 2` (locust forks a master and two workers), `--csv` and `--html`: the
    phones split 2/2 and are stored exactly once, and locust writes its own reports."""
    done = locust("--headless", "--processes", "2", "-u", "4", "-r", "4", "-t", "10s",
                  *FAST, "--csv", str(tmp_path / "stats"), "--html",
                  str(tmp_path / "report.html"), "--summary-dir", str(tmp_path / "s"),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    s = summary(tmp_path / "s")
    assert sorted(s["cluster"]["phones_per_worker"].values()) == [2, 2]
    assert s["cluster"]["phones_are_0_to_n_minus_1"]
    assert s["verdict"]["buckets"] == {"delivered": s["verdict"]["generated"]} and s["passed"]
    with open(tmp_path / "stats_stats.csv") as stats:
        uploads = next(r for r in csv.DictReader(stats) if r["Name"] == "/upload")
    assert int(uploads["Request Count"]) >= s["verdict"]["generated"] > 0
    assert "/daily-pot/upload" in (tmp_path / "report.html").read_text()


def test_a_broken_gate_sets_the_exit_code_and_says_which(tmp_path: Path) -> None:
    done = locust("--headless", "-u", "2", "-r", "2", "-t", "6s", *FAST,
                  "--gate-p50-ms", "0.001", "--summary-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    s = summary(tmp_path / "s")
    failed = [g for g in s["gates"] if not g["passed"]]
    assert [g["name"] for g in failed] == ["upload p50"] and not s["passed"]


def test_a_wrong_scenario_is_refused_by_name(tmp_path: Path) -> None:
    done = locust("--headless", "-u", "1", "-t", "3s", "--scenario", "no-such-scenario",
                  cwd=tmp_path, timeout_s=60)
    assert done.returncode != 0
    assert "no-such-scenario" in done.stderr


@pytest.mark.timeout(240)
def test_a_master_and_two_workers_split_the_phones_evenly_and_run_each_once(
        tmp_path: Path) -> None:
    port = str(free_port())
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--master", "--headless",
         "-u", "7", "-r", "7", "-t", "15s", "--expect-workers", "2",
         "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
         *FAST, "--summary-dir", str(tmp_path / "dist")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    # the second worker fetches the locustfile from the master (`-f -`), as one on
    # another machine would
    workers = [subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", locustfile, "--worker", "--master-host",
         "127.0.0.1", "--master-port", port], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True) for locustfile in (LOCUSTFILE, "-")]
    try:
        _, err = master.communicate(timeout=200)
        for w in workers:
            w.wait(timeout=60)
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    assert master.returncode == 0, err[-3000:]
    s = summary(tmp_path / "dist")
    spread = sorted(s["cluster"]["phones_per_worker"].values())
    assert len(spread) == 2 and sum(spread) == 7 and spread[1] - spread[0] <= 1
    assert s["cluster"]["phones_are_0_to_n_minus_1"]
    assert s["cluster"]["phones_run_more_than_once"] == []
    assert s["verdict"]["anomalies"] == {} and s["verdict"]["generated"] > 7 * 10
    assert s["verdict"]["buckets"] == {"delivered": s["verdict"]["generated"]}


def test_a_long_held_lock_on_one_phones_file_does_not_stall_the_other_users(
        tmp_path: Path) -> None:
    """With real files, a phone's statements run on native threads: while this test holds
    an exclusive lock on phone 0's file for 5 s (its statements wait out the app's busy
    timeout, then fail as on the phone), the other users go on uploading, and the run
    ends with every acknowledged upload stored once."""
    phones = tmp_path / "phones"
    prefix = tmp_path / "stats"
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "-u", "8", "-r", "8",
         "-t", "16s", *FAST, "--speed", "200", "--phone-sqlite", "file",
         "--phone-dir", str(phones),
         "--csv", str(prefix), "--csv-full-history", "--summary-dir", str(tmp_path / "s")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        target = phones / "phone-000000.db"
        for _ in range(300):
            if target.exists():
                break
            time.sleep(0.1)
        time.sleep(2)  # uploads under way
        holder = sqlite3.connect(target, isolation_level=None, timeout=10)
        holder.execute("BEGIN EXCLUSIVE")
        held_from = time.time()
        time.sleep(5)
        holder.execute("ROLLBACK")
        held_to = time.time()
        holder.close()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    with open(f"{prefix}_stats_history.csv") as history:
        rows = [(float(r["Timestamp"]), int(r["Total Request Count"]))
                for r in csv.DictReader(history) if r["Name"] == "/upload"]
    during = [count for at, count in rows if held_from + 1 <= at <= held_to - 1]
    # seven phones at 200x upload about 4.7 times a second: the others went on
    assert len(during) >= 2 and during[-1] - during[0] >= 5, (held_from, held_to, rows)
    s = summary(tmp_path / "s")
    assert s["verdict"]["anomalies"] == {}


RAMP = str(Path(LOCUSTFILE).with_name("ramp_to_break.py"))


def _ramp(tmp_path: Path, name: str, *options: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", RAMP, "--headless", "-t", "60s",
         "--scenario", "commuter-day", "--speed", "600", "--only-summary", "--loglevel",
         "WARNING", "--ramp-first-users", "2", "--ramp-step-users", "2", "--ramp-step-s", "4",
         "--ramp-settle-s", "1", "--summary-dir", str(tmp_path / name), *options],
        cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return summary(tmp_path / name)


def test_a_ramp_stops_at_the_step_that_breaks_by_capacitys_own_knee(tmp_path: Path) -> None:
    """Each step adds two phones (4 uploads/s at 600x); a p99 limit no real round trip
    meets breaks the first step, and the run stops by itself; a limit nothing reaches
    lets it run its steps out. Either way the knee is `capacity.slo.find_knee` over the
    steps the summary holds, and exactly once is judged."""
    from simulator.capacity.slo import SloThresholds, StepResult, find_knee

    broke = _ramp(tmp_path, "broke", "--ramp-p99-ms", "0.5")
    knee, steps = broke["ramp"]["knee"], broke["ramp"]["steps"]
    assert knee["held_rate_per_s"] is None and knee["cause"] == "p99 latency"
    assert knee["broke_rate_per_s"] == pytest.approx(4.0) and len(steps) == 1
    assert broke["performance"]["wall_s"] < 30  # it stopped itself, long before -t
    again = find_knee([StepResult(**s) for s in steps], SloThresholds(latency_ms_p99_max=0.5))
    assert again.broke_rate_per_s == knee["broke_rate_per_s"] and again.summary == knee["summary"]
    assert [g["name"] for g in broke["gates"]] == ["exactly once"] and broke["passed"]

    held = _ramp(tmp_path, "held", "--ramp-p99-ms", "60000", "--ramp-max-steps", "2")
    knee, steps = held["ramp"]["knee"], held["ramp"]["steps"]
    assert knee["broke_rate_per_s"] is None and knee["held_rate_per_s"] == pytest.approx(8.0)
    assert [round(s["offered_rate_per_s"]) for s in steps] == [4, 8]
    assert all(s["sent"] > 0 and s["latency_ms_p99"] > 0 for s in steps)


def test_phones_on_the_boundaries_arrive_as_a_herd_and_at_their_phases_spread_out(
        tmp_path: Path) -> None:
    """30 phones at 60x (a window every 5 s): aligned on the 5-minute boundaries, they
    all send within a second or two; at their own phases, spread over the window. Both
    deliver every upload exactly once."""
    peaks = {}
    for boundary in ("aligned", "phased"):
        done = locust("--headless", "--boundary", boundary, "--burst-users", "30",
                      "--burst-s", "16", "--speed", "60", "--only-summary", "--loglevel",
                      "WARNING", "--summary-dir", str(tmp_path / boundary), cwd=tmp_path,
                      locustfile=str(Path(LOCUSTFILE).with_name("boundary_burst.py")))
        assert done.returncode == 0, done.stderr[-3000:]
        s = summary(tmp_path / boundary)
        assert s["verdict"]["anomalies"] == {} and s["verdict"]["generated"] >= 30
        assert s["performance"]["boundary"] == boundary
        peaks[boundary] = s["performance"]["uploads_peak_per_s"]
    assert peaks["aligned"] >= 15 and peaks["aligned"] > 2 * peaks["phased"], peaks


def test_a_diurnal_day_follows_the_awake_share_and_loses_nothing_acknowledged(
        tmp_path: Path) -> None:
    """Ten phones from 04:00 to 24:00 UTC on a Tuesday at 3,600x (a simulated hour a
    second): one or two online before dawn, all ten in the afternoon, fewer again at
    night, as planned from the curve; phones leaving with batches still queued or due is
    not a loss, an acknowledged batch not stored once is."""
    scenario = tmp_path / "day.toml"
    scenario.write_text('name = "day"\nseed = 5\nstart = "2024-01-09T04:00:00Z"\n'
                        'duration_s = 72000\nspeed = 3600\nprofile = "v3"\n')
    done = locust("--headless", "--scenario", str(scenario), "--diurnal-phones", "10",
                  "--only-summary", "--loglevel", "WARNING",
                  "--summary-dir", str(tmp_path / "day"), cwd=tmp_path,
                  locustfile=str(Path(LOCUSTFILE).with_name("diurnal.py")))
    assert done.returncode == 0, done.stderr[-3000:]
    s = summary(tmp_path / "day")
    hours = s["diurnal"]["hours"]
    assert [h["hour"] for h in hours] == list(range(20))
    planned = [h["planned_users"] for h in hours]
    assert planned[0] == 1 and max(planned) == 10 and planned[-1] == 1, planned
    ended = [h for h in hours if h["running_users"] is not None]
    assert len(ended) == 20
    # locust follows the curve within the hour (its spawn rate: the fleet in an hour)
    near = sum(abs(h["running_users"] - h["planned_users"]) <= 1 for h in ended)
    assert near >= 16, hours
    busy = [h["uploads"] for h in ended if h["planned_users"] == 10]
    quiet = [h["uploads"] for h in ended if h["planned_users"] == 1]
    assert busy and quiet and min(busy) > 3 * max(quiet), hours
    assert s["verdict"]["anomalies"] == {}
    assert {g["name"] for g in s["gates"] if g["passed"]} >= {"exactly once"}
    assert s["cluster"]["phones_run_more_than_once"] == []


@pytest.mark.timeout(240)
def test_the_web_ui_shows_the_options_runs_with_its_form_and_refuses_a_second_test(
        tmp_path: Path) -> None:
    """Locust's web UI: our options are in its form (the database URL masked); a test
    started from the form as the UI sends it (every custom field as text, those with no
    default empty) runs with the values typed there and delivers exactly once; a second
    test in the same process is refused with the reason, leaving the first summary."""
    import re

    import httpx

    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-host", "127.0.0.1",
         "--web-port", str(port), *FAST, "--summary-dir", str(tmp_path / "ui")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        page = ""
        for _ in range(200):
            try:
                page = httpx.get(base + "/", timeout=2).text
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        found = re.search(r"window\.templateArgs = (\{.*\})", page)
        assert found, page[:2000]
        shown = json.loads(found.group(1))
        options = shown["extra_options"]
        assert {"scenario", "seed", "speed", "app_profile", "schema", "phones",
                "gate_p99_ms", "summary_dir"} <= set(options)
        assert options["database_url"]["is_secret"] and not options["seed"]["is_secret"]

        form = {name: "" if o["default_value"] is None else str(o["default_value"])
                for name, o in options.items()}
        form.update(user_count="3", spawn_rate="3", host=shown["host"], run_time="8s",
                    seed="3", speed="600")

        def run_to_the_end() -> None:
            started = httpx.post(base + "/swarm", data=form, timeout=30).json()
            assert started["success"], started
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                time.sleep(1)
                if httpx.get(base + "/stats/requests", timeout=10).json()["state"] in (
                        "stopped", "ready"):
                    return
            raise AssertionError("the test did not stop by itself")
        run_to_the_end()
        first = summary(tmp_path / "ui")
        assert first["seed"] == 3 and first["passed"] and first["fleet"]["phones"] == 3
        assert first["verdict"]["buckets"] == {"delivered": first["verdict"]["generated"]}
        assert first["verdict"]["generated"] > 3 * 3
        run_to_the_end()
        assert summary(tmp_path / "ui") == first  # the second test wrote nothing
    finally:
        ui.terminate()
        _, err = ui.communicate(timeout=60)
    assert "this locust process has run its test" in err, err[-3000:]
    assert ui.returncode == 0, err[-3000:]
