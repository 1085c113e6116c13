"""The fleet runner: phones living a scenario against a real stack, on simulated time.

Open model: every phone uploads when its own 5-minute window ends (the generator's
batches, in true time), whatever the server's latency. A dispatcher walks the events in
simulated-time order, sleeps until each is due on the wall clock, and starts it without
waiting for earlier ones; an event started late is counted (`late_ms`), and one that
finds `max_in_flight` requests outstanding is not sent and counted (`not_sent`), so a
saturated load generator is never mistaken for a slow server.

Phones: the first `full_phones` are fully simulated (their own SQLite file, which the
Kotlin side opens per operation and the Flutter side keeps open for the app's life; the
Kotlin upload flow with the upload queue and retry worker; the daily pot service with
claims; tracking sessions; app kills, reboots, Doze and clock jumps); the rest are
upload-only (the same HTTP, retries kept in memory). Every operation runs at the instant
it was scheduled for (`OPERATION_MS`), so what happens to it does not depend on how late
the dispatcher got to it.

Invariants: the run is bounded (the scenario's duration plus a settle period, and every
request has a timeout); every generated batch ends in the ledgers; the same scenario and
seed give the same batches, the same fault draws and the same trace header.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import heapq
import itertools
import os
import shutil
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson

from simulator import __version__
from simulator.backend.store import device_hash
from simulator.checks.invariants import Ledger, check_all
from simulator.checks.ledgers import Example, Generated, Verdict, group_arrivals, reconcile
from simulator.clock import parse_instant
from simulator.drivers.blocking import connect, file_bytes
from simulator.drivers.network import AiohttpTransport, AppKilled, Transport, run_async
from simulator.faults.network import NetworkFaults
from simulator.faults.phone import PhoneFaults, Reboot
from simulator.fleet import storm
from simulator.fleet.clock import OPERATION_MS, SimClock
from simulator.fleet.connections import AppConnections
from simulator.fleet.scenario import Scenario
from simulator.fleet.stack import Stack
from simulator.fleet.timeline import Timeline
from simulator.fleet.trace import Trace
from simulator.leftovers import make_owned_dir, sweep
from simulator.phone import app, potsync, schema
from simulator.phone.effects import Http, HttpResponse, NetworkError
from simulator.phone.profiles import FixProfile, profile
from simulator.phone.uploader import (
    Credentials,
    QueuePolicy,
    UploadOutcome,
    backoff_ms,
    drain_queue,
    failure,
    retryable,
    upload_batch,
)
from simulator.seeds import Stream, uniform_hash
from simulator.sensors.encode import encode_lines
from simulator.sensors.fleet import FleetConfig, FleetGenerator
from simulator.sensors.imperfections import Imperfections

WINDOW_MS = 300_000
SETTLE_S = 3_600.0  # simulated time after the last window for queues to drain
SESSION_GAP_MS = 10 * 60_000  # a longer gap between windows ends a tracking session
MAX_LATE_WALL_S = 1.0  # p99 dispatch lateness beyond which the generator is saturated
# events scheduled from an operation's own instant: after a slow request they are due in
# the past when scheduled, which is the server's latency, not the generator's lateness
FOLLOW_UPS = frozenset({"drain", "retry", "app_start"})
PHONE_DIR_PREFIX = "ggsim-fleet-"
# an hour's windows are all loaded this long before it starts (idle loading does it
# earlier), so a session stop due in the hour's last SESSION_GAP_MS - WINDOW_MS, which
# the next hour's windows decide, is scheduled before it is due
LOAD_BY_MS = SESSION_GAP_MS - WINDOW_MS
LOAD_PIECE_PHONES = 500  # phones per piece of an hour's batches (about 0.4 s to load)


def default_phone_dir() -> str | None:
    """Where phone files go by default: a RAM file system (/dev/shm) when there is one,
    else the system's temporary directory (None).

    Why: every commit of a phone's file fsyncs, and the host's disk is not the phone's
    flash, so its fsync time (0.8 ms here) models nothing and only slows the load
    generator: 208 vs 312 full-phone uploads/s on this machine. What the simulation
    checks does not depend on it: an app kill or a SIGKILL loses no committed write
    whether or not it reached the disk (the page cache survives the process)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@dataclass
class Phone:
    """A phone's identity and, when fully simulated, its file and what it believed."""

    index: int
    device_id: str
    user_id: str
    creds: Credentials
    transport: Transport
    db: Path | None = None
    ledger: Ledger = field(default_factory=Ledger)
    drain_due_ms: int | None = None
    claims: dict[str, str] = field(default_factory=dict)  # day -> outcome of the claim
    reboots: list[Reboot] = field(default_factory=list)
    tracking: bool = False  # a tracking session should be running (the user's day)
    life: int = 0  # the app process's generation: a kill or a reboot starts a new one
    offline_attempts: int = 0  # consecutive drains that found no network
    draining: bool = False  # one retry worker per phone, as WorkManager's unique work
    drains: int = 0  # retry-worker runs (keys their jitter: seeded, not timed)
    last_due_ms: int | None = None  # the phone's previous window end (tracking sessions)
    in_session: bool = False  # a session start is scheduled and its stop is not yet
    device_hash: str = field(init=False)  # the backend's hash of device_id, computed once

    def __post_init__(self) -> None:
        self.device_hash = device_hash(self.device_id)


@dataclass
class RunResult:
    """Everything a report needs."""

    scenario: Scenario
    verdict: Verdict
    timeline: Timeline
    requests: int
    faults: dict[str, int]
    wall_s: float
    sim_s: float
    pot_divergence: int
    thresholds: dict[str, tuple[bool, str]]
    active_wall_s: float = 0.0  # from the first event to the end (no set-up)

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.thresholds.values())


