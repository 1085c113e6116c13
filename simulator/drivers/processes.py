"""The two app sides as two OS processes writing one SQLite file (real locks, real WAL).

The Flutter side keeps one connection open (sqflite's singleton) and runs a seeded mix
of its operations; the Kotlin side opens a connection for every save and closes it
(`db.use {}`), asking for its own journal mode each time, or, with the single-writer fix
(review §2.5 fix 1), hands each save to the Flutter process over a queue standing for
the MethodChannel and never opens the file. Both run for a bounded time
and a bounded number of operations, then stop by themselves. Afterwards the parent
checks the file (`PRAGMA integrity_check`) and counts rows against what each side says
it wrote.
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.profiles import FixProfile


@dataclass(frozen=True)
class SideReport:
    """What one side did: operations tried, rows it believes it wrote, errors by kind."""

    side: str
    operations: int
    contributions_written: int
    errors: dict[str, int]
    journal_modes: tuple[str, ...]


@dataclass(frozen=True)
class ProcessRun:
    """Both sides' reports and the state of the file afterwards."""

    flutter: SideReport
    kotlin: SideReport
    channel: SideReport  # saves Kotlin handed to Flutter (single_writer), as written
    integrity: str
    journal_mode: str
    contributions: int


def _count(errors: dict[str, int], exc: BaseException) -> None:
    key = f"{type(exc).__name__}: {exc}"
    errors[key] = errors.get(key, 0) + 1


def _flutter(path: str, profile: FixProfile, seed: int, seconds: float, max_ops: int,
             pause_s: float, out: Any, channel: Any) -> None:
    rng = random.Random(seed)
    conn = connect(path)
    modes = (run(conn, app.open_connection(profile.flutter_journal_mode,
                                           profile.flutter_busy_timeout_ms)),)
    errors: dict[str, int] = {}
    written = ops = 0
    deadline = time.monotonic() + seconds
    now = 1_704_067_200_000
    handed = 0
    kotlin_done = False
    while (ops < max_ops and time.monotonic() < deadline) or (
            profile.single_writer and not kotlin_done):
        if profile.single_writer:  # the MethodChannel: write what Kotlin handed over
            while not channel.empty():
                item = channel.get()
                if item is None:
                    kotlin_done = True
                    break
                try:
                    run(conn, app.insert_contribution(item, profile))
                    handed += 1
                except sqlite3.Error as exc:
                    _count(errors, exc)
            if ops >= max_ops or time.monotonic() >= deadline:
                time.sleep(pause_s)
                continue
        ops += 1
        now += 1000
        choice = rng.random()
        try:
            if choice < 0.6:
                c = app.Contribution(f"f-{ops}", now, 30, "u33dc0", True, now, "user-1")
                run(conn, app.insert_contribution(c, profile))
                written += 1
            elif choice < 0.75:
                run(conn, app.start_tracking_session(now, profile, "user-1"))
            elif choice < 0.9:
                run(conn, app.stop_tracking_session(now, profile, "user", "user-1"))
            else:
                run(conn, app.set_state("last_seen", str(now), now))
        except sqlite3.Error as exc:  # sqflite raises: the app's caller sees it
            _count(errors, exc)
        time.sleep(pause_s)
    conn.close()
    out.put(SideReport("flutter", ops, written, errors, modes))
    out.put(SideReport("channel", handed, handed, {}, modes))


def _kotlin(path: str, profile: FixProfile, seconds: float, max_ops: int, pause_s: float,
            out: Any, channel: Any) -> None:
    errors: dict[str, int] = {}
    modes: set[str] = set()
    written = ops = 0
    deadline = time.monotonic() + seconds
    now = 1_704_067_200_000
    while ops < max_ops and time.monotonic() < deadline:
        ops += 1
        now += 1000
        if profile.single_writer:  # §2.5 fix 1: hand the save to Flutter, never open
            channel.put(app.Contribution(f"k-{ops}", now, 30, "u33dc1", True, now, "user-1"))
            written += 1
            time.sleep(pause_s)
            continue
        conn = connect(path)  # db.use {}: a connection per save
        try:
            modes.add(run(conn, app.open_connection(profile.kotlin_journal_mode,
                                                    profile.kotlin_busy_timeout_ms)))
            c = app.Contribution(f"k-{ops}", now, 30, "u33dc1", True, now, "user-1")
            if run(conn, app.kotlin_save_contribution(c, profile)) == -1:
                _count(errors, RuntimeError("insert returned -1"))
            else:
                written += 1
        finally:
            conn.close()
        time.sleep(pause_s)
    if profile.single_writer:
        channel.put(None)
    out.put(SideReport("kotlin", ops, written, errors, tuple(sorted(modes))))


def run_two_processes(path: Path, profile: FixProfile, *, seconds: float = 2.0,
                      max_ops: int = 5_000, seed: int = 0,
                      pause_s: float = 0.001) -> ProcessRun:
    """Create the schema, run both sides as processes for at most `seconds` (and
    `max_ops` operations each, `pause_s` apart), then check the file.

    With no pause, a Flutter side writing in a tight loop in a rollback-journal mode
    starves the Kotlin side (SQLite's busy handler sleeps and retries while the other
    process takes the lock straight back): a real effect, but not the app's load."""
    setup = connect(path)
    run(setup, schema.open_schema(profile.schema_version))
    setup.close()
    ctx = multiprocessing.get_context("spawn")
    out, channel = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_flutter,
                         args=(str(path), profile, seed, seconds, max_ops, pause_s, out,
                               channel)),
             ctx.Process(target=_kotlin,
                         args=(str(path), profile, seconds, max_ops, pause_s, out, channel))]
    for p in procs:
        p.start()
    reports = {r.side: r for r in (out.get(timeout=seconds + 60) for _ in range(3))}
    for p in procs:
        p.join(timeout=30)
    check = connect(path)
    return ProcessRun(
        flutter=reports["flutter"], kotlin=reports["kotlin"], channel=reports["channel"],
        integrity=check.execute("PRAGMA integrity_check").fetchone()[0],
        journal_mode=check.execute("PRAGMA journal_mode").fetchone()[0].upper(),
        contributions=check.execute("SELECT COUNT(*) FROM contributions").fetchone()[0],
    )
