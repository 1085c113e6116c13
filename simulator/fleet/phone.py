"""A phone of the fleet and its life: each operation the app performs (an upload, the
retry worker, a pot sync, a claim, a tracking session, an app start after a kill or a
reboot, a dual-writer storm) run through the app core and the network driver
(`run_async`), with what it ends in written to the run's ledger.

The first `full_phones` phones are fully simulated: their own SQLite file (the Kotlin
side opens it per operation, the Flutter side keeps it open for the app's life in
`AppConnections`), the Kotlin upload flow with the upload queue and retry worker, the
daily pot service with claims, tracking sessions, app kills and reboots. The rest are
upload-only: the same HTTP, retries kept in memory.

Invariants: an operation runs at the instant it was scheduled for (`SimClock.
operation_ms`), and every runtime choice comes from `RuntimeDraws`, keyed by what is
decided, so what happens to it does not depend on how late it ran; an operation of an
app process that has died dies at its next effect; one retry worker runs per phone.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulator.backend.store import device_hash
from simulator.checks.invariants import Ledger
from simulator.checks.ledgers import Outcome
from simulator.drivers import blocking
from simulator.drivers.network import AppKilled, Transport, run_async
from simulator.faults.phone import PhoneFaults, Reboot
from simulator.fleet import storage, storm
from simulator.fleet.clock import SimClock
from simulator.fleet.connections import AppConnections
from simulator.fleet.events import AppStart, DrainDue, Event, RetryDue
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.schedule import RuntimeDraws
from simulator.fleet.timeline import Timeline
from simulator.fleet.trace import Trace
from simulator.instants import WINDOW_MS
from simulator.phone import app, potsync
from simulator.phone.effects import Http, HttpResponse, NetworkError
from simulator.phone.profiles import FixProfile
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

MAX_LIGHT_ATTEMPTS = 12  # an upload-only phone's attempts before it gives up


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
    last_due_ms: int | None = None  # the phone's previous window end (tracking sessions)
    in_session: bool = False  # a session start is scheduled and its stop is not yet
    device_hash: str = field(init=False)  # the backend's hash of device_id, computed once

    def __post_init__(self) -> None:
        self.device_hash = device_hash(self.device_id)

    def alive(self, life: int) -> Callable[[], bool]:
        """Whether the app process of generation `life` still runs."""
        return lambda: self.life == life


@dataclass
class PhoneLife:
    """The operations of a run's phones (see the module docstring). `schedule` puts a
    follow-up event in the run's queue; `errors` collects what must not stop the run."""

    profile: FixProfile
    clock: SimClock
    draws: RuntimeDraws
    faults: PhoneFaults
    ledger: FleetLedger
    timeline: Timeline
    schedule: Callable[[int, Event], None]
    trace: Trace | None = None
    policy: QueuePolicy = field(default_factory=QueuePolicy)
    app_conns: AppConnections = field(init=False)
    kills: int = 0
    storage_errors: int = 0  # operations abandoned on a full or read-only file
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app_conns = AppConnections(self.profile.flutter_journal_mode)

    # -- time and processes ------------------------------------------------------------

    def phone_now(self, phone: Phone, at: int) -> int:
        """The phone's wall clock at true time `at` (clock jumps move it)."""
        return at + self.faults.clock_offset_ms(phone.index, at)

    def true_time(self, phone: Phone, phone_ms: int, at: int) -> int:
        """A phone-clock instant (say, a queue entry's next_retry_at) in true time, with
        the phone's clock offset as it is at true time `at`."""
        return phone_ms - self.faults.clock_offset_ms(phone.index, at)

    async def flutter(self, phone: Phone, operation: Any, life: int,
                      kill_key: str | None = None, what: str = "", at: int = 0,
                      fate: int | None = None) -> Any:
        """Run a Flutter-side operation of app generation `life` on the phone's kept
        connection; `kill_key`: the operation's identity for the app-kill draw (None:
        never killed), `what` and `at` name it and its true time in the kill's record;
        `fate`: the kill decided already, with the operation this one follows (`fated`).
        The operation the app dies in runs on that process's own connection, which closes
        (rolling back what it had open) when the operation dies."""
        assert phone.db is not None
        kill_after: int | None = fate
        alive: Callable[[], bool] | None = None
        if fate is None:
            kill_after, alive = self.doomed(phone, at, life, kill_key, what)
        prepare = self.storage(phone)
        if kill_after is not None:
            return await run_async(phone.db, phone.transport, operation,
                                   journal_mode=self.profile.flutter_journal_mode,
                                   kill_after=kill_after, prepare=prepare)
        conn = self.app_conns.acquire(phone.index, phone.db)
        try:
            return await run_async(phone.db, phone.transport, operation, conn=conn,
                                   alive=alive, prepare=prepare)
        finally:
            self.app_conns.release(conn)

    def storage(self, phone: Phone) -> Callable[[sqlite3.Connection], None] | None:
        """How an operation starting now sets up its connection for the phone's storage
        (None when the run has no storage faults)."""
        if not self.faults.faults.storage:
            return None
        return storage.prepare(self.faults.storage_fault(phone.index,
                                                         self.clock.operation_ms()))

    def doomed(self, phone: Phone, at: int, life: int, kill_key: str | None, what: str
               ) -> tuple[int | None, Callable[[], bool]]:
        """Whether the operation `kill_key` of app generation `life`, at true time `at`,
        is the one the app is killed in. Decided as the operation begins (operations
        begin in simulated order), not when it reaches its fatal effect: which of two
        concurrent operations gets there first is wall-clock timing, and it used to decide
        which kill counted and when the app restarted. Returns run_async's `kill_after`
        and `alive`: the fatal operation dies by its own count, after that many effects
        (if it has fewer, the app dies as it ends); any other dies with its process, at
        its next effect once that process is dead."""
        kill_after = None if kill_key is None else self.fated(phone, at, life, kill_key, what)
        if kill_after is None:
            return None, phone.alive(life)
        return kill_after, _to_its_end

    def fated(self, phone: Phone, at: int, life: int, kill_key: str, what: str
              ) -> int | None:
        """Whether the operation `kill_key` of app generation `life` is the one the app is
        killed in, decided and counted now (`doomed`'s decision). Also for the follow-up
        of an operation beginning now (a saved upload's pot sync), decided with that
        operation: decided when the follow-up begins, after the operation's requests, it
        raced the other operations of the phone begun meanwhile: which process died
        first, and so whether this kill happened at all, was wall-clock timing. If it is
        the one, the kill is counted now; the operation runs on to the follow-up, which
        dies by its own count (or the app dies as the operation ends, if no follow-up
        comes). Returns the follow-up's `kill_after`, or None."""
        if phone.life != life:
            return None
        kill_after = self.draws.kill_after(phone.index, kill_key)
        if kill_after is not None:
            self.killed(phone, at, what, life)
        return kill_after

    def killed(self, phone: Phone, at: int, what: str, life: int) -> None:
        """The app process of generation `life` is killed during `what` at true time
        `at` (`doomed` decided it): every other operation of it dies at its next effect,
        Flutter's kept connection goes (what it had open rolls back), Android restarts
        the sticky service a second later and the app's start runs."""
        assert phone.life == life, "a process dies once"
        phone.life += 1
        self.app_conns.drop(phone.index)
        self.kills += 1
        if self.trace is not None:
            self.trace.event(at, phone.index, "killed", during=what)
        self.schedule(at + 1_000, AppStart(phone))

    def reboot(self, phone: Phone, at: int) -> None:
        """The phone goes off: the app process dies with it."""
        phone.life += 1
        self.app_conns.drop(phone.index)
        if self.trace is not None:
            self.trace.event(at, phone.index, "reboot")

    # -- uploads -----------------------------------------------------------------------

    async def full_upload(self, phone: Phone, batch_id: str, envelope: bytes,
                          c: app.Contribution) -> None:
        """A full phone's upload: the Kotlin flow (send, save, or queue)."""
        assert phone.db is not None
        at = self.clock.operation_ms()
        now = self.phone_now(phone, at)
        jitter = self.draws.upload_jitter(phone.index, batch_id)
        life = phone.life
        kill_after, alive = self.doomed(phone, at, life, f"upload {batch_id}", "upload")
        pot_fate = None
        if kill_after is None:
            pot_fate = self.fated(phone, at, life, f"pot {batch_id}", "pot sync")
            if pot_fate is not None:  # its process dies in the pot sync this upload leads to
                alive = _to_its_end
        try:
            outcome = await run_async(phone.db, phone.transport, upload_batch(
                envelope, c, phone.creds, now, jitter, self.profile, self.policy),
                journal_mode=self.profile.kotlin_journal_mode,
                kill_after=kill_after, alive=alive, prepare=self.storage(phone))
        except AppKilled:
            if self.is_queued(phone.db, batch_id):  # killed after it was queued: it is there
                self.ledger.mark(at, batch_id, Outcome.QUEUED)
                self.want_drain(phone, at + backoff_ms(0, jitter, self.policy))
            else:
                self.ledger.killed(at, batch_id)
            return
        self.ledger.record(phone, batch_id, outcome, at, c)
        if outcome.result == Outcome.QUEUED:
            self.want_drain(phone, at + backoff_ms(0, jitter, self.policy))
        if outcome.result == Outcome.SAVED:
            if phone.drain_due_ms is not None and phone.drain_due_ms > at + 60_000:
                self.want_drain(phone, at + 1_000)  # back online: the worker runs now
            await self.pot(phone, batch_id, at, life, pot_fate)

    async def light_upload(self, phone: Phone, batch_id: str, envelope: bytes,
                           attempt: int) -> None:
        """An upload-only phone's attempt `attempt` (retries kept in memory)."""
        now = self.clock.operation_ms()
        try:
            answer: HttpResponse | NetworkError = await phone.transport(Http(
                "POST", "/upload", envelope, phone.creds.headers(batch_id)))
        except NetworkError as exc:
            answer = exc
        error, retry = failure(answer), retryable(answer)
        status = answer.status if isinstance(answer, HttpResponse) else None
        if error is None:
            outcome = UploadOutcome(Outcome.SAVED.value, status)
        elif retry and attempt < MAX_LIGHT_ATTEMPTS:
            outcome = UploadOutcome(Outcome.QUEUED.value, status, error)
            wait = backoff_ms(attempt, self.draws.retry_jitter(phone.index, attempt),
                              self.policy)
            self.schedule(now + wait, RetryDue(phone, batch_id, envelope, attempt + 1))
        else:
            outcome = UploadOutcome(
                Outcome.REFUSED.value if not retry else Outcome.GAVE_UP.value, status, error)
        self.ledger.record(phone, batch_id, outcome, now, None)

    async def pot(self, phone: Phone, batch_id: str, at: int, life: int,
                  fate: int | None = None) -> None:
        """DailyPotService after a delivered upload: send what is pending, then record
        (the Flutter side: an app kill can stop it too; `fate`: decided with the upload)."""
        try:
            sync = await self.flutter(phone, potsync.after_upload(
                phone.user_id, batch_id, phone.creds, self.phone_now(phone, at),
                self.profile), life, f"pot {batch_id}", "pot sync", at, fate)
        except AppKilled:
            return
        self.timeline.pot(at, phone.index, sync)

    # -- the retry worker --------------------------------------------------------------

    def want_drain(self, phone: Phone, at_ms: int) -> None:
        """Ask for the retry worker at `at_ms` (an earlier request supersedes a later)."""
        if phone.drain_due_ms is None or at_ms < phone.drain_due_ms:
            phone.drain_due_ms = at_ms
            self.schedule(at_ms, DrainDue(phone))

    async def drain(self, phone: Phone) -> None:
        """One run of the retry worker; the phone may have another once it ends."""
        try:
            await self._drain_once(phone)
        finally:
            phone.draining = False

    async def _drain_once(self, phone: Phone) -> None:
        assert phone.db is not None
        at = self.clock.operation_ms()
        now = self.phone_now(phone, at)
        jitters = self.draws.drain_jitters(phone.index, at)
        built: dict[str, app.Contribution] = {}

        def contribution_of(batch_id: str, envelope: bytes) -> app.Contribution:
            built[batch_id] = contribution_of_queued(batch_id, envelope, phone.user_id)
            return built[batch_id]
        done: list[tuple[str, UploadOutcome]] = []
        life = phone.life
        kill_after, alive = self.doomed(phone, at, life, f"drain {at}",
                                        "retry worker")
        try:  # what finished before a kill or a refused write counts
            await run_async(phone.db, phone.transport, drain_queue(
                phone.creds, now, jitters, self.profile, contribution_of, self.policy, done),
                journal_mode=self.profile.kotlin_journal_mode,
                kill_after=kill_after, alive=alive, prepare=self.storage(phone))
        except AppKilled:
            pass
        except sqlite3.OperationalError as exc:  # the worker's run is abandoned
            if not storage.is_storage_error(exc):
                raise
            self.storage_errors += 1
        for batch_id, outcome in done:
            self.ledger.record(phone, batch_id, outcome, at, built.get(batch_id))
        try:
            for batch_id, outcome in done:
                if outcome.result == Outcome.SAVED and phone.life == life:  # a dead app syncs none
                    await self.pot(phone, batch_id, at, life)
        finally:
            self._reschedule_drain(phone, done, at, jitters[0])

    def _reschedule_drain(self, phone: Phone, done: list[tuple[str, UploadOutcome]],
                          now: int, jitter: float) -> None:
        """`now` is true time; the queue's due times are on the phone's clock."""
        due, phone.offline_attempts = next_drain(self.queue_due(phone, now), done, now,
                                                 jitter, phone.offline_attempts, self.policy)
        if due is not None:
            self.want_drain(phone, due)

    @staticmethod
    def is_queued(db: Path, batch_id: str) -> bool:
        return blocking.run_on(db, app.is_queued(batch_id))

    def queue_due(self, phone: Phone, at: int) -> int | None:
        """When the phone's earliest queued upload is due, in true time (the queue keeps
        phone-clock times), or None when the queue is empty. Read on the loop: a thread
        would race the loop for the file's locks."""
        assert phone.db is not None
        due_on_phone = blocking.run_on(phone.db, app.next_retry_at())
        return None if due_on_phone is None else self.true_time(phone, due_on_phone, at)

    # -- the user and the app ----------------------------------------------------------

    async def claim(self, phone: Phone) -> None:
        """The user opens the app and claims the pot if the cache shows it unlocked."""
        at = self.clock.operation_ms()
        now = self.phone_now(phone, at)
        life = phone.life
        cached = await self.flutter(phone, potsync.cached(phone.user_id, self.profile), life)
        if not cached or not cached["is_unlocked"] or cached["has_claimed_today"]:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))  # the phone's own day
        try:
            result = await self.flutter(phone, potsync.claim(
                phone.user_id, f"{phone.device_id}-{day}", phone.creds, now, self.profile),
                life, f"claim {day}", "claim", at)
        except AppKilled:
            result = "killed"
        phone.claims[day] = result
        if self.trace is not None:
            self.trace.event(at, phone.index, "claim", outcome=result)

    async def session(self, phone: Phone, start: bool) -> None:
        """A tracking session starts or stops (the user's day)."""
        at = self.clock.operation_ms()
        now = self.phone_now(phone, at)
        what = "session start" if start else "session stop"
        life = phone.life
        try:
            if start:
                await self.flutter(phone, app.start_tracking_session(
                    now, self.profile, phone.user_id), life, f"{what} {at}", what, at)
                return
            stopped = await self.flutter(phone, app.stop_tracking_session(
                now, self.profile, "idle", phone.user_id), life, f"{what} {at}", what, at)
        except AppKilled:
            return
        phone.ledger.stops.append(stopped)
        if self.trace is not None:
            self.trace.event(at, phone.index, "session_stop", session=stopped)

    async def app_start(self, phone: Phone, tracking: bool) -> None:
        """The app starts again after a kill or a reboot: the Flutter side runs its
        database work at start (`maintenance`); the tracking service closes the session
        the dead process left active and starts a new one if the user was tracking when
        the start was dispatched (`tracking`: a session start due at the same instant
        starts its own); DailyPotService reconciles with the backend (review §3.4);
        WorkManager runs the retry worker for what is queued. If this process dies too,
        the next start does all of it."""
        at = self.clock.operation_ms()
        now = self.phone_now(phone, at)
        life = phone.life
        try:
            deleted = await self.maintenance(phone, at, now, life)
            stopped = await self.flutter(phone, app.stop_tracking_session(
                now, self.profile, "app_restart", phone.user_id), life)
            if stopped is not None:
                phone.ledger.stops.append(stopped)
            if tracking:
                await self.flutter(phone, app.start_tracking_session(now, self.profile,
                                                                     phone.user_id), life)
            sync = await self.flutter(phone, potsync.reconcile(
                phone.user_id, phone.creds, now, self.profile), life)
        except AppKilled:
            return
        self.timeline.pot(at, phone.index, sync)
        if self.trace is not None:
            self.trace.event(at, phone.index, "app_start", pot=sync, maintenance=deleted)
        due = self.queue_due(phone, at)
        if due is not None:
            self.want_drain(phone, max(due, at + 1_000))

    async def maintenance(self, phone: Phone, at: int, now: int, life: int) -> int | None:
        """The app's database work at its start (`app.app_start`, on the Flutter side's
        connection, never killed on its own, as the rest of the start): with
        `auto_maintenance`, performMaintenance, whose queue cleanup deletes uploads the
        backend never acknowledged once they are 7 days old (by the phone's clock `now`);
        each deleted batch goes to the ledger with the start's true time `at`. Returns how
        many were deleted; None when maintenance did not run.

        The operation has no network effect, so it runs on the loop from its first
        statement to its last: nothing of the phone interleaves with it, and what it
        reports deleted is what it deleted (`app.expire_stale_uploads`)."""
        deleted = await self.flutter(phone, app.app_start(now, self.profile), life)
        if deleted is None:
            return None
        self.ledger.maintenance(at, deleted)
        return len(deleted)

    def storm(self, phone: Phone, number: int, now: int) -> None:
        """Synchronous on the loop: a phone's own operations never hold a transaction
        across an await, so the storm sees its file between statements. An error is
        reported, and the run goes on."""
        assert phone.db is not None
        try:
            what = storm.storm(phone.db, self.profile, phone.ledger,
                               u=self.draws.storm_kind(phone.index, number),
                               phone=phone.index, number=number, now_ms=now,
                               user_id=phone.user_id)
        except Exception as exc:
            self.errors.append(f"storm: {exc!r}")
            return
        if self.trace is not None:
            self.trace.event(now, phone.index, "storm", race=what)