class _Measured:
    """The innermost transport: the real request, timed."""

    def __init__(self, inner: Transport, clock: SimClock, timeline: Timeline) -> None:
        self.inner, self.clock, self.timeline = inner, clock, timeline
        self.count = 0

    async def __call__(self, request: Http) -> HttpResponse:
        start = time.perf_counter()
        self.count += 1
        response = await self.inner(request)  # a NetworkError is not a latency sample
        self.timeline.request(self.clock.now_ms(), request.path,
                              (time.perf_counter() - start) * 1000)
        return response


class FleetRun:
    """One run of a scenario against a stack."""

    def __init__(self, scenario: Scenario, stack: Stack, workdir: Path | None = None,
                 *, phone_dir: str | Path | None = None, max_in_flight: int = 2_000,
                 trace: Trace | None = None,
                 progress: Callable[[float, str], None] | None = None) -> None:
        """`workdir`: where the full phones' files go (kept); by default a temporary
        directory under `phone_dir` or `default_phone_dir()`, removed at the end."""
        self.scenario = scenario
        self.stack = stack
        self.profile: FixProfile = profile(scenario.profile)
        self.start_ms = parse_instant(scenario.start)
        self.end_ms = self.start_ms + int(scenario.duration_s * 1000)
        self._own_dir = workdir is None
        if workdir is None:
            parent = phone_dir or default_phone_dir()
            sweep(PHONE_DIR_PREFIX, parent)  # phone files of killed runs (RAM on /dev/shm)
            workdir = make_owned_dir(PHONE_DIR_PREFIX, parent)
        self.workdir = workdir
        self.max_in_flight = max_in_flight
        self.trace = trace
        self.progress = progress
        self.timeline = Timeline(self.start_ms)
        self.kills = 0
        self.final: dict[str, str] = {}
        self.acknowledged: set[str] = set()
        self.refused: dict[str, str] = {}
        # batch id -> true time of the app start whose performMaintenance deleted it
        self.maintained: dict[str, int] = {}
        self.generated: list[Generated] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.events: list[tuple[int, int, str, Any]] = []
        self._order = itertools.count()
        self.policy = QueuePolicy()
        self.phones: list[Phone] = []
        self.app_conns = AppConnections(self.profile.flutter_journal_mode)

    # -- setup -------------------------------------------------------------------------

    def _fleet(self) -> FleetGenerator:
        s = self.scenario
        imperfections = Imperfections() if s.fleet.imperfections else Imperfections.none()
        config = FleetConfig(seed=s.seed, phones=s.fleet.phones, start_ms=self.start_ms,
                             hours=s.duration_s / 3600, imperfections=imperfections)
        if s.fleet.personas:
            config = dataclasses.replace(config, persona_mix=s.fleet.personas)
        return FleetGenerator(config)

    async def _register(self, phones: list[tuple[int, str, str]], raw: Transport) -> list[str]:
        async def one(device_id: str, user_id: str) -> str:
            response = await raw(Http("POST", "/devices", orjson.dumps(
                {"device_id": device_id, "user_id": user_id}),
                (("Content-Type", "application/json"),)))
            if response.status != 201:
                raise RuntimeError(f"registering {device_id}: HTTP {response.status} "
                                   f"{response.body[:200]!r}")
            return str(orjson.loads(response.body)["secret"])
        secrets: list[str] = []
        for i in range(0, len(phones), 200):
            secrets += await asyncio.gather(*(one(d, u) for _, d, u in phones[i:i + 200]))
        return secrets

    def _schedule(self, at_ms: int, kind: str, data: Any) -> None:
        heapq.heappush(self.events, (at_ms, next(self._order), kind, data))

    def _kill_after(self, phone: Phone, key: str) -> int | None:
        """Whether this operation of `phone` is killed, and after how many effects; keyed
        by what the operation is (`key`), not by when it happens to run."""
        p = self.scenario.faults.app_kill_probability
        if not p:
            return None
        k = zlib.crc32(key.encode()) << 1
        if self._jitter(phone.index, 6_000_000 + k) >= p:
            return None
        return int(6 * self._jitter(phone.index, 6_000_001 + k))

    @staticmethod
    def _alive(phone: Phone, life: int) -> Callable[[], bool]:
        """Whether the app process of generation `life` still runs."""
        return lambda: phone.life == life

    async def _flutter(self, phone: Phone, operation: Any, life: int,
                       kill_key: str | None = None) -> Any:
        """Run a Flutter-side operation of app generation `life` on the phone's kept
        connection (`AppConnections`); `kill_key`: the operation's identity for the
        app-kill draw (None: never killed)."""
        assert phone.db is not None
        conn = self.app_conns.acquire(phone.index, phone.db)
        try:
            return await run_async(phone.db, phone.transport, operation, conn=conn,
                                   kill_after=None if kill_key is None else
                                   self._kill_after(phone, kill_key),
                                   alive=self._alive(phone, life))
        finally:
            self.app_conns.release(conn)

    def _killed(self, phone: Phone, at: int, what: str, life: int) -> None:
        """An operation of app generation `life` died during `what` at true time `at`.
        If that process was still alive, this kill ends it: every other operation of it
        dies at its next effect, Flutter's connection goes (what it had open rolls back),
        Android restarts the sticky service a second later and the app's start runs
        (`_app_start`). If it had already died, the operation only died with it."""
        if phone.life != life:
            return
        phone.life += 1
        self.app_conns.drop(phone.index)
        self.kills += 1
        if self.trace is not None:
            self.trace.event(at, phone.index, "killed", during=what)
        self._schedule(at + 1_000, "app_start", phone)

    def _phone_now(self, phone: Phone, at: int) -> int:
        """The phone's wall clock at true time `at` (clock jumps move it)."""
        return at + self.phone_faults.clock_offset_ms(phone.index, at)

    def _true_time(self, phone: Phone, phone_ms: int, at: int) -> int:
        """A phone-clock instant (say, a queue entry's next_retry_at) in true time, with
        the phone's clock offset as it is at true time `at`."""
        return phone_ms - self.phone_faults.clock_offset_ms(phone.index, at)

    def _jitter(self, phone: int, k: int) -> float:
        return float(uniform_hash(self.scenario.seed, Stream.RUNTIME, np.int64(phone),
                                  np.int64(k)))

    # -- the phones' work --------------------------------------------------------------

    def _contribution(self, phone: Phone, batch_id: str, envelope: bytes) -> app.Contribution:
        payload = orjson.loads(envelope)["payload"]
        return app.Contribution(batch_id, int(payload["timestamp"]),
                                len(payload["batch"]), payload.get("geohash"), True,
                                int(payload["timestamp"]) + WINDOW_MS, phone.user_id)

    def _record(self, phone: Phone, batch_id: str, outcome: UploadOutcome, now: int,
                c: app.Contribution | None) -> None:
        self.final[batch_id] = outcome.result
        self.timeline.outcome(now, batch_id, outcome.result)
        if outcome.evicted is not None:  # the queue was full: its oldest entry is gone
            self.final[outcome.evicted] = "overflow"
            self.timeline.outcome(now, outcome.evicted, "overflow")
        if outcome.result in ("saved", "dropped_save"):
            self.acknowledged.add(batch_id)
            if c is not None:
                phone.ledger.acknowledged.append(c)
                if outcome.result == "dropped_save":
                    phone.ledger.kotlin_minus_one.add(batch_id)
        elif outcome.result == "refused":
            self.refused[batch_id] = outcome.error or "?"
        if self.trace is not None:
            self.trace.event(now, phone.index, "upload", batch=batch_id,
                             outcome=outcome.result, status=outcome.status,
                             error=outcome.error)

    async def _full_upload(self, phone: Phone, batch_id: str, envelope: bytes,
                           c: app.Contribution) -> None:
        assert phone.db is not None
        at = self.clock.operation_ms()
        now = self._phone_now(phone, at)
        jitter = self._jitter(phone.index, 3_000_000 + zlib.crc32(batch_id.encode()))
        life = phone.life
        try:
            outcome = await run_async(phone.db, phone.transport, upload_batch(
                envelope, c, phone.creds, now, jitter, self.profile, self.policy),
                journal_mode=self.profile.kotlin_journal_mode,
                kill_after=self._kill_after(phone, f"upload {batch_id}"),
                alive=self._alive(phone, life))
        except AppKilled:
            self._killed(phone, at, "upload", life)
            if self._queued(phone.db, batch_id):  # killed after it was queued: it is there
                self.final[batch_id] = "queued"
                self._want_drain(phone, at + backoff_ms(0, jitter, self.policy))
            else:
                self.final.setdefault(batch_id, "killed")
            self.timeline.outcome(at, batch_id, self.final[batch_id])
            return
        self._record(phone, batch_id, outcome, at, c)
        if outcome.result == "queued":
            self._want_drain(phone, at + backoff_ms(0, jitter, self.policy))
        if outcome.result == "saved":
            if phone.drain_due_ms is not None and phone.drain_due_ms > at + 60_000:
                self._want_drain(phone, at + 1_000)  # back online: the worker runs now
            await self._pot(phone, batch_id, at, life)

    async def _pot(self, phone: Phone, batch_id: str, at: int, life: int) -> None:
        """DailyPotService after a delivered upload: send what is pending, then record
        (the Flutter side: an app kill can stop it too)."""
        assert phone.db is not None
        try:
            sync = await self._flutter(phone, potsync.after_upload(
                phone.user_id, batch_id, phone.creds, self._phone_now(phone, at),
                self.profile), life, f"pot {batch_id}")
        except AppKilled:
            self._killed(phone, at, "pot sync", life)
            return
        self.timeline.pot(at, phone.index, sync)

    def _schedule_claims(self, phones: list[Phone]) -> None:
        """Each fully simulated user opens the app once a day, at a seeded time between
        10:00 and 20:00 UTC, and claims the pot if the cache shows it unlocked."""
        first_day = self.start_ms // 86_400_000
        for phone in phones:
            for day in itertools.count(first_day):
                u = self._jitter(phone.index, 5_000_000 + day)
                at = day * 86_400_000 + int((10 + 10 * u) * 3_600_000)
                if at >= self.end_ms:
                    break
                if at >= self.start_ms:
                    self._schedule(at, "claim", phone)

    async def _claim(self, phone: Phone) -> None:
        assert phone.db is not None
        at = self.clock.operation_ms()
        now = self._phone_now(phone, at)
        life = phone.life
        cached = await self._flutter(phone, potsync.cached(phone.user_id, self.profile), life)
        if not cached or not cached["is_unlocked"] or cached["has_claimed_today"]:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))  # the phone's own day
        try:
            result = await self._flutter(phone, potsync.claim(
                phone.user_id, f"{phone.device_id}-{day}", phone.creds, now, self.profile),
                life, f"claim {day}")
        except AppKilled:
            self._killed(phone, at, "claim", life)
            result = "killed"
        phone.claims[day] = result
        if self.trace is not None:
            self.trace.event(at, phone.index, "claim", outcome=result)

    def _want_drain(self, phone: Phone, at_ms: int) -> None:
        if phone.drain_due_ms is None or at_ms < phone.drain_due_ms:
            phone.drain_due_ms = at_ms
            self._schedule(at_ms, "drain", phone)

    async def _drain(self, phone: Phone) -> None:
        assert phone.db is not None
        try:
            await self._drain_once(phone)
        finally:
            phone.draining = False

    async def _drain_once(self, phone: Phone) -> None:
        assert phone.db is not None
        at = self.clock.operation_ms()
        now = self._phone_now(phone, at)
        phone.drains += 1
        jitters = [self._jitter(phone.index, 1_000_000 + 8 * phone.drains + i)
                   for i in range(4)]
        built: dict[str, app.Contribution] = {}

        def contribution_of(batch_id: str, envelope: bytes) -> app.Contribution:
            built[batch_id] = self._contribution(phone, batch_id, envelope)
            return built[batch_id]
        done: list[tuple[str, UploadOutcome]] = []
        life = phone.life
        try:
            await run_async(phone.db, phone.transport, drain_queue(
                phone.creds, now, jitters, self.profile, contribution_of, self.policy, done),
                journal_mode=self.profile.kotlin_journal_mode,
                kill_after=self._kill_after(phone, f"drain {phone.drains}"),
                alive=self._alive(phone, life))
        except AppKilled:
            self._killed(phone, at, "retry worker", life)  # what finished before counts
        for batch_id, outcome in done:
            self._record(phone, batch_id, outcome, at, built.get(batch_id))
        try:
            for batch_id, outcome in done:
                if outcome.result == "saved" and phone.life == life:  # a dead app syncs none
                    await self._pot(phone, batch_id, at, life)
        finally:
            self._reschedule_drain(phone, done, at, jitters[0])

    def _reschedule_drain(self, phone: Phone, done: list[tuple[str, UploadOutcome]],
                          now: int, jitter: float) -> None:
        """`now` is true time; the queue's due times are on the phone's clock."""
        assert phone.db is not None
        due = self._queue_due(phone, now)
        if due is None:
            phone.offline_attempts = 0
            return
        if done and done[-1][1].status is None and done[-1][1].result == "queued":
            # no network: like WorkManager with a network constraint, the worker waits for
            # connectivity (probed with its own backoff), not for each entry's due time
            phone.offline_attempts += 1
            due = now + backoff_ms(phone.offline_attempts, jitter, self.policy)
        else:
            phone.offline_attempts = 0
        self._want_drain(phone, max(due, now + 1000))

    @staticmethod
    def _queued(db: Path, batch_id: str) -> bool:
        conn = connect(db)
        try:
            return conn.execute("SELECT 1 FROM upload_queue WHERE id = ?",
                                (batch_id,)).fetchone() is not None
        finally:
            conn.close()

    def _queue_due(self, phone: Phone, at: int) -> int | None:
        """When the phone's earliest queued upload is due, in true time (the queue keeps
        phone-clock times), or None when the queue is empty. Read on the loop: a thread
        would race the loop for the file's locks."""
        assert phone.db is not None
        due_on_phone = self._next_due(phone.db)
        return None if due_on_phone is None else self._true_time(phone, due_on_phone, at)

    @staticmethod
    def _next_due(db: Path) -> int | None:
        conn = connect(db)
        try:
            value = conn.execute("SELECT MIN(next_retry_at) FROM upload_queue").fetchone()[0]
        finally:
            conn.close()
        return None if value is None else int(value)

    async def _light_upload(self, phone: Phone, batch_id: str, envelope: bytes,
                            attempt: int) -> None:
        now = self.clock.operation_ms()
        try:
            answer: HttpResponse | NetworkError = await phone.transport(Http(
                "POST", "/upload", envelope, phone.creds.headers(batch_id)))
        except NetworkError as exc:
            answer = exc
        error, retry = failure(answer), retryable(answer)
        status = answer.status if isinstance(answer, HttpResponse) else None
        if error is None:
            outcome = UploadOutcome("saved", status)
        elif retry and attempt < 12:
            outcome = UploadOutcome("queued", status, error)
            wait = backoff_ms(attempt, self._jitter(phone.index, 2_000_000 + attempt),
                              self.policy)
            self._schedule(now + wait, "retry", (phone, batch_id, envelope, attempt + 1))
        else:
            outcome = UploadOutcome("refused" if not retry else "gave_up", status, error)
        self._record(phone, batch_id, outcome, now, None)

    def _schedule_storms(self, phones: list[Phone]) -> None:
        rate = self.scenario.faults.dual_writer_storms_per_hour
        if not rate:
            return
        interval_ms = 3_600_000 / rate
        for phone in phones:
            phase = self._jitter(phone.index, 4_000_000)
            for k in itertools.count():
                at = self.start_ms + int((k + phase) * interval_ms)
                if at >= self.end_ms:
                    break
                self._schedule(at, "storm", (phone, k))

    def _storm(self, phone: Phone, number: int, now: int) -> None:
        """Synchronous on the loop: a phone's own operations never hold a transaction
        across an await, so the storm sees its file between statements."""
        assert phone.db is not None
        what = storm.storm(phone.db, self.profile, phone.ledger, seed=self.scenario.seed,
                           phone=phone.index, number=number, now_ms=now,
                           user_id=phone.user_id)
        if self.trace is not None:
            self.trace.event(now, phone.index, "storm", race=what)

    # -- the loop ----------------------------------------------------------------------

    def _spawn(self, coroutine: Any, at_ms: int | None = None) -> None:
        """Start `coroutine` as its own task; `at_ms`: the instant it was scheduled for,
        its "now" (`OPERATION_MS`, set in the task's own context)."""
        task = asyncio.ensure_future(coroutine if at_ms is None else
                                     self._at(at_ms, coroutine))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        task.add_done_callback(self._crashed)

    @staticmethod
    async def _at(at_ms: int, coroutine: Any) -> None:
        OPERATION_MS.set(at_ms)
        await coroutine

    def _off(self, phone: Phone, at_ms: int) -> Reboot | None:
        """The reboot `phone` is off in at `at_ms`, if any."""
        for reboot in phone.reboots:
            if reboot.at_ms <= at_ms < reboot.back_ms:
                return reboot
        return None

    def _reboot_fate(self, phone: Phone, period_start_ms: int, due_ms: int) -> str | None:
        """What a reboot did to the batch of [period_start, due): "phone_off" when the
        phone was off as its window began (nothing collected), "killed" when it rebooted
        while the batch was being collected in memory; None when no reboot touched it."""
        for reboot in phone.reboots:
            if reboot.at_ms <= period_start_ms < reboot.back_ms:
                return "phone_off"
            if period_start_ms < reboot.at_ms < due_ms:
                return "killed"
        return None

    def _deferred(self, phone: Phone, at_ms: int) -> int | None:
        """When an event of `phone` due at `at_ms` can run instead, if it cannot now: the
        phone is off (until it is back) or dozing (until the window's end)."""
        reboot = self._off(phone, at_ms)
        if reboot is not None:
            return reboot.back_ms
        return self.phone_faults.doze_end(phone.index, at_ms)

    def _crashed(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(repr(task.exception()))

    def _load(self, generator: FleetGenerator, hour: int, part: range,
              phones: list[Phone]) -> None:
        """Schedule the uploads of phones `part` whose windows start in `hour`."""
        block = generator.block(part, hour)
        lines = encode_lines(block)
        for i, line in enumerate(lines):
            order_ms = int(block.order_ms[i])
            due = order_ms + WINDOW_MS
            if not self.start_ms <= order_ms < self.end_ms:
                continue
            p = int(block.phone[i])
            batch_id = block.batch_id[i].decode()
            self.generated.append(Generated(batch_id, p, int(block.seq[i]),
                                            phones[p].device_hash,
                                            int(block.period_start_ms[i]), due))
            phone = phones[p]
            # a full phone's local record, from the block (not parsed back from the line)
            c = None if phone.db is None else app.Contribution(
                batch_id, int(block.period_start_ms[i]), int(block.counts[i]),
                block.geohash[i].decode(), True, int(block.period_start_ms[i]) + WINDOW_MS,
                phone.user_id)
            self._schedule(due, "upload", (phone, batch_id, bytes(line).rstrip(b"\n"), c))
            self._track(phone, due)
        self._end_sessions((phones[p] for p in part), (hour + 1) * 3_600_000 + WINDOW_MS)

    def _track(self, phone: Phone, due: int) -> None:
        """Tracking sessions follow the phone's day: a session starts before the first
        window after a gap of over SESSION_GAP_MS (the phone idle) and stops after the
        last window before it: here when the next window is in the same load, else in
        `_end_sessions` once the loaded windows prove the gap."""
        if phone.db is None:
            return
        if phone.in_session and phone.last_due_ms is not None and (
                due - phone.last_due_ms > SESSION_GAP_MS):  # a gap inside what is loaded
            self._schedule(phone.last_due_ms + 1, "session_stop", phone)
            phone.in_session = False
        if not phone.in_session:
            self._schedule(due - 1, "session_start", phone)
            phone.in_session = True
        phone.last_due_ms = due

    def _end_sessions(self, phones: Iterable[Phone], next_due_ms: int) -> None:
        """Schedule the stop of every session among `phones` that is sure to be over:
        no window of theirs is due before `next_due_ms` that is not loaded, so a last
        window more than SESSION_GAP_MS before it has none following within the gap.
        Decided as each piece loads, about an hour ahead, so the stop is dispatched when
        it is due (and the phone's `tracking` is right meanwhile), not hours later when
        the window that starts the next session happens to load."""
        for phone in phones:
            if phone.in_session and phone.last_due_ms is not None and (
                    next_due_ms - phone.last_due_ms > SESSION_GAP_MS):
                self._schedule(phone.last_due_ms + 1, "session_stop", phone)
                phone.in_session = False

    async def _session(self, phone: Phone, start: bool) -> None:
        assert phone.db is not None
        at = self.clock.operation_ms()
        now = self._phone_now(phone, at)
        what = "session start" if start else "session stop"
        life = phone.life
        try:
            if start:
                await self._flutter(phone, app.start_tracking_session(
                    now, self.profile, phone.user_id), life, f"{what} {at}")
                return
            stopped = await self._flutter(phone, app.stop_tracking_session(
                now, self.profile, "idle", phone.user_id), life, f"{what} {at}")
        except AppKilled:
            self._killed(phone, at, what, life)
            return
        phone.ledger.stops.append(stopped)
        if self.trace is not None:
            self.trace.event(at, phone.index, "session_stop", session=stopped)

    async def _app_start(self, phone: Phone, tracking: bool) -> None:
        """The app starts again after a kill or a reboot: the Flutter side runs its
        database work at start (`_maintenance`: performMaintenance with
        `auto_maintenance`); the tracking service closes the session the dead process
        left active and starts a new one if the user was tracking when the start was
        dispatched (`tracking`: a session start due at the same instant starts its own);
        DailyPotService reconciles with the backend (review §3.4); WorkManager runs the
        retry worker for what is queued. If this process dies too, the next start does
        all of it."""
        assert phone.db is not None
        at = self.clock.operation_ms()
        now = self._phone_now(phone, at)
        life = phone.life
        try:
            deleted = await self._maintenance(phone, at, now, life)
            stopped = await self._flutter(phone, app.stop_tracking_session(
                now, self.profile, "app_restart", phone.user_id), life)
            if stopped is not None:
                phone.ledger.stops.append(stopped)
            if tracking:
                await self._flutter(phone, app.start_tracking_session(now, self.profile,
                                                                      phone.user_id), life)
            sync = await self._flutter(phone, potsync.reconcile(
                phone.user_id, phone.creds, now, self.profile), life)
        except AppKilled:
            return
        self.timeline.pot(at, phone.index, sync)
        if self.trace is not None:
            self.trace.event(at, phone.index, "app_start", pot=sync, maintenance=deleted)
        due = self._queue_due(phone, at)
        if due is not None:
            self._want_drain(phone, max(due, at + 1_000))

    async def _maintenance(self, phone: Phone, at: int, now: int, life: int) -> int | None:
        """The app's database work at its start (`app.app_start`, on the Flutter side's
        connection, never killed on its own, as the rest of the start): with
        `auto_maintenance`, performMaintenance, whose queue cleanup deletes uploads the
        backend never acknowledged once they are 7 days old (by the phone's clock `now`).
        Each deleted batch is recorded with the start's true time `at` (`maintained`) for
        the phone ledger. Returns how many were deleted; None when maintenance did not
        run (the profile has no `auto_maintenance`).

        The operation has no network effect, so it runs on the loop from its first
        statement to its last: nothing of the phone interleaves with it, and what it
        reports deleted is what it deleted (`app.expire_stale_uploads`)."""
        deleted = await self._flutter(phone, app.app_start(now, self.profile), life)
        if deleted is None:
            return None
        for batch_id in deleted:
            self.maintained[batch_id] = at
            self.timeline.outcome(at, batch_id, "maintenance")
        return len(deleted)

    def _unsent_at_end(self) -> None:
        """Uploads still scheduled after the settle period (deferred past it by a long
        reboot or Doze): the phone was off, or the run ended before they were sent."""
        for at_ms, _, kind, data in self.events:
            if kind in ("upload", "retry"):
                phone, batch_id = data[0], data[1]
                outcome = "phone_off" if self._off(phone, at_ms) else "not_sent"
                self.final[batch_id] = outcome
                self.timeline.outcome(at_ms, batch_id, outcome)
        self.events.clear()

    def _dispatch(self, at_ms: int, kind: str, data: Any) -> None:
        """Start the event `kind` due at `at_ms`, or defer it while its phone is off or
        dozing (an upload whose batch a reboot lost ends here)."""
        phone: Phone = data[0] if isinstance(data, tuple) else data
        if kind == "reboot":  # the app process dies with the phone
            phone.life += 1
            self.app_conns.drop(phone.index)
            if self.trace is not None:
                self.trace.event(at_ms, phone.index, "reboot")
            return
        if kind == "upload" and phone.reboots:
            c = data[3]
            fate = self._reboot_fate(phone, c.timestamp, at_ms)
            if fate is not None:
                self.final[data[1]] = fate
                self.timeline.outcome(at_ms, data[1], fate)
                return
        if self.phone_faults.any:
            later = self._deferred(phone, at_ms)
            if later is not None and later > at_ms:
                if kind == "drain":
                    if phone.drain_due_ms == at_ms:
                        phone.drain_due_ms = None
                        self._want_drain(phone, later)
                else:
                    self._schedule(later, kind, data)
                return
        if kind == "upload":
            phone, batch_id, envelope, c = data
            self._spawn(self._full_upload(phone, batch_id, envelope, c) if c
                        else self._light_upload(phone, batch_id, envelope, 0), at_ms)
        elif kind == "retry":
            self._spawn(self._light_upload(*data), at_ms)
        elif kind == "drain" and data.drain_due_ms == at_ms:  # else superseded
            data.drain_due_ms = None
            if not data.draining:  # a running worker reschedules when it ends
                data.draining = True  # now, not when the task starts
                self._spawn(self._drain(data), at_ms)
        elif kind == "storm":
            try:
                self._storm(data[0], data[1], at_ms)
            except Exception as exc:  # reported, the run goes on
                self.errors.append(f"storm: {exc!r}")
        elif kind == "claim":
            self._spawn(self._claim(data), at_ms)
        elif kind in ("session_start", "session_stop"):
            data.tracking = kind == "session_start"  # the user's day, whatever the app does
            self._spawn(self._session(data, kind == "session_start"), at_ms)
        elif kind == "app_start":
            self._spawn(self._app_start(data, data.tracking), at_ms)

    async def run(self) -> RunResult:
        s = self.scenario
        self.errors: list[str] = []
        raw = AiohttpTransport(self.stack.url, timeout_s=s.network.timeout_s,
                               max_connections=min(self.max_in_flight, 500))
        began = time.monotonic()
        try:
            generator = self._fleet()
            ids = [(p, f"sim-{s.seed & 0xFFFFFFFFFFFFFFFF:016x}-p{p:06d}",
                    f"user-{s.seed & 0xFFFFFFFFFFFFFFFF:016x}-{p:06d}")
                   for p in range(s.fleet.phones)]
            secrets = await self._register(ids, raw)
            self.clock = SimClock(self.start_ms, s.speed)
            active_from = time.monotonic()
            self.stack.sync_clock(self.start_ms, s.speed)
            faults = NetworkFaults(s.seed, s.network, s.faults, self.clock, self.start_ms)
            measured = _Measured(raw, self.clock, self.timeline)
            phones = self.phones = [Phone(p, d, u, Credentials(d, secret),
                            faults.for_phone(measured, p))
                      for (p, d, u), secret in zip(ids, secrets, strict=True)]
            # the run begins with each app's first start on a new install: its database
            # work at start (performMaintenance with `auto_maintenance`) runs on the
            # empty file, deletes nothing and is the same for every phone, so it is done
            # once, here, instead of as an event per phone at the first instant
            fresh = file_bytes([app.open_connection(self.profile.flutter_journal_mode, 0),
                                schema.open_schema(self.profile.schema_version),
                                app.app_start(self.start_ms, self.profile)])
            for phone in phones[:s.full_phones]:  # a copy each: no schema built per phone
                phone.db = self.workdir / f"phone-{phone.index:06d}.db"
                phone.db.write_bytes(fresh)
            self.phone_faults = PhoneFaults(s.seed, s.faults, self.start_ms, self.end_ms)
            for phone in phones[:s.full_phones]:
                phone.reboots = self.phone_faults.reboots(phone.index)
                for reboot in phone.reboots:
                    self._schedule(reboot.at_ms, "reboot", phone)
                    self._schedule(reboot.back_ms, "app_start", phone)
            self._schedule_storms(phones[:s.full_phones])
            self._schedule_claims(phones[:s.full_phones])
            for fault in s.faults.restarts:
                self._schedule(self.start_ms + int(fault.at_s * 1000), "restart", fault)
            # an hour of a big fleet takes seconds to generate: it is loaded in pieces,
            # ahead of time while the dispatcher has nothing due, so no hour's start
            # stalls the open model (a whole-hour load stalled tenk-day ~8 s every hour).
            # The pieces are spread over the hour before theirs, one every `spacing`:
            # loaded back to back as soon as allowed, tenk-day's 20 still stalled the
            # loop ~8 s at every hour (nothing else ran between them) and 1.5 % of
            # its uploads were not sent
            n = s.fleet.phones
            starts = range(0, n, LOAD_PIECE_PHONES)
            spacing = (3_600_000 - LOAD_BY_MS) // len(starts)
            pieces = [(hour, range(a, min(a + LOAD_PIECE_PHONES, n)),
                       (hour - 1) * 3_600_000 + k * spacing)  # loadable from (sim ms)
                      for hour in generator.config.hour_blocks
                      for k, a in enumerate(starts)]
            loaded = 0
            settle_end = self.end_ms + int(SETTLE_S * 1000)

            def load_next() -> None:
                nonlocal loaded
                hour, part, _ = pieces[loaded]
                self._load(generator, hour, part, phones)
                # the ledgers grow by every batch and live to the end: out of the cyclic
                # GC's sight, else its full passes grow with the run and stall the
                # dispatcher (reference counting still frees everything else)
                gc.freeze()
                loaded += 1
                if loaded == len(pieces):  # the day's last sessions end after their window
                    self._end_sessions(phones, next_due_ms=sys.maxsize)
            while True:
                while loaded < len(pieces) and (not self.events or self.events[0][0] >=
                                                pieces[loaded][0] * 3_600_000 - LOAD_BY_MS):
                    load_next()  # every piece of an hour is in before the hour starts
                if not self.events:
                    if not self.in_flight:
                        break  # everything generated was sent and answered
                    await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if self.events[0][0] > settle_end:
                    self._unsent_at_end()
                    break
                delay = self.clock.wall_delay_s(self.events[0][0])
                if delay > 0 and loaded < len(pieces) and (
                        pieces[loaded][2] <= self.clock.now_ms()):
                    load_next()  # idle: the next hour, a piece at a time
                    await asyncio.sleep(0)  # what was started meanwhile runs first
                    continue
                if delay > 0:  # in slices: an event scheduled meanwhile may come first
                    await asyncio.sleep(min(delay, 0.05))
                    continue
                at_ms, _, kind, data = heapq.heappop(self.events)
                if self.progress is not None:
                    self.progress(min(1.0, (at_ms - self.start_ms) /
                                      (self.end_ms - self.start_ms)), kind)
                if kind == "restart":
                    self._spawn(self.stack.restart(self.clock.to_wall_s(data.down_s),
                                                   asyncio.sleep, self.clock.now_ms,
                                                   s.speed))
                    continue
                if kind not in FOLLOW_UPS:  # the schedule fixed in advance (open model)
                    self.timeline.dispatched(at_ms, max(0, self.clock.now_ms() - at_ms))
                if kind in ("upload", "retry") and len(self.in_flight) >= self.max_in_flight:
                    self.final[data[1]] = "not_sent"  # the generator could not send it
                    self.timeline.outcome(at_ms, data[1], "not_sent")
                    continue
                self._dispatch(at_ms, kind, data)
            if self.in_flight:
                await asyncio.wait(self.in_flight, timeout=s.network.timeout_s * 3 + 30)
            for task in list(self.in_flight):
                task.cancel()
            self.app_conns.close_all()  # the apps stop; their files are checked next
            verdict = await self._verdict(phones)
        finally:
            for task in list(self.in_flight):  # an interrupted run: its phones stop too
                task.cancel()
            self.app_conns.close_all()
            if self._own_dir:  # first: an await below is where a second interrupt lands
                shutil.rmtree(self.workdir, ignore_errors=True)
            gc.unfreeze()  # what the run froze can be collected again once it is dropped
            await raw.aclose()
        wall = time.monotonic() - began
        sim_s = (self.clock.now_ms() - self.start_ms) / 1000 if hasattr(self, "clock") else 0
        divergence = verdict.anomalies.get("pot divergence", 0)
        for error in self.errors[:1]:
            verdict.add("runner error", Example(None, None, error), len(self.errors))
        result = RunResult(s, verdict, self.timeline, measured.count,
                           {**vars(faults.counts), "app_kills": self.kills}, wall, sim_s,
                           divergence, {},
                           time.monotonic() - active_from)
        result.thresholds.update(judge(result))
        return result

    def _phone_ledger(self, phones: list[Phone]) -> dict[str, str]:
        """Each batch's outcome as the phones' files say it at the end: for a fully
        simulated phone, "pending" is what its upload_queue really holds; a batch the
        runner last saw queued that an app start's performMaintenance deleted is
        "maintenance" (also when a retry that was in flight as it went recorded "queued"
        after it); any other batch the runner last saw queued but the queue no longer
        holds has "vanished"."""
        final = dict(self.final)
        full = {p.index for p in phones if p.db is not None}
        queued: set[str] = set()
        for phone in phones:
            if phone.db is not None:
                conn = connect(phone.db)
                try:
                    queued |= {r[0] for r in conn.execute("SELECT id FROM upload_queue")}
                finally:
                    conn.close()
        for g in self.generated:
            if g.phone not in full:
                continue
            if g.batch_id in queued:
                final[g.batch_id] = "queued"
            elif final.get(g.batch_id) == "queued":
                final[g.batch_id] = ("maintenance" if g.batch_id in self.maintained
                                     else "vanished")
        return final

    async def _verdict(self, phones: list[Phone]) -> Verdict:
        final = self._phone_ledger(phones)
        rows, arrivals = await self._backend_ledger()
        if rows is None:
            verdict = Verdict(generated=len(self.generated))
            verdict.buckets["unknown (no database to read)"] = len(self.generated)
        else:
            verdict = reconcile(self.generated, final, self.acknowledged, rows,
                                group_arrivals(arrivals), self.refused,
                                maintained=self.maintained)
        pots = await self._backend_pots()
        for phone in phones:
            if phone.db is None:
                continue
            conn = connect(phone.db)
            try:
                for anomaly in check_all(conn, phone.ledger):
                    verdict.add(f"{anomaly.label} {anomaly.kind}",
                                Example(phone.index, None, anomaly.detail))
                cached = conn.execute("SELECT uploads_today, last_synced_at FROM "
                                      "daily_pot_cache WHERE user_id = ?",
                                      (phone.user_id,)).fetchone()
                pending_claim = conn.execute("SELECT value FROM app_state WHERE key = ?",
                                             (potsync.PENDING_CLAIM_KEY,)).fetchone()
                sync = conn.execute("SELECT value FROM app_state WHERE key = ?",
                                    (potsync.SYNC_KEY,)).fetchone()
            finally:
                conn.close()
            for day, outcome in sorted(phone.claims.items()):
                if outcome == "failed":
                    verdict.add("offline claim lost", Example(
                        phone.index, None, f"the claim of {day} failed without network and "
                                           "was not kept for later (review §3.3)"))
            if pending_claim is not None:
                verdict.add("claim never delivered", Example(
                    phone.index, None, f"claim {pending_claim[0]} still queued at the end"))
            backend = pots.get(phone.user_id) if pots is not None else None
            knows_unsynced = self.profile.pot_versioning and sync and sync[0] != "synced"
            if knows_unsynced:  # v3 tracks its sync state (§3.4): not a silent divergence
                verdict.pot_pending += 1
            elif cached and backend and backend[0] != cached[0] and backend[1] == time.strftime(
                    "%Y-%m-%d", time.gmtime(self._true_time(  # the phone's clock may be off
                        phone, int(cached[1]), int(cached[1])) / 1000)):
                verdict.add("pot divergence", Example(
                    phone.index, int(cached[1]), f"phone caches {cached[0]} uploads today, "
                                                 f"backend has {backend[0]} ({backend[1]})"))
        return verdict

    async def _backend_ledger(self) -> tuple[dict[str, int] | None, list[tuple[str, int, int]]]:
        if not self.stack.database_url:
            return None, []
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            if self.stack.schema == "recommended":
                records = await conn.fetch("SELECT batch_id::text AS b, device_hash, id, seq "
                                           "FROM recommended.sensor_batches")
                rows = Counter(r["b"] for r in records)
                arrivals = [(r["device_hash"], r["id"], r["seq"]) for r in records]
            else:
                records = await conn.fetch(
                    "SELECT device_hash, (extract(epoch FROM timestamp_utc) * 1000)::bigint "
                    "AS ts, ctid::text AS c FROM as_is.sensor_batches")
                by_key = {(g.device_hash, g.timestamp_ms): g for g in self.generated}
                rows = Counter()
                arrivals = []
                for r in records:
                    g = by_key.get((r["device_hash"], r["ts"]))
                    if g is not None:
                        rows[g.batch_id] += 1
                        arrivals.append((r["device_hash"], len(arrivals), g.seq))
        finally:
            await conn.close()
        return dict(rows), arrivals

    async def _backend_pots(self) -> dict[str, tuple[int, str]] | None:
        if not self.stack.database_url:
            return None
        ns = "recommended" if self.stack.schema == "recommended" else "as_is"
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            records = await conn.fetch(f"SELECT user_id, uploads_today, pot_day FROM "
                                       f"{ns}.daily_pots")
        finally:
            await conn.close()
        return {r["user_id"]: (r["uploads_today"], r["pot_day"].isoformat()) for r in records}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values; 0 for none."""
    return float(np.percentile(values, q)) if values else 0.0


def judge(result: RunResult) -> dict[str, tuple[bool, str]]:
    """Each threshold: (held, what was measured)."""
    t = result.scenario.thresholds
    p99 = percentile(result.timeline.upload_latencies(), 99)
    v = result.verdict
    late_wall_s = percentile([float(x) for x in result.timeline.all_late()], 99) / 1000 / (
        result.scenario.speed)
    return {
        # an open model is only honest while the generator keeps its schedule: if it
        # falls behind, latencies measure the client, not the server
        "load_generator_keeps_up": (late_wall_s <= MAX_LATE_WALL_S,
                                    f"p99 dispatch {late_wall_s * 1000:.0f} ms late (wall; "
                                    f"limit {MAX_LATE_WALL_S * 1000:.0f} ms)"),
        "p99_upload_latency_ms": (p99 <= t.p99_upload_latency_ms,
                                  f"{p99:.1f} ms (limit {t.p99_upload_latency_ms:g})"),
        "max_anomalies": (v.anomaly_count <= t.max_anomalies,
                          f"{v.anomaly_count} (limit {t.max_anomalies})"),
        "min_delivered_fraction": (v.delivered_fraction >= t.min_delivered_fraction,
                                   f"{v.delivered_fraction:.4f} (limit "
                                   f"{t.min_delivered_fraction:g})"),
    }


def header(scenario: Scenario, stack: Stack) -> dict[str, Any]:
    """What a trace starts with: enough to re-run it."""
    import msgspec
    return {"kind": "header", "version": __version__, "scenario": msgspec.to_builtins(scenario),
            "seed": scenario.seed, "profile": scenario.profile, "schema": scenario.schema,
            "target": "embedded" if stack.embedded else stack.url,
            "derived": {"start_ms": parse_instant(scenario.start),
                        "full_phones": scenario.full_phones, "window_ms": WINDOW_MS,
                        "settle_s": SETTLE_S}}
