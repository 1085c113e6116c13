"""SIGKILL either side at random moments: the file stays sound and nothing committed is
lost, under v2 and with WAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.drivers.crash import crash_loop
from simulator.phone.profiles import V2, FixProfile, only


@pytest.mark.parametrize("profile", [V2, only("wal")], ids=lambda p: p.name)
def test_killed_processes_leave_a_sound_file_and_lose_nothing_committed(
        tmp_path: Path, profile: FixProfile) -> None:
    report = crash_loop(tmp_path, profile, rounds=8, seed=3)
    assert report.rounds == 8 and sum(report.kills.values()) == 8
    assert report.integrity_failures == []
    assert report.lost == []
    assert report.rows > 100  # the sides really wrote between the kills
