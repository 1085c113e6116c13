"""The two sides as two OS processes on one file: bounded, and the file stays sound."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.drivers.processes import run_two_processes
from simulator.phone.profiles import V2, V3, FixProfile, only


@pytest.mark.parametrize("profile", [V2, V3, only("wal")], ids=lambda p: p.name)
def test_two_processes_keep_the_file_sound(tmp_path: Path, profile: FixProfile) -> None:
    result = run_two_processes(tmp_path / "gg.db", profile, seconds=1.5, max_ops=3000)
    assert result.integrity == "ok"
    assert result.flutter.operations > 50 and result.kotlin.operations > 20
    # every write a side believes it made is in the file (ids are unique per side)
    kotlin_rows = (result.channel.contributions_written if profile.single_writer
                   else result.kotlin.contributions_written)
    assert result.contributions == result.flutter.contributions_written + kotlin_rows
    if profile.single_writer:
        assert result.channel.operations == result.kotlin.operations  # nothing lost
        assert result.kotlin.journal_modes == ()  # Kotlin never opened the file
    # WAL persists in the file; rollback modes are per connection (a new one says DELETE)
    assert result.journal_mode == ("WAL" if profile.flutter_journal_mode == "WAL"
                                   else "DELETE")
