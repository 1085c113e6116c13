"""`ggsim generate` end to end through the console entry point."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main


def test_generate_writes_time_ordered_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "fleet.jsonl"
    assert main(["generate", "--phones", "4", "--hours", "1", "--seed", "3",
                 "--out", str(out)]) == 0
    lines = out.read_bytes().splitlines()
    assert 40 <= len(lines) <= 48  # 12 windows per phone-hour, a few lost to app kills
    envelopes = [json.loads(line) for line in lines]
    starts = [e["payload"]["timestamp"] for e in envelopes]
    assert len({e["device_id"] for e in envelopes}) == 4
    assert all(e["payload"]["summary"]["count"] == len(e["payload"]["batch"])
               for e in envelopes)
    assert all(s > 1_704_067_000_000 for s in starts)


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    args = ["generate", "--phones", "3", "--hours", "0.5", "--seed", "11"]
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(gzip.decompress(a.read_bytes()).splitlines()) == 18


def test_stdout_is_the_default_output() -> None:
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "generate", "--phones", "1",
                           "--hours", "0.25"], capture_output=True, check=True)
    assert len(proc.stdout.splitlines()) == 3
    assert b"seed=0" in proc.stderr


@pytest.mark.parametrize("argv, message", [
    (["generate", "--phones", "0"], "--phones"),
    (["generate", "--hours", "-1"], "--hours"),
    (["generate", "--seed", "x"], "seed"),
    (["generate", "--start", "yesterday"], "ISO-8601"),
    (["generate", "--start", "2019-12-31T00:00:00Z"], "2020-01-01"),
    (["generate", "--number-format", "float16"], "number-format"),
    (["generate", "--out", "/nonexistent/dir/x.jsonl"], "does not exist"),
    (["generate", "--imperfection", "missing=0.1"], "missing_probability"),
    (["generate", "--imperfection", "jitter_ms=fast"], "not a number"),
    (["generate", "--imperfection", "missing_probability=0.9"], "at most 0.5"),
])
def test_bad_arguments_exit_2_with_a_specific_message(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_imperfection_settings_change_the_stream(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "clean.jsonl", tmp_path / "dirty.jsonl"
    base = ["generate", "--phones", "3", "--hours", "1", "--seed", "4", "--no-imperfections"]
    assert main([*base, "--out", str(clean)]) == 0
    assert main([*base, "--imperfection", "missing_probability=0.3", "--out", str(dirty)]) == 0
    counts = [json.loads(line)["payload"]["summary"]["count"]
              for line in dirty.read_bytes().splitlines()]
    assert all(json.loads(line)["payload"]["summary"]["count"] == 30
               for line in clean.read_bytes().splitlines())
    assert sum(counts) < 0.8 * 30 * len(counts)


def test_progress_goes_to_stderr_never_into_the_output() -> None:
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "generate", "--phones", "2",
                           "--hours", "0.5", "--progress", "always"],
                          capture_output=True, check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == 12
    assert all(json.loads(line)["payload"] for line in lines)
    assert b"generating" in proc.stderr


def test_a_failed_run_leaves_no_file_behind(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.sensors.parallel as parallel

    def broken(*args: object, **kwargs: object) -> object:
        yield [memoryview(b'{"half":\n')]
        raise OSError("disk full")

    monkeypatch.setattr(parallel, "generate_lines", broken)
    out = tmp_path / "fleet.jsonl"
    assert main(["generate", "--out", str(out)]) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["generate", "--from-recording", "x.zip", "--phones", "5"], "--phones has no effect with"),
    (["generate", "--speed", "2"], "--speed has no effect without"),
    (["generate", "--hours", "inf"], "finite"),
    (["generate", "--imperfection", "jitter_ms=nan"], "finite"),
    (["generate", "--out", "/"], "is a directory"),
])
def test_more_bad_arguments(argv: list[str], message: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_seed_with_a_leading_zero_is_decimal(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["generate", "--seed", "010", "--hours", "0.25", "--out", str(a)]) == 0
    assert main(["generate", "--seed", "10", "--hours", "0.25", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_output_to_a_device_or_fifo_is_written_in_place(tmp_path: Path) -> None:
    """`--out /dev/null` once replaced /dev/null with a regular file (a partial file
    renamed over it, as root). A path that is not a regular file is written directly."""
    import os
    import stat
    import threading

    from simulator.sensors.output import open_output

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    with open_output(str(fifo)) as sink:
        sink.write(b"envelope\n")
    reader.join(10)
    assert received == [b"envelope\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not a file renamed over it
    assert not (tmp_path / "pipe.partial").exists()
