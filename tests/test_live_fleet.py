"""`ggsim run --live`: a real phone's push stream (here built from the fixture recording,
recorded "until five minutes ago") joins a fleet run as one more fully simulated phone:
its batches go through the app core (its own SQLite file, queue and pot) to the backend
and into the verdict like any phone's; the run refuses a speed other than 1.

At speed 1 a run ends only when the windows its simulated phones began during it have
closed and been uploaded: up to 5 minutes after its duration, depending on the time of
day the run starts (it starts now), since the personas' activity does. Hence the long
timeouts (CI at 08:00 waited for a commuter's window; a run at 09:00 did not)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from push_stream import body, push_messages

FIXTURE = Path(__file__).parents[1] / "fixtures" / "recordings" / "synthetic-android-walk.zip"

SCENARIO = """
name = "live-test"
seed = 23
start = "2024-01-08T07:00:00Z"
duration_s = 15
speed = 1
profile = "v3"
schema = "recommended"

[fleet]
phones = 4
full_phones = 2
"""


def ggsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "simulator.cli", *args]


@pytest.mark.slow
def test_a_live_phone_uploads_through_the_app_core_and_is_in_the_verdict(
        tmp_path: Path, database_url: str) -> None:
    (tmp_path / "live.toml").write_text(SCENARIO)
    proc = subprocess.Popen(
        ggsim("run", str(tmp_path / "live.toml"), "--live", "--live-port", "0",
              "--live-out", str(tmp_path / "walk.zip"), "--database-url", database_url,
              "--report", str(tmp_path / "report"), "--json", "--progress", "never"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+/push", first)
    assert found and "the run starts now" in first, first
    # the walk ended five minutes ago: every window has closed, as on a phone
    messages = push_messages(FIXTURE, ends_at_ns=(int(time.time()) - 300) * 10**9)
    with httpx.Client(timeout=10) as client:
        for message in messages:
            response = client.post(found.group(0), content=body(message))
            assert response.status_code == 200, response.text
    out, err = proc.communicate(timeout=540)
    assert proc.returncode == 0, first + err
    summary = orjson.loads(out)
    live = summary["live"]
    assert (live["phone"], live["device_id_pushed"]) == (4, "phone-1")
    assert live["messages"]["accepted"] == len(messages) and live["batches_sealed"] == 3
    assert live["outcomes"] == {"0": "saved", "1": "saved", "2": "saved"}, live
    verdict = summary["verdict"]
    assert verdict["generated"] >= 3 and verdict["anomalies"] == {}, verdict
    assert "upload of batch 2: saved" in err and "batch 0 built: 30 readings" in err
    assert (tmp_path / "walk.zip").stat().st_size > 0


def test_a_live_run_at_another_speed_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fast.toml").write_text(SCENARIO.replace("speed = 1", "speed = 60"))
    done = subprocess.run(ggsim("run", str(tmp_path / "fast.toml"), "--live"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--live needs speed 1, and live-test runs at 60x" in done.stderr, done.stderr
    done = subprocess.run(ggsim("run", str(tmp_path / "fast.toml"), "--live-port", "9"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--live-port has no effect without --live" in done.stderr


@pytest.mark.slow
def test_a_live_run_whose_phone_never_connects_ends_cleanly(tmp_path: Path,
                                                            database_url: str) -> None:
    (tmp_path / "live.toml").write_text(SCENARIO.replace("duration_s = 15", "duration_s = 3"))
    done = subprocess.run(
        ggsim("run", str(tmp_path / "live.toml"), "--live", "--live-port", "0",
              "--live-out", str(tmp_path / "walk.zip"), "--database-url", database_url,
              "--report", str(tmp_path / "report"), "--json", "--progress", "never"),
        capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr
    live = orjson.loads(done.stdout)["live"]
    assert live["messages"]["accepted"] == 0 and live["batches_sealed"] == 0
    assert live["outcomes"] == {} and not (tmp_path / "walk.zip").exists()
