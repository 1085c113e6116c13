"""Malformed inputs (issue 16): scenario files, recordings, traces, report directories and
database URLs each get one clear error naming the place (the file and the line, the key,
the option or variable), never a traceback.

Most cases call the code that reads the input, which raises the `SimulatorError` `ggsim`
prints; a few per kind run `ggsim` itself to show the whole command: exit status 2, one
line on standard error, no traceback, nothing started. No case starts PostgreSQL: the
database cases point at a closed port on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from simulator import run_command
from simulator.backend.postgres import check_url, external_url, reachable_url
from simulator.errors import RecordingError, SimulatorError, UsageError
from simulator.fleet import scenario as sc
from simulator.loadtest.options import add_options, settings
from simulator.report.compare import load as load_report
from simulator.sensors.recording import load_recording

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "fixtures" / "recordings" / "synthetic-android-walk.zip"
EXIT_USAGE = 2


def ggsim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**environment, **(env or {})})


def error_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    """The message of a `ggsim` that refused its input: exit 2, no traceback, and standard
    error is exactly one line `ggsim COMMAND: error: ...`."""
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"ggsim {command}: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def closed_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (bound by no one once returned)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------------------------------
# Scenario files (`ggsim run FILE`): the file and the key, or the line


SCENARIOS: dict[str, tuple[bytes, str]] = {
    "not UTF-8": (b'name = "x"\ndescription = "caf\xe9"\n', r", line 2: not UTF-8 text$"),
    "invalid TOML": (b'name = "x"\nspeed = = 3\n',
                     r": not valid TOML: .*\(at line 2, column 9\)$"),
    "unknown key": (b'name = "x"\nsped = 3\n',
                    r": unknown key `sped` at the top level; did you mean `speed`\?$"),
    "unknown key in a table": (b'name = "x"\n[network]\nlos_probability = 0.1\n',
                               r": unknown key `los_probability` in `network`; "
                               r"did you mean `loss_probability`\?$"),
    "unknown key in an array of tables": (
        b'name = "x"\n[[faults.restarts]]\nat_s = 1\ndonw_s = 3\n',
        r": unknown key `donw_s` in `faults.restarts\[0\]`; did you mean `down_s`\?$"),
    "unknown key like no other": (b'name = "x"\nzzzqqq = 1\n',
                                  r": unknown key `zzzqqq` at the top level; "
                                  r"`ggsim scenario-schema` lists the keys$"),
    "wrong type": (b'name = "x"\nspeed = "fast"\n',
                   r": Expected `float`, got `str` - at `\$\.speed`$"),
    "wrong type in a table": (b'name = "x"\n[fleet]\nphones = "ten"\n',
                              r": Expected `int`, got `str` - at `\$\.fleet\.phones`$"),
    "negative duration": (b'name = "x"\nduration_s = -5\n',
                          r": Expected `float` > 0\.0 - at `\$\.duration_s`$"),
    "seed too big": (b'name = "x"\nseed = 9223372036854775808\n',
                     r": Expected `int` <= 9223372036854775807 - at `\$\.seed`$"),
    "negative seed": (b'name = "x"\nseed = -1\n', r": Expected `int` >= 0 - at `\$\.seed`$"),
    "unknown profile": (b'name = "x"\nprofile = "v9"\n', r": unknown profile 'v9'; use v2"),
    "start not an instant": (b'name = "x"\nstart = "garbage"\n',
                             r": start must be an ISO-8601 instant like .*'garbage'$"),
    "empty file": (b"", r": empty scenario \(it needs at least name = \"...\"\)$"),
    "no name": (b'seed = 3\n', r": Object missing required field `name`$"),
}


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_a_bad_scenario_file_names_the_file_and_the_key(tmp_path: Path, case: str) -> None:
    text, message = SCENARIOS[case]
    path = tmp_path / "bad.toml"
    path.write_bytes(text)
    with pytest.raises(UsageError, match="^" + re.escape(str(path)) + message):
        sc.load(str(path))


@pytest.mark.parametrize("name", ["missing.toml", "a-directory.toml"])
def test_a_missing_scenario_file_is_named(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-directory.toml").mkdir()
    path = tmp_path / name
    with pytest.raises(UsageError, match=f"^{re.escape(str(path))}: no such scenario file$"):
        sc.load(str(path))


@pytest.mark.parametrize("case", ["not UTF-8", "unknown key"])
def test_ggsim_run_refuses_a_bad_scenario_before_starting_anything(
        tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(SCENARIOS[case][0])
    report = tmp_path / "report"
    line = error_line(ggsim("run", str(path), "--report", str(report)), "run")
    assert re.search(re.escape(str(path)) + SCENARIOS[case][1], line), line
    assert not report.exists()


# ---------------------------------------------------------------------------------------
# Recordings (`ggsim generate --from-recording ZIP`): the zip, the member and the line


def _members() -> dict[str, bytes]:
    with zipfile.ZipFile(RECORDING) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(path: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    files = _members()
    change(files)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def _set(name: str, line: int, edit: Callable[[str], str]) -> Callable[[dict[str, bytes]], None]:
    """Change line `line` (1-based) of member `name` of the export."""
    def change(files: dict[str, bytes]) -> None:
        lines = files[name].split(b"\n")
        lines[line - 1] = edit(lines[line - 1].decode()).encode("latin-1")
        files[name] = b"\n".join(lines)
    return change


def _cut(files: dict[str, bytes]) -> None:
    files["Gyroscope.csv"] = files["Gyroscope.csv"][:-20]  # mid-row, no line end


def _header_only(files: dict[str, bytes]) -> None:
    files["TotalAcceleration.csv"] = files["TotalAcceleration.csv"].split(b"\n")[0] + b"\n"


def _empty_member(files: dict[str, bytes]) -> None:
    files["Battery.csv"] = b""


def _replace_cell(field: int, value: str) -> Callable[[str], str]:
    def edit(row: str) -> str:
        cells = row.split(",")
        cells[field] = value
        return ",".join(cells)
    return edit


RECORDINGS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing file": (lambda path: None, r": cannot open: No such file or directory$"),
    "empty file": (lambda path: path.write_bytes(b""), r": not a zip archive"),
    "not a zip": (lambda path: path.write_bytes(b"time,x,y,z\n1,2,3,4\n"),
                  r": not a zip archive"),
    "truncated zip": (lambda path: path.write_bytes(RECORDING.read_bytes()[:50_000]),
                      r": not a zip archive"),
    "truncated file in the zip": (lambda path: _zip(path, _cut),
                                  r": Gyroscope\.csv, line \d+: truncated last line"),
    "not UTF-8": (lambda path: _zip(path, _set("Light.csv", 3, lambda row: row + "\xff")),
                  r": Light\.csv, line 3: not UTF-8 text$"),
    "wrong column count": (lambda path: _zip(path, _set(
        "Location.csv", 7, lambda row: row.rsplit(",", 1)[0])),
        r": Location\.csv, line 7: 10 fields, expected 11 fields as in the header$"),
    "value not a number": (lambda path: _zip(path, _set(
        "TotalAcceleration.csv", 10, _replace_cell(3, "9.8O"))),
        r": TotalAcceleration\.csv, line 10: column 'y': '9\.8O' is not a number$"),
    "time not an integer": (lambda path: _zip(path, _set(
        "Barometer.csv", 5, _replace_cell(0, "soon"))),
        r": Barometer\.csv, line 5: column 'time': 'soon' is not an integer"),
    "header only": (lambda path: _zip(path, _header_only),
                    r": TotalAcceleration\.csv: no samples$"),
    "empty file in the zip": (lambda path: _zip(path, _empty_member),
                              r": Battery\.csv: empty file \(no header line\)$"),
}


@pytest.mark.parametrize("case", sorted(RECORDINGS))
def test_a_bad_recording_names_the_file_and_the_line(tmp_path: Path, case: str) -> None:
    make, message = RECORDINGS[case]
    path = tmp_path / "export.zip"
    make(path)
    with pytest.raises(RecordingError, match="^" + re.escape(str(path)) + message):
        load_recording(path)


def test_a_damaged_zip_member_is_named(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    _zip(path, lambda files: None)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("TotalAcceleration.csv")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"export\.zip: TotalAcceleration\.csv: cannot "
                                             r"read from the zip"):
        load_recording(path)


@pytest.mark.parametrize("case", ["truncated file in the zip", "empty file"])
def test_ggsim_generate_refuses_a_bad_recording(tmp_path: Path, case: str) -> None:
    make, message = RECORDINGS[case]
    path = tmp_path / "export.zip"
    make(path)
    proc = ggsim("generate", "--from-recording", str(path), "--out", str(tmp_path / "o"))
    line = error_line(proc, "generate")
    assert re.search(re.escape(str(path)) + message, line), line


# ---------------------------------------------------------------------------------------
# Traces (`ggsim replay TRACE`): the file and the line, all read before anything runs


def _header(**changes: Any) -> bytes:
    scenario = msgspec.to_builtins(sc.load("smoke"))
    return orjson.dumps({"kind": "header", "version": "0", "scenario": scenario,
                         **changes}) + b"\n"


EVENT = orjson.dumps({"t": 1, "phone": 0, "event": "upload"}) + b"\n"
FOOTER = orjson.dumps({"kind": "footer", "passed": True, "verdict": {
    "generated": 1, "buckets": {}, "anomalies": {}}}) + b"\n"


def _many_events() -> bytes:
    """Events that do not compress to nothing, so a cut lands well after the header."""
    return b"".join(orjson.dumps({"t": i * 7919 % 100_003, "phone": i % 97, "event": "upload",
                                  "batch": f"{i * 2654435761 % 2**32:08x}"}) + b"\n"
                    for i in range(5000))


def _gzip(*lines: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(gzip.compress(b"".join(lines)))


def _cut_gzip(path: Path) -> None:
    whole = gzip.compress(_header() + _many_events() + FOOTER)
    path.write_bytes(whole[: len(whole) // 2])


def _bad_crc(path: Path) -> None:
    whole = bytearray(gzip.compress(_header() + EVENT))
    whole[-6] ^= 0xFF  # the CRC-32 of the trailer
    path.write_bytes(bytes(whole))


TRACES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing file": (lambda path: None, r": no such trace file$"),
    "empty file": (lambda path: path.write_bytes(b""), r": not a ggsim trace \(an empty file"),
    "not gzip": (lambda path: path.write_bytes(_header() + EVENT + FOOTER),
                 r": not a ggsim trace \(not gzip"),
    "no lines": (_gzip(), r": not a ggsim trace \(no header line\)$"),
    "gzip cut off": (_cut_gzip, r", line \d+: the gzip stream is cut off"),
    "gzip CRC wrong": (_bad_crc, r", line 3: damaged gzip data \(CRC check failed"),
    "a line not JSON": (_gzip(_header(), EVENT, b"{not json\n", FOOTER),
                        r", line 3: not JSON \("),
    "a line not an object": (_gzip(_header(), b"[1, 2]\n", FOOTER),
                             r", line 2: not a JSON object$"),
    "no header": (_gzip(EVENT, FOOTER), r", line 1: not a ggsim trace \(the first line is "
                                        r"not its header\)$"),
    "header without scenario": (_gzip(_header(scenario=None), EVENT, FOOTER),
                                r", line 1: the header has no scenario"),
    "header with a bad scenario": (_gzip(_header(scenario={"name": "x", "speed": "fast"}),
                                         FOOTER),
                                   r", line 1 \(header\): Expected `float`, got `str` - at "
                                   r"`\$\.speed`$"),
    "no footer": (_gzip(_header(), EVENT), r": the trace has no verdict \(the run did not "
                                           r"finish\)$"),
    "footer without verdict": (_gzip(_header(), EVENT, b'{"kind": "footer"}\n'),
                               r", line 3: the footer's verdict does not have generated, "
                               r"buckets, anomalies"),
}


@pytest.mark.parametrize("case", sorted(TRACES))
def test_a_bad_trace_names_the_file_and_the_line(
        tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the replay started a run")

    monkeypatch.setattr(run_command, "run_scenario", started)
    make, message = TRACES[case]
    path = tmp_path / "trace.jsonl.gz"
    make(path)
    with pytest.raises(UsageError, match="^" + re.escape(str(path)) + message):
        run_command.replay(str(path), json_output=False)


@pytest.mark.parametrize("case", ["a line not JSON", "gzip cut off"])
def test_ggsim_replay_refuses_a_bad_trace(tmp_path: Path, case: str) -> None:
    make, message = TRACES[case]
    path = tmp_path / "trace.jsonl.gz"
    make(path)
    line = error_line(ggsim("replay", str(path)), "replay")
    assert re.search(re.escape(str(path)) + message, line), line
    assert not (tmp_path / "replay").exists()  # no run started


# ---------------------------------------------------------------------------------------
# Report directories (`ggsim compare DIR ...`): the directory or the file and the key


SUMMARY = {"scenario": "x", "passed": True, "verdict": {}, "performance": {}}


def _report(summary: Any = None, timeline: bytes | None = None) -> Callable[[Path], None]:
    def make(directory: Path) -> None:
        directory.mkdir()
        if summary is not None:
            data = summary if isinstance(summary, bytes) else orjson.dumps(summary)
            (directory / "summary.json").write_bytes(data)
        if timeline is not None:
            (directory / "timeline.json").write_bytes(timeline)
    return make


REPORTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing directory": (lambda directory: None, r": no such report directory$"),
    "no summary": (_report(), r": no summary\.json \(not a ggsim run report directory"),
    "summary not JSON": (_report(b"{"), r"/summary\.json: not JSON \("),
    "summary without a key": (_report({"scenario": "x"}),
                              r"/summary\.json: no 'passed' \(not a ggsim run summary\)$"),
    "verdict not an object": (_report({**SUMMARY, "verdict": 3}),
                              r"/summary\.json: 'verdict' is not an object"),
    "latency not an object": (_report({**SUMMARY, "performance": {"upload_latency_ms": 3}}),
                              r"/summary\.json: 'performance\.upload_latency_ms' is not an "
                              r"object"),
    "anomaly count not a number": (_report({**SUMMARY, "verdict": {"anomalies": {"a": "x"}}}),
                                   r"/summary\.json: 'verdict\.anomalies' holds a count "
                                   r"that is not a number$"),
    "timeline not JSON": (_report(SUMMARY, b"[1"), r"/timeline\.json: not JSON \("),
    "timeline without minutes": (_report(SUMMARY, b'{"minute": 3}'),
                                 r"/timeline\.json: no 'minute' list"),
}


@pytest.mark.parametrize("case", sorted(REPORTS))
def test_a_bad_report_directory_is_named(tmp_path: Path, case: str) -> None:
    make, message = REPORTS[case]
    directory = tmp_path / "run"
    make(directory)
    with pytest.raises(UsageError, match="^" + re.escape(str(directory)) + message):
        load_report(directory)


def test_ggsim_compare_refuses_a_bad_summary(tmp_path: Path) -> None:
    make, message = REPORTS["verdict not an object"]
    make(tmp_path / "run")
    line = error_line(ggsim("compare", str(tmp_path / "run"), "--out",
                            str(tmp_path / "c.html")), "compare")
    assert re.search(re.escape(str(tmp_path / "run")) + message, line), line


# ---------------------------------------------------------------------------------------
# Database URLs (`--database-url`, `DATABASE_URL`): the option or variable, what is wrong


URLS = {
    "not a url": r"expected a PostgreSQL URL postgresql://user:password@host:port/database, "
                 r"got no scheme in 'not a url'$",
    "postgres://127.0.0.1:99999/db": r"bad port in 'postgres://127\.0\.0\.1:99999/db' "
                                     r"\(Port out of range 0-65535\)$",
    "postgresql://127.0.0.1:abc/db": r"bad port in .*\(Port could not be cast",
    "mysql://user:secret@127.0.0.1/db": r"expected a PostgreSQL URL .*, got scheme 'mysql' in "
                                        r"'mysql://user:\*\*\*@127\.0\.0\.1/db'$",
    "postgresql://[::1/db": r"not a URL \(Invalid IPv6 URL\)",
}


@pytest.mark.parametrize("url", sorted(URLS))
def test_a_malformed_database_url_names_the_option(url: str) -> None:
    with pytest.raises(UsageError, match="^--database-url: " + URLS[url]):
        check_url(url)


def test_the_variable_is_named_when_the_url_comes_from_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://127.0.0.1/db")
    with pytest.raises(UsageError, match=r"^DATABASE_URL: expected a PostgreSQL URL"):
        external_url(None)
    with pytest.raises(UsageError, match=r"^--database-url: bad port"):
        external_url("postgresql://127.0.0.1:99999/db")  # the option wins


def test_a_database_url_where_nothing_listens(closed_port: int) -> None:
    url = f"postgresql://user:secret@127.0.0.1:{closed_port}/db"
    with pytest.raises(SimulatorError) as info:
        reachable_url(url)
    message = str(info.value)
    assert message.startswith(f"--database-url: cannot connect to PostgreSQL at "
                              f"postgresql://user:***@127.0.0.1:{closed_port}/db ("), message
    assert "secret" not in message and not isinstance(info.value, UsageError)


def test_the_load_test_refuses_a_malformed_database_url() -> None:
    parser = argparse.ArgumentParser()
    add_options(parser)
    with pytest.raises(UsageError, match=r"^--database-url: expected a PostgreSQL URL"):
        settings(parser.parse_args(["--database-url", "mysql://127.0.0.1/db"]))


def test_ggsim_serve_refuses_a_malformed_database_url() -> None:
    line = error_line(ggsim("serve", "--port", "0", "--database-url",
                            "postgres://127.0.0.1:99999/db"), "serve")
    assert "--database-url: bad port" in line


def test_ggsim_serve_refuses_a_database_url_where_nothing_listens(closed_port: int) -> None:
    url = f"postgresql://127.0.0.1:{closed_port}/db"
    line = error_line(ggsim("serve", "--port", "0", "--database-url", url), "serve")
    assert f"--database-url: cannot connect to PostgreSQL at {url}" in line


def test_ggsim_serve_names_database_url_from_the_environment(closed_port: int) -> None:
    proc = ggsim("serve", "--port", "0",
                 env={"DATABASE_URL": f"postgresql://127.0.0.1:{closed_port}/db"})
    assert "DATABASE_URL: cannot connect to PostgreSQL at" in error_line(proc, "serve")


def test_ggsim_run_refuses_a_dead_database_before_the_run(
        tmp_path: Path, closed_port: int) -> None:
    proc = ggsim("run", "smoke", "--report", str(tmp_path / "r"), "--database-url",
                 f"postgresql://127.0.0.1:{closed_port}/db")
    assert "--database-url: cannot connect to PostgreSQL at" in error_line(proc, "run")
    assert not (tmp_path / "r" / "trace.jsonl.gz").exists()


def test_ggsim_run_with_a_target_checks_its_database_url_at_the_start(
        tmp_path: Path, closed_port: int) -> None:
    proc = ggsim("run", "smoke", "--report", str(tmp_path / "r"), "--target",
                 f"http://127.0.0.1:{closed_port}", "--database-url", "mysql://127.0.0.1/db")
    assert "--database-url: expected a PostgreSQL URL" in error_line(proc, "run")


def test_ggsim_capacity_checks_the_database_url_before_measuring(
        tmp_path: Path, closed_port: int) -> None:
    proc = ggsim("capacity", "--report", str(tmp_path / "c"), "--database-url",
                 f"postgresql://127.0.0.1:{closed_port}/db")
    assert "--database-url: cannot connect to PostgreSQL at" in error_line(proc, "capacity")
    assert not (tmp_path / "c").exists()
