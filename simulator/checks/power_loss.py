"""Power loss on the phone: the app's upload flow on its SQLite file through a recording
VFS (`drivers.power_vfs`), then, for seeded moments in that run, the disk a power cut would
leave, opened as the rebooted phone opens it and judged.

The workload is the app core's own operations (`uploader.upload_batch`: send, save on a
2xx or queue; `uploader.drain_queue`: the retry worker), with the server's answers drawn
from the seed, on one connection opened as Android opens it: the profile's journal mode
and the platform's `synchronous` (`android_synchronous`). What the app believed at each
moment is known from the logged operation count when each of its operations returned.

Per cut, three findings: *corruption* (`PRAGMA integrity_check` fails, or the file is not
a database); *lost acknowledged contributions* (a save that returned, after the server's
2xx, is not in the file); *lost queued uploads* (an upload queued before the cut, never
acknowledged by the server, that the queue no longer holds: data lost for good). Also
counted: queue entries back after their delivery (they are sent again; the backend's
idempotency key answers them) and uploads in flight at the cut (neither acknowledged nor
queued yet: gone with the app's memory, as with any crash).

Invariant: deterministic by seed (the server's answers, the cut moments, every dropped
or torn write).
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulator.drivers import apsw_sql
from simulator.drivers.blocking import file_bytes
from simulator.drivers.network import run_blocking
from simulator.drivers.power_vfs import RecordingVFS, WriteLog, disk_after_cut, write_disk
from simulator.instants import WINDOW_MS
from simulator.phone import app
from simulator.phone.effects import Http, HttpResponse
from simulator.phone.profiles import FixProfile
from simulator.phone.uploader import Credentials, drain_queue, upload_batch

START_MS = 1_704_096_000_000  # 2024-01-01T08:00:00Z
CREDS = Credentials("power-phone", "secret")
ANDROID_WAL_AUTOCHECKPOINT = 100  # pages (AOSP config.xml db_wal_autocheckpoint)
KERNEL_WRITEBACK_S = 30.0  # Linux vm.dirty_expire_centisecs default (3000)


def android_synchronous(profile: FixProfile) -> str:
    """The `synchronous` Android gives a connection in this profile's journal mode
    (docs/platform-facts.md): FULL for a rollback journal (`db_default_sync_mode`),
    NORMAL in WAL (`db_wal_sync_mode` for apps since Android 9)."""
    return "NORMAL" if profile.flutter_journal_mode == "WAL" else "FULL"


@dataclass
class Beliefs:
    """When (logged operation count) each of the app's beliefs began."""

    server_acknowledged: dict[str, int] = field(default_factory=dict)
    saved: dict[str, int] = field(default_factory=dict)
    queued: dict[str, int] = field(default_factory=dict)
    delivered_from_queue: dict[str, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)  # the upload began


@dataclass
class PowerLossReport:
    """What the cuts of one run left (see the module docstring)."""

    profile: str
    journal_mode: str
    synchronous: str
    seed: int
    writeback_s: float | None  # the kernel's write-back age; None: nothing written back
    operations: int = 0
    cuts: int = 0
    corrupt_cuts: list[int] = field(default_factory=list)
    lost_saved: int = 0
    cuts_losing_saved: int = 0
    lost_queued: int = 0
    cuts_losing_queued: int = 0
    requeued_after_delivery: int = 0
    in_flight_at_cut: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.corrupt_cuts or self.lost_saved or self.lost_queued)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "examples"} | {
            "examples": self.examples[:10]}


class _Server:
    """The backend's answers, drawn from the seed: 2xx with `p_ok`, else 503."""

    def __init__(self, rng: random.Random, log: WriteLog, beliefs: Beliefs,
                 p_ok: float) -> None:
        self.rng, self.log, self.beliefs, self.p_ok = rng, log, beliefs, p_ok

    def __call__(self, request: Http) -> HttpResponse:
        if self.rng.random() >= self.p_ok:
            return HttpResponse(503, b'{"error":"database_unavailable"}')
        batch_id = dict(request.headers).get("Idempotency-Key", "")
        self.beliefs.server_acknowledged.setdefault(batch_id, self.log.count)
        return HttpResponse(201, b'{"status":"stored"}')


def _contribution(i: int) -> tuple[app.Contribution, bytes]:
    at = START_MS + i * WINDOW_MS
    c = app.Contribution(f"batch-{i:04d}", at, 30, "u33dc0", True, at, "user-1")
    return c, orjson.dumps({"batch_id": c.id, "timestamp": at})


def run_workload(path: Path, profile: FixProfile, synchronous: str, seed: int,
                 windows: int, vfs_name: str) -> tuple[WriteLog, Beliefs]:
    """The app's uploads for `windows` 5-minute windows (the retry worker every fourth),
    through the recording VFS; the log and what the app believed when."""
    path.write_bytes(file_bytes(app.fresh_install(profile, START_MS)))
    log, beliefs = WriteLog(), Beliefs()
    vfs = RecordingVFS(vfs_name, log)
    conn = apsw_sql.connect(path, vfs_name)
    try:
        _open_as_android(conn, profile, synchronous)
        rng = random.Random(f"power-loss:{seed}")
        server = _Server(rng, log, beliefs, p_ok=0.7)
        for i in range(windows):
            c, envelope = _contribution(i)
            now = log.now_ms = c.timestamp
            beliefs.started[c.id] = log.count
            outcome = _run(conn, server, upload_batch(envelope, c, CREDS, now, rng.random(),
                                                      profile))
            if outcome.result == "saved":
                beliefs.saved[c.id] = log.count
            elif outcome.result == "queued":
                beliefs.queued[c.id] = log.count
            if i % 4 == 3:
                log.now_ms = now + 60_000
                _drain(conn, server, beliefs, log, profile, now + 60_000, rng)
    finally:
        conn.close()
        vfs.unregister()
    return log, beliefs


