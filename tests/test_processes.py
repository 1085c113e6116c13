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


@pytest.mark.parametrize("flutter_mode, kotlin_mode", [("WAL", "TRUNCATE"), ("TRUNCATE", "WAL")])
def test_mixed_journal_modes_lose_nothing_and_corrupt_nothing(
        tmp_path: Path, flutter_mode: str, kotlin_mode: str) -> None:
    """Review §2.3's mismatch, for real: each side asks for its own mode on every open.
    The mode is the file's; a request that cannot be granted is refused (Android goes
    on), one that can flips the file for both. Either way: no corruption, no lost row."""
    profile = FixProfile("mismatch", flutter_journal_mode=flutter_mode,
                         kotlin_journal_mode=kotlin_mode)
    result = run_two_processes(tmp_path / "gg.db", profile, seconds=1.5, max_ops=3000)
    assert result.integrity == "ok"
    assert result.contributions == (result.flutter.contributions_written
                                    + result.kotlin.contributions_written)
    # what Kotlin's connection reports after asking: WAL (the file's, or granted), its own
    # rollback mode (granted), or DELETE: a refused request (busy) leaves a new connection
    # on a rollback-mode file in SQLite's per-connection default; never anything else
    assert set(result.kotlin.journal_modes) <= {"WAL", "TRUNCATE", "DELETE"}
    assert result.kotlin.journal_modes
    assert result.kotlin.errors == {} and result.flutter.errors == {}
