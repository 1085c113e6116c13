"""Crash loop: the two app sides as OS processes, one of them killed with SIGKILL at a
random moment, again and again, on one SQLite file.

The Flutter side alternates a plain insertContribution with the retry worker's two-step
path (enqueue a failed upload, then `complete_queued_upload`: save it and dequeue it);
the Kotlin side saves with its own connection, or, with the single-writer fix, hands
each save to the Flutter process over a pipe (the MethodChannel) and never opens the
file. Each side appends the id of every contribution it has seen committed to its own
log (one `write` per id, so a kill loses at most the line being written).

After each round the parent opens the file (SQLite recovers a hot journal or WAL on
open) and checks: `PRAGMA integrity_check` (*corruption*); an id that a side logged as
committed but is not in the file (*lost write*); an upload both saved and still queued
(*torn operation*, `invariants.check_queue`). The file may hold a few ids not yet logged
when the kill came (committed, then killed before logging), which is fine. Bounded:
`rounds` rounds of at most `max_delay_s` plus a few milliseconds each.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.checks.invariants import check_queue
from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.profiles import FixProfile


@dataclass
class CrashReport:
    """What the crash loop saw, over all rounds."""

    rounds: int = 0
    kills: dict[str, int] = field(default_factory=lambda: {"flutter": 0, "kotlin": 0})
    integrity_failures: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)
    committed_not_logged: int = 0
    rows: int = 0


def _log(fd: int, text: str) -> None:
    os.write(fd, (text + "\n").encode())


def _flutter(path: str, profile: FixProfile, round_no: int, log: str, channel: int) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.set_blocking(channel, False)
    deadline = time.monotonic() + 30.0  # the parent kills long before
    conn = connect(path)
    run(conn, app.open_connection(profile.flutter_journal_mode,
                                  profile.flutter_busy_timeout_ms))
    pending = b""
    i = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(BlockingIOError):  # saves Kotlin handed over (single_writer)
            pending += os.read(channel, 65536)
        *handed, pending = pending.split(b"\n")
        for cid in handed:
            c = app.Contribution(cid.decode(), 1, 30, "u33dc1", True, 1, "user-1")
            try:
                run(conn, app.insert_contribution(c, profile))
            except sqlite3.Error:
                continue
            _log(fd, c.id)
        i += 1
        c = app.Contribution(f"f{round_no}-{i}", i, 30, "u33dc0", True, i, "user-1")
        try:
            if i % 2:
                run(conn, app.insert_contribution(c, profile))
            else:  # the retry worker: a failed upload queued, later delivered
                run(conn, app.enqueue_upload(c.id, "{}", i))
                run(conn, app.complete_queued_upload(c.id, c, profile))
        except sqlite3.Error:
            continue
        _log(fd, c.id)


def _kotlin(path: str, profile: FixProfile, round_no: int, log: str, channel: int) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    deadline = time.monotonic() + 30.0
    i = 0
    while time.monotonic() < deadline:
        i += 1
        c = app.Contribution(f"k{round_no}-{i}", i, 30, "u33dc1", True, i, "user-1")
        if profile.single_writer:  # review §2.5 fix 1: Flutter writes it and logs it
            os.write(channel, (c.id + "\n").encode())
            time.sleep(0.001)
            continue
        kconn = connect(path)  # db.use {}
        try:
            run(kconn, app.open_connection(profile.kotlin_journal_mode,
                                           profile.kotlin_busy_timeout_ms))
            if run(kconn, app.kotlin_save_contribution(c, profile)) != -1:
                _log(fd, c.id)
        finally:
            kconn.close()


def crash_loop(directory: Path, profile: FixProfile, *, rounds: int = 20, seed: int = 0,
               max_delay_s: float = 0.3) -> CrashReport:
    """Run `rounds` rounds; in each, SIGKILL one side (chosen by the seed) after a random
    delay, then the other, and check the file. Returns what was found."""
    rng = random.Random(seed)
    path = directory / "greengains.db"
    setup = connect(path)
    run(setup, schema.open_schema(profile.schema_version))
    setup.close()
    ctx = multiprocessing.get_context("fork")  # no connection is open in the parent here
    report = CrashReport()
    for round_no in range(rounds):
        logs = {side: str(directory / f"{side}-{round_no}.log") for side in ("flutter", "kotlin")}
        read_end, write_end = os.pipe()
        procs: dict[str, Any] = {
            "flutter": ctx.Process(target=_flutter, args=(str(path), profile, round_no,
                                                          logs["flutter"], read_end)),
            "kotlin": ctx.Process(target=_kotlin, args=(str(path), profile, round_no,
                                                        logs["kotlin"], write_end))}
        for p in procs.values():
            p.start()
        os.close(read_end)
        os.close(write_end)
        time.sleep(rng.uniform(0.02, max_delay_s))
        victim = rng.choice(("flutter", "kotlin"))
        os.kill(procs[victim].pid, signal.SIGKILL)
        report.kills[victim] += 1
        time.sleep(rng.uniform(0.0, 0.02))
        survivor = "kotlin" if victim == "flutter" else "flutter"
        os.kill(procs[survivor].pid, signal.SIGKILL)
        for p in procs.values():
            p.join(timeout=10)
        check = connect(path)
        integrity = check.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            report.integrity_failures.append(f"round {round_no}: {integrity}")
        ids = {r[0] for r in check.execute("SELECT id FROM contributions")}
        logged: set[str] = set()
        for log in logs.values():
            if Path(log).exists():
                logged |= {line for line in Path(log).read_text().splitlines() if line}
        report.lost += sorted(logged - ids)
        torn = {a.detail for a in check_queue(check)}  # the file keeps earlier rounds' too
        report.torn += sorted(torn - set(report.torn))
        mine = {i for i in ids if i.split("-")[0][1:] == str(round_no)}
        report.committed_not_logged += len(mine - logged)
        report.rows = len(ids)
        check.close()
        report.rounds += 1
    return report
