"""The platform facts the phone model follows, checked on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from simulator.drivers.blocking import connect
from simulator.phone import platform, profiles

V2_TIMEOUT = profiles.V2.kotlin_busy_timeout_ms


def test_wal_is_a_property_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    first = connect(path)
    assert first.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    first.execute("CREATE TABLE t (x)")
    first.close()
    other = connect(path)  # opens without asking for any mode
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_leaving_wal_while_another_connection_is_open_is_refused(tmp_path: Path) -> None:
    """Review §2.3 fears corruption from mixed modes; SQLite refuses the change instead."""
    path = tmp_path / "gg.db"
    flutter = connect(path)
    flutter.execute("PRAGMA journal_mode=WAL")
    flutter.execute("CREATE TABLE t (x)")
    flutter.execute("INSERT INTO t VALUES (1)")
    kotlin = connect(path, timeout_s=0.2)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        kotlin.execute("PRAGMA journal_mode=TRUNCATE").fetchall()
    assert kotlin.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    kotlin.execute("INSERT INTO t VALUES (2)")  # and it writes through WAL all the same
    assert flutter.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2
    assert flutter.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    flutter.close()
    assert kotlin.execute("PRAGMA journal_mode=TRUNCATE").fetchone()[0] == "truncate"


def test_default_busy_timeout_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    writer = connect(path)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    other = connect(path)  # timeout 0: SQLite's own default
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("INSERT INTO t VALUES (1)")
    writer.execute("ROLLBACK")


def test_replace_resets_columns_it_does_not_supply(tmp_path: Path) -> None:
    """R1's silent overwrite: REPLACE deletes the old row, defaults fill the gaps."""
    conn = connect(tmp_path / "gg.db")
    conn.execute("CREATE TABLE c (id TEXT PRIMARY KEY, geohash TEXT, session_id INTEGER)")
    conn.execute("INSERT INTO c VALUES ('a', 'u33dc0', 7)")
    conn.execute("INSERT OR REPLACE INTO c (id, geohash) VALUES ('a', 'u33dc1')")
    assert conn.execute("SELECT geohash, session_id FROM c").fetchall() == [("u33dc1", None)]


def test_every_fact_has_a_source_and_every_switch_names_known_facts() -> None:
    for item in platform.FACTS.values():
        assert item.source and item.statement
        if item.verified_here:
            assert item.verified_here in globals(), item.key
    assert set(profiles.SWITCHES) == profiles.documented_fields()
    for switch in profiles.SWITCHES.values():
        assert switch.review and switch.facts  # every switch names what it models
        for key in switch.facts:
            platform.fact(key)


def test_profiles() -> None:
    v2, v3 = profiles.profile("v2"), profiles.profile("v3")
    assert (v2.flutter_conflict, v2.transactions, v2.single_writer) == ("REPLACE", False, False)
    assert (v3.flutter_journal_mode, v3.kotlin_journal_mode) == ("WAL", "WAL")
    assert v3.transactions and v3.single_writer and v3.user_scoping and v3.auto_maintenance
    assert v3.flutter_conflict == "ABORT" and v3.schema_version == 3
    one = profiles.profile("v2+wal")
    assert one.flutter_journal_mode == "WAL" and not one.transactions
    differing = [f for f in profiles.documented_fields()
                 if getattr(one, f) != getattr(v2, f)]
    assert sorted(differing) == ["flutter_journal_mode", "kotlin_journal_mode"]
    assert profiles.only("busy_timeout").kotlin_busy_timeout_ms > V2_TIMEOUT
    with pytest.raises(Exception, match="unknown profile"):
        profiles.profile("v4")
    with pytest.raises(Exception, match="journal_mode"):
        profiles.FixProfile("x", flutter_journal_mode="MEMORYX")


def test_begin_immediate_serialises_writers(tmp_path: Path) -> None:
    path = tmp_path / "gg.db"
    a, b = connect(path), connect(path)
    a.execute("CREATE TABLE t (x)")
    a.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        b.execute("BEGIN IMMEDIATE")
    a.execute("INSERT INTO t VALUES (1)")
    a.execute("ROLLBACK")  # all or nothing
    assert b.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0


def test_vacuum_cannot_run_in_a_transaction(tmp_path: Path) -> None:
    conn = connect(tmp_path / "gg.db")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="VACUUM"):
        conn.execute("VACUUM")


def test_add_column_with_references_is_allowed_and_unenforced(tmp_path: Path) -> None:
    conn = connect(tmp_path / "gg.db")
    conn.execute("CREATE TABLE s (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE c (id TEXT)")
    conn.execute("INSERT INTO c VALUES ('a')")
    conn.execute("ALTER TABLE c ADD COLUMN session_id INTEGER REFERENCES s(id)")
    assert conn.execute("SELECT session_id FROM c").fetchall() == [(None,)]
    conn.execute("INSERT INTO c VALUES ('b', 42)")  # no such session: not enforced
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 0
