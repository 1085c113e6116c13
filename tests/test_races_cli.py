"""`ggsim races`: exit status, replay, JSON and the fix matrix."""

from __future__ import annotations

import json

import pytest

from simulator.cli import main


def test_v2_has_races_and_v3_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["races", "--profile", "v2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    labels = {r["label"] for r in report["races"]}
    assert labels == {"R1", "R2", "R3", "R4", "R5"}
    assert all(r["replay"].startswith("ggsim races --profile v2 --replay ")
               for r in report["races"])
    assert main(["races", "--profile", "v3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["races"] == []


def test_replay_reproduces_one_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["races", "--replay", "double-stop:abab", "--json"]) == 1
    race = json.loads(capsys.readouterr().out)["races"][0]
    assert (race["label"], race["schedule"]) == ("R2", "abab")
    assert main(["races", "--replay", "double-stop:aab"]) == 0  # one after the other


def test_a_single_fix_and_the_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["races", "--fix", "transactions", "--json"]) == 1  # R1 and R3 remain
    found = json.loads(capsys.readouterr().out)["races"]
    assert {r["label"] for r in found} == {"R1", "R3"}
    assert all(r["replay"].startswith("ggsim races --profile v2 --fix transactions --replay ")
               for r in found)
    assert main(["races", "--matrix", "--json", "--budget", "20"]) == 0
    matrix = json.loads(capsys.readouterr().out)["matrix"]
    assert matrix["double-stop"]["v2+transactions"] is False
    assert matrix["same-id-save"]["v2"] is True and matrix["same-id-save"]["v3"] is False
    assert matrix["stale-pot"]["v2"] is True and matrix["stale-pot"]["v2+pot_versioning"] is False
    assert matrix["torn-complete"]["v2"] is True
    assert matrix["torn-complete"]["v2+transactions"] is False


@pytest.mark.parametrize("width", [80, 120])
def test_the_matrix_fits_the_terminal_whole(width: int, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.checks.hunt import SCENARIOS
    from simulator.phone.profiles import FIXES

    monkeypatch.setenv("COLUMNS", str(width))  # rich reads the terminal width from COLUMNS
    assert main(["races", "--matrix", "--budget", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "…" not in "\n".join(lines)  # no cell, header or title cut
    assert max(len(line) for line in lines) <= width
    for name, scenario in SCENARIOS.items():  # code and name together, on one line
        assert any(f"{scenario.label} {name}" in line for line in lines), name
        assert any(f" {scenario.label} " in line for line in lines[:4]), scenario.label
    rows = {cells[0]: cells[1:] for line in lines
            if len(cells := [c.strip() for c in line.strip("│").split("│")]) > 1}
    assert set(rows) >= {"v2", "v3", *(f"v2+{fix}" for fix in FIXES)}
    assert rows["v2+transactions"] == ["present", "removed", "present", "removed", "removed"]
    assert rows["v2+pot_versioning"] == ["present", "present", "removed", "present", "present"]
    assert rows["v3"] == ["removed"] * 5


def test_crash_mode_reports_torn_operations_under_v2_and_none_under_v3(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["races", "--crash", "6", "--profile", "v3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rounds"] == 6 and report["rows"] > 0
    assert report["corruption"] == report["lost_writes"] == report["torn_operations"] == []
    assert main(["races", "--crash", "6", "--journal-modes", "wal,truncate", "--profile", "v3",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "v3[WAL,TRUNCATE]"


@pytest.mark.parametrize("argv, message", [
    (["races", "--journal-modes", "WAL"], "FLUTTER,KOTLIN"),
    (["races", "--journal-modes", "WAL,MEMORYX", "--crash", "1"], "kotlin_journal_mode"),
    (["races", "--profile", "v9"], "unknown profile"),
    (["races", "--fix", "magic"], "known fixes"),
    (["races", "--replay", "nowhere:ab"], "unknown race scenario"),
    (["races", "--replay", "double-stop"], "SCENARIO:SCHEDULE"),
    (["races", "--replay", "double-stop:abz"], "names no writer"),
])
def test_usage_errors_exit_2(argv: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
