"""Malformed inputs (issue 16): scenario files, recordings, traces, report directories and
database URLs each get one clear error naming the place (the file and the line, the key,
the option or variable), never a traceback.

Most cases call the code that reads the input, which raises the `SimulatorError` `ggsim`
prints; a few per kind run `ggsim` itself to show the whole command: exit status 2, one
line on standard error, no traceback, nothing started. No case starts PostgreSQL: the
database cases point at a closed port on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.errors import UsageError
from simulator.fleet import scenario as sc

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
