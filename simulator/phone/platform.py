"""Platform facts the phone model depends on, each a named value with its source.

The review (§2.3) says sqflite turns WAL on by default and that two journal modes on one
file risk corruption; the sources below and the tests in tests/test_platform_facts.py
(run on real SQLite files) say otherwise. docs/platform-facts.md has the full text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One platform behaviour the simulation follows."""

    key: str
    statement: str
    source: str
    verified_here: str  # the test that checks it on real SQLite, or "" if it cannot be


FACTS: dict[str, Fact] = {f.key: f for f in (
    Fact("wal_is_per_file",
         "WAL is a property of the database file (header bytes 18-19): every connection "
         "that opens a WAL file uses WAL, whatever mode it would choose.",
         "sqlite.org/wal.html ('persistent'); sqlite.org/pragma.html#pragma_journal_mode",
         "test_wal_is_a_property_of_the_file"),
    Fact("mode_change_needs_exclusive_use",
         "A connection that asks for journal_mode=DELETE (or TRUNCATE) while another "
         "connection has the WAL file open gets SQLITE_BUSY at once; the file stays WAL.",
         "SQLite test/walmode.test; FACTS.md measurement on SQLite 3.40",
         "test_leaving_wal_while_another_connection_is_open_is_refused"),
    Fact("android_busy_timeout_ms",
         "Android's SQLiteConnection sets a 2,500 ms busy timeout on every connection it "
         "opens, so both sqflite (which uses the framework's SQLiteDatabase on Android) "
         "and the Kotlin side wait up to 2.5 s on a lock.",
         "AOSP frameworks/base core/jni/android_database_SQLiteConnection.cpp "
         "(BUSY_TIMEOUT_MS = 2500)", ""),
    Fact("sqlite_default_busy_timeout_ms",
         "Plain SQLite waits 0 ms: a locked database fails at once with SQLITE_BUSY.",
         "sqlite.org/c3ref/busy_timeout.html", "test_default_busy_timeout_fails_at_once"),
    Fact("android_insert_returns_minus_one",
         "SQLiteDatabase.insert() catches the SQLException, logs 'Error inserting' and "
         "returns -1, for a constraint failure and a lock timeout alike; insertOrThrow() "
         "throws.",
         "AOSP frameworks/base core/java/android/database/sqlite/SQLiteDatabase.java "
         "(insert -> insertWithOnConflict in try/catch)", ""),
    Fact("sqflite_insert_raises",
         "sqflite's insert() raises a DatabaseException on failure.",
         "tekartik/sqflite sqflite_common lib/src/exception.dart", ""),
    Fact("replace_deletes_then_inserts",
         "INSERT OR REPLACE (sqflite ConflictAlgorithm.replace) deletes the conflicting row "
         "and inserts a new one: columns the new insert does not supply get their "
         "defaults, and the old values are gone without an error.",
         "sqlite.org/lang_conflict.html; tekartik/sqflite doc/conflict_algorithm.md",
         "test_replace_resets_columns_it_does_not_supply"),
    Fact("sqflite_not_wal_by_default",
         "sqflite does not enable WAL on Android by default (contrary to review §2.3); it "
         "takes Android's default journal mode unless the app sets PRAGMA journal_mode=WAL "
         "or the manifest flag.",
         "tekartik/sqflite doc/dev_tips.md; sqflite_android Database.java", ""),
    Fact("begin_immediate_takes_the_write_lock",
         "BEGIN IMMEDIATE takes the write lock at once, so a read-then-write sequence in it "
         "cannot interleave with another writer; a plain (deferred) BEGIN or no "
         "transaction lets two read-then-write sequences both read first. Everything "
         "between BEGIN and COMMIT is all-or-nothing.",
         "sqlite.org/lang_transaction.html", "test_begin_immediate_serialises_writers"),
    Fact("vacuum_outside_transactions",
         "VACUUM fails inside a transaction ('cannot VACUUM from within a transaction').",
         "sqlite.org/lang_vacuum.html", "test_vacuum_cannot_run_in_a_transaction"),
    Fact("add_column_rules",
         "ALTER TABLE ADD COLUMN works on a populated table and leaves existing rows NULL; "
         "a REFERENCES clause is allowed when the default is NULL; foreign keys are only "
         "enforced with PRAGMA foreign_keys=ON, off by default.",
         "sqlite.org/lang_altertable.html; sqlite.org/foreignkeys.html",
         "test_add_column_with_references_is_allowed_and_unenforced"),
    Fact("android_default_journal_mode",
         "Android's rollback-journal default is TRUNCATE on current releases (PERSIST on "
         "old ones; config_defaultJournalMode). From Android 9, 'compatibility WAL' applied "
         "to apps that did not choose a mode, later gated by a global setting.",
         "AOSP core/res/res/values/config.xml; source.android.com/docs/core/perf/"
         "compatibility-wal", ""),
    Fact("android_sync_mode",
         "Android's SQLiteConnection sets PRAGMA synchronous when it opens a file: FULL "
         "with a rollback journal (db_default_sync_mode); in WAL, db_wal_sync_mode: NORMAL "
         "for apps on current releases (FULL for system processes, and on old releases), "
         "with a WAL auto-checkpoint every 100 pages. In WAL, NORMAL syncs only at "
         "checkpoints: a power loss can undo committed transactions; the file stays "
         "consistent.",
         "AOSP core/res/res/values/config.xml; SQLiteGlobal.java getWALSyncMode(); "
         "sqlite.org/pragma.html#pragma_synchronous", ""),
    Fact("http_retry_after",
         "A 429 (Too Many Requests) or 503 answer may carry Retry-After: delay-seconds or "
         "an HTTP-date. It is advice: OkHttp re-sends a 503 only when it says 0 and never "
         "waits for a later one; waiting is the app's own code, and the review's uploader "
         "has none.",
         "RFC 9110 §10.2.3, RFC 6585 §4; OkHttp RetryAndFollowUpInterceptor.kt", ""),
)}


def fact(key: str) -> Fact:
    """The fact named `key` (KeyError names the known ones)."""
    try:
        return FACTS[key]
    except KeyError:
        raise KeyError(f"unknown platform fact {key!r}; known: {sorted(FACTS)}") from None