def _run(conn: Any, server: Callable[[Http], HttpResponse], operation: Any) -> Any:
    return run_blocking(conn, server, operation, sql=apsw_sql.execute)


def _drain(conn: Any, server: _Server, beliefs: Beliefs, log: WriteLog,
           profile: FixProfile, now: int, rng: random.Random) -> None:
    """One run of the retry worker; a delivered entry is saved and off the queue."""
    def contribution_of(batch_id: str, envelope: bytes) -> app.Contribution:
        return _contribution(int(batch_id.rsplit("-", 1)[1]))[0]
    done: list[tuple[str, Any]] = []
    _run(conn, server, drain_queue(CREDS, now + 3_600_000, [rng.random()], profile,
                                   contribution_of, done=done))
    for batch_id, outcome in done:  # the run returned: each entry's commit is behind it
        if outcome.result == "saved":
            beliefs.saved[batch_id] = log.count
            beliefs.delivered_from_queue[batch_id] = log.count


def _open_as_android(conn: Any, profile: FixProfile, synchronous: str) -> None:
    """The journal mode the profile asks for, and what Android's SQLiteConnection sets
    when it opens a file: the sync mode and, in WAL, its auto-checkpoint interval."""
    _run(conn, _no_network, app.open_connection(profile.flutter_journal_mode, 0))
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {ANDROID_WAL_AUTOCHECKPOINT}")


def _no_network(request: Http) -> HttpResponse:
    raise AssertionError(f"no request expected here: {request.path}")


def judge_cuts(path: Path, log: WriteLog, beliefs: Beliefs, report: PowerLossReport,
               cuts: int) -> None:
    """Rebuild the disk at `cuts` seeded moments and judge each (see the module
    docstring); adds to `report`. With `report.writeback_s`, what the kernel would
    have written back by then is on the disk."""
    back = None if report.writeback_s is None else int(report.writeback_s * 1000)
    chooser = random.Random(f"power-cuts:{report.seed}")
    moments = sorted(chooser.sample(range(1, log.count + 1), min(cuts, log.count)))
    report.operations, report.cuts = log.count, len(moments)
    for cut in moments:
        write_disk(disk_after_cut(log, cut, random.Random(f"power-cut:{report.seed}:{cut}"),
                                  written_back_ms=back))
        _judge_one(path, cut, beliefs, report)


def _judge_one(path: Path, cut: int, beliefs: Beliefs, report: PowerLossReport) -> None:
    try:
        contributions, queue = _reboot_and_read(path)
    except sqlite3.DatabaseError as exc:
        report.corrupt_cuts.append(cut)
        report.examples.append(f"cut after operation {cut}: corrupt ({exc})")
        return

    def before(moments: dict[str, int]) -> set[str]:
        return {batch for batch, at in moments.items() if at <= cut}
    saved, delivered = before(beliefs.saved), before(beliefs.delivered_from_queue)
    acknowledged = before(beliefs.server_acknowledged)
    lost_saved = saved - contributions
    lost_queued = (before(beliefs.queued) - delivered) - queue - acknowledged
    report.lost_saved += len(lost_saved)
    report.cuts_losing_saved += bool(lost_saved)
    report.lost_queued += len(lost_queued)
    report.cuts_losing_queued += bool(lost_queued)
    report.requeued_after_delivery += len(delivered & queue)
    believed = saved | before(beliefs.queued)
    report.in_flight_at_cut += len(before(beliefs.started) - believed - acknowledged)
    for kind, lost in (("acknowledged contribution", lost_saved),
                       ("queued upload", lost_queued)):
        if lost:
            report.examples.append(f"cut after operation {cut}: lost {kind}s "
                                   f"{', '.join(sorted(lost)[:3])}")


def _reboot_and_read(path: Path) -> tuple[set[str], set[str]]:
    """Open the file as the rebooted app does (plain SQLite: a hot journal is rolled
    back, a WAL recovered), check its integrity, read contributions and queue."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchall()
        if verdict != [("ok",)]:
            raise sqlite3.DatabaseError(f"integrity_check: {verdict[:3]}")
        contributions = {row[0] for row in conn.execute("SELECT id FROM contributions")}
        queue = {row[0] for row in conn.execute("SELECT id FROM upload_queue")}
    finally:
        conn.close()
    return contributions, queue


def power_loss(profile: FixProfile, *, synchronous: str | None = None, seed: int = 0,
               windows: int = 96, cuts: int = 200,
               writeback_s: float | None = KERNEL_WRITEBACK_S) -> PowerLossReport:
    """One workload of `windows` uploads under `profile` and `synchronous` (Android's by
    default), judged at `cuts` seeded power cuts."""
    chosen = synchronous or android_synchronous(profile)
    report = PowerLossReport(profile.name, profile.flutter_journal_mode, chosen, seed,
                             writeback_s)
    with tempfile.TemporaryDirectory(prefix="ggsim-power-") as directory:
        path = Path(directory) / "greengains.db"
        log, beliefs = run_workload(path, profile, chosen, seed, windows,
                                    f"ggsim-power-{seed}-{id(report)}")
        judge_cuts(path, log, beliefs, report, cuts)
    return report