def next_drain(queue_due: int | None, done: list[tuple[str, UploadOutcome]], now: int,
               jitter: float, offline_attempts: int, policy: QueuePolicy
               ) -> tuple[int | None, int]:
    """When the retry worker runs next after a run that ended at `now` with `done`, and
    the phone's consecutive offline runs: None when the queue is empty (`queue_due`: its
    earliest entry's due time, true time). After a run that found no network the worker
    waits for connectivity, probed with its own backoff, like WorkManager with a network
    constraint, not for each entry's due time; never sooner than a second."""
    if queue_due is None:
        return None, 0
    if done and done[-1][1].status is None and done[-1][1].result == Outcome.QUEUED:
        offline_attempts += 1
        return max(now + backoff_ms(offline_attempts, jitter, policy), now + 1000), \
            offline_attempts
    return max(queue_due, now + 1000), 0


def contribution_of_queued(batch_id: str, envelope: bytes, user_id: str) -> app.Contribution:
    """The local record of a queued envelope (the retry worker's success path)."""
    payload = orjson.loads(envelope)["payload"]
    return app.Contribution(batch_id, int(payload["timestamp"]), len(payload["batch"]),
                            payload.get("geohash"), True,
                            int(payload["timestamp"]) + WINDOW_MS, user_id)


def _to_its_end() -> bool:
    """`alive` of the operation the app dies in, and of one whose process dies in what
    follows it (`fated`): it runs on to its own count."""
    return True
