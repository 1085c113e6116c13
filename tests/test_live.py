"""`ggsim live` driven over real HTTP with Sensor Logger push messages built from the
project's fixture recording: its batches are the recording importer's, byte for byte, and
the zip it writes replays (`ggsim generate --from-recording`) to the same bytes, through
a malformed message, a duplicate, reordering, a gap and a late arrival."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from push_stream import body, push_messages

FIXTURE = Path(__file__).parents[1] / "fixtures" / "recordings" / "synthetic-android-walk.zip"
START = "2024-05-14T07:30:12.426Z"  # the fixture's first motion sample, to the ms
SEED = 5


class Live:
    """A running `ggsim live` and an HTTP client for it."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc, self.client = proc, httpx.Client(base_url=url, timeout=10)

    def push(self, message: dict[str, Any] | bytes) -> httpx.Response:
        content = message if isinstance(message, bytes) else body(message)
        return self.client.post("/push", content=content)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get("/status").json()
        return result


@contextmanager
def ggsim_live(tmp_path: Path, *extra: str) -> Iterator[Live]:
    """`ggsim live` on a free port, ending 1 s after the last message."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "live", "--port", "0", "--idle-timeout", "1",
         "--duration", "120", "--progress", "never", "--seed", str(SEED),
         "--out", str(tmp_path / "live.zip"), "--batches", str(tmp_path / "live.jsonl"),
         *extra], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+", first)
    assert found, first
    live = Live(proc, found.group(0))
    try:
        yield live
    finally:
        live.client.close()
        proc.wait(timeout=60)
        (tmp_path / "stderr.txt").write_text(first + proc.stderr.read())


def generate(recording: Path, out: Path) -> bytes:
    subprocess.run([sys.executable, "-m", "simulator.cli", "generate", "--from-recording",
                    str(recording), "--start", START, "--seed", str(SEED), "--out", str(out)],
                   check=True, capture_output=True)
    return out.read_bytes()


def test_live_batches_are_the_importers_through_bad_and_repeated_messages(
        tmp_path: Path) -> None:
    messages = push_messages(FIXTURE)
    with ggsim_live(tmp_path) as live:
        bad = live.push(b'{"messageId": 0, "sessionId": "s"')
        assert bad.status_code == 400 and "not JSON" in bad.json()["detail"]
        half = dict(messages[0], payload=[*messages[0]["payload"],
                                          {"name": "location", "time": messages[0]["payload"]
                                           [0]["time"], "values": {"latitude": 123.0,
                                                                   "longitude": 9.9}}])
        refused = live.push(half)
        assert refused.status_code == 422 and "latitude" in refused.json()["detail"]
        assert live.status()["samples"] == 0  # nothing of the refused message applied
        order = list(range(len(messages)))
        order[10], order[11] = order[11], order[10]  # overtaken on the way
        for i in order:
            assert live.push(messages[i]).json()["status"] == "accepted"
        again = live.push(messages[20])
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        other = live.push(dict(messages[0], deviceId="someone-else"))
        assert other.status_code == 409
        status = live.status()
    assert live.proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
    assert status["messages"] == {"accepted": 72, "duplicates": 1, "reordered": 1,
                                  "missing": 0, "late": 0, "joined_at": 0}
    assert status["refused"] == {"400": 1, "409": 1, "422": 1}
    built = (tmp_path / "live.jsonl").read_bytes()
    assert built.count(b"\n") == 3
    assert built == generate(FIXTURE, tmp_path / "importer.jsonl")
    assert built == generate(tmp_path / "live.zip", tmp_path / "replayed.jsonl")
    log = (tmp_path / "stderr.txt").read_text()
    assert f"--start {START} --seed {SEED}" in log and "batch 2 built: 12 readings" in log


def test_a_gap_and_a_late_message_are_counted_and_the_zip_replays_the_live_batches(
        tmp_path: Path) -> None:
    messages = push_messages(FIXTURE)
    lost, late = 15, 40  # message 40 holds samples of batch 1 (300..600 s)
    with ggsim_live(tmp_path, "--reorder-depth", "3", "--reorder-wait", "60") as live:
        for i, message in enumerate(messages):
            if i not in (lost, late):
                assert live.push(message).status_code == 200
        # 71 sent, 40 given up after 3 behind it; batch 1 was sealed by message 61
        assert live.push(messages[late]).json()["status"] == "late"
        status = live.status()
    assert live.proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
    assert status["messages"]["missing"] == 1 and status["messages"]["late"] == 1
    assert status["late_samples"] == len(messages[late]["payload"])
    built = (tmp_path / "live.jsonl").read_bytes()
    assert built != generate(FIXTURE, tmp_path / "importer.jsonl")  # samples were lost
    assert built == generate(tmp_path / "live.zip", tmp_path / "replayed.jsonl")
    import zipfile
    with zipfile.ZipFile(tmp_path / "live.zip") as zf:
        late_lines = zf.read("late-samples.jsonl").splitlines()
    assert len(late_lines) == len(messages[late]["payload"])


def test_ctrl_c_ends_the_session_and_writes_what_arrived(tmp_path: Path) -> None:
    messages = push_messages(FIXTURE)[:20]  # 200 s: one partial batch
    with ggsim_live(tmp_path, "--idle-timeout", "60") as live:
        for message in messages:
            assert live.push(message).status_code == 200
        live.proc.send_signal(signal.SIGINT)
    assert live.proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
    log = (tmp_path / "stderr.txt").read_text()
    assert "ended: stopped (signal)" in log and "batch 0 built: 20 readings" in log
    built = (tmp_path / "live.jsonl").read_bytes()
    assert built.count(b"\n") == 1
    assert built == generate(tmp_path / "live.zip", tmp_path / "replayed.jsonl")


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "simulator.cli", "live", "--port",
                               str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
