"""The open-model loop of a fleet run: events in simulated-time order, each started when
it is due on the wall clock without waiting for earlier ones.

An event started late is counted (`Timeline.dispatched`, except follow-ups, whose
lateness is the server's); an upload that finds `max_in_flight` requests outstanding is
not sent and counted (`not_sent`), so a saturated load generator is never mistaken for a
slow server. A phone's event is deferred while the phone is off (until it is back) or
dozing (until the window's end); an upload whose batch a reboot lost ends here.

Invariants: bounded (events after `settle_end_ms` are not run: the uploads among them are
recorded as phone off or not sent); every operation runs in its own task with its
scheduled instant as "now" (`OPERATION_MS`); a task's crash is recorded, never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from simulator.checks.ledgers import Outcome
from simulator.faults.phone import Reboot
from simulator.fleet.clock import OPERATION_MS, SimClock
from simulator.fleet.events import (
    FOLLOW_UPS,
    SENDS,
    AppStart,
    BackendRestart,
    ClaimDue,
    DrainDue,
    Event,
    EventQueue,
    LiveEnd,
    PhoneReboot,
    RetryDue,
    SessionStart,
    SessionStop,
    StormDue,
    UploadDue,
    describe,
)
from simulator.fleet.phone import Phone, PhoneLife
from simulator.fleet.storage import is_storage_error

IDLE_SLICE_S = 0.05  # the longest sleep: an event scheduled meanwhile may come first


class PieceLoader(Protocol):
    """What the loop asks of the loader (`loader.Loader`)."""

    def must_load(self, next_event_ms: int | None) -> bool: ...
    def may_load(self, now_ms: int) -> bool: ...
    def load_next(self) -> None: ...


class NothingToLoad:
    """A loader whose events are all in the queue already."""

    def must_load(self, next_event_ms: int | None) -> bool:
        return False

    def may_load(self, now_ms: int) -> bool:
        return False

    def load_next(self) -> None:
        raise AssertionError("nothing to load")


def off(phone: Phone, at_ms: int) -> Reboot | None:
    """The reboot `phone` is off in at `at_ms`, if any."""
    for reboot in phone.reboots:
        if reboot.at_ms <= at_ms < reboot.back_ms:
            return reboot
    return None


def reboot_fate(phone: Phone, period_start_ms: int, due_ms: int) -> Outcome | None:
    """What a reboot did to the batch of [period_start, due): phone off when the phone
    was off as its window began (nothing collected), killed when it rebooted while the
    batch was being collected in memory; None when no reboot touched it."""
    for reboot in phone.reboots:
        if reboot.at_ms <= period_start_ms < reboot.back_ms:
            return Outcome.PHONE_OFF
        if period_start_ms < reboot.at_ms < due_ms:
            return Outcome.KILLED
    return None


class Dispatcher:
    """Runs a queue of events against the phones' operations (see the module docstring).
    `restart`: takes the backend down for a simulated duration (a fault); `live_end`:
    ends a live phone's stream (`LiveEnd`, only in a run with one)."""

    def __init__(self, queue: EventQueue, life: PhoneLife, clock: SimClock,
                 loader: PieceLoader,
                 *, end_ms: int, settle_end_ms: int, max_in_flight: int,
                 restart: Callable[[BackendRestart], Coroutine[Any, Any, None]],
                 progress: Callable[[float, str], None] | None = None,
                 live_end: Callable[[Phone], Coroutine[Any, Any, None]] | None = None,
                 ) -> None:
        self.queue, self.life, self.clock, self.loader = queue, life, clock, loader
        self.start_ms, self.end_ms, self.settle_end_ms = clock.start_ms, end_ms, settle_end_ms
        self.max_in_flight, self.restart, self.progress = max_in_flight, restart, progress
        self.live_end = live_end
        self.in_flight: set[asyncio.Task[None]] = set()

    # -- tasks -------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None], at_ms: int | None = None) -> None:
        """Start `coroutine` as its own task; `at_ms`: the instant it was scheduled for,
        its "now" (`OPERATION_MS`, set in the task's own context)."""
        task = asyncio.ensure_future(coroutine if at_ms is None else _at(at_ms, coroutine))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        task.add_done_callback(self._crashed)

    def _crashed(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or (error := task.exception()) is None:
            return
        if is_storage_error(error):  # a Flutter operation abandoned, as the app's would be
            self.life.storage_errors += 1
        else:
            self.life.errors.append(repr(error))

    def cancel_all(self) -> None:
        for task in list(self.in_flight):
            task.cancel()

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Until every event is run and answered, or the settle period is over."""
        queue, loader = self.queue, self.loader
        while True:
            while loader.must_load(queue.next_ms() if queue else None):
                loader.load_next()  # every piece of an hour is in before the hour starts
            if not queue:
                if not self.in_flight:
                    break  # everything generated was sent and answered
                await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            if queue.next_ms() > self.settle_end_ms:
                self._unsent_at_end()
                break
            delay = self.clock.wall_delay_s(queue.next_ms())
            if delay > 0 and loader.may_load(self.clock.now_ms()):
                loader.load_next()  # idle: the next hour, a piece at a time
                await asyncio.sleep(0)  # what was started meanwhile runs first
                continue
            if delay > 0:  # in slices: an event scheduled meanwhile may come first
                await asyncio.sleep(min(delay, IDLE_SLICE_S))
                continue
            at_ms, event = queue.pop()
            if self.progress is not None:
                self.progress(min(1.0, (at_ms - self.start_ms) / (self.end_ms - self.start_ms)),
                              describe(event))
            self._start(at_ms, event)

    def _start(self, at_ms: int, event: Event) -> None:
        if isinstance(event, BackendRestart):
            self.spawn(self.restart(event))
            return
        if isinstance(event, LiveEnd):
            assert self.live_end is not None
            self.spawn(self.live_end(event.phone))
            return
        if not isinstance(event, FOLLOW_UPS):  # the schedule fixed in advance (open model)
            self.life.timeline.dispatched(at_ms, max(0, self.clock.now_ms() - at_ms))
        if isinstance(event, SENDS) and len(self.in_flight) >= self.max_in_flight:
            # the generator could not send it
            self.life.ledger.mark(at_ms, event.batch_id, Outcome.NOT_SENT)
            return
        self._dispatch(at_ms, event)

    def _unsent_at_end(self) -> None:
        """Uploads still scheduled after the settle period (deferred past it by a long
        reboot or Doze): the phone was off, or the run ended before they were sent."""
        for at_ms, event in self.queue.take_all():
            if isinstance(event, SENDS):
                outcome = Outcome.PHONE_OFF if off(event.phone, at_ms) else Outcome.NOT_SENT
                self.life.ledger.mark(at_ms, event.batch_id, outcome)

    def _deferred(self, phone: Phone, at_ms: int) -> int | None:
        """When an event of `phone` due at `at_ms` can run instead, if it cannot now: the
        phone is off (until it is back) or dozing (until the window's end)."""
        reboot = off(phone, at_ms)
        if reboot is not None:
            return reboot.back_ms
        return self.life.faults.doze_end(phone.index, at_ms)

    def _dispatch(self, at_ms: int, event: Event) -> None:
        """Start a phone's event due at `at_ms`, or defer it while its phone is off or
        dozing (an upload whose batch a reboot lost ends here)."""
        assert not isinstance(event, BackendRestart | LiveEnd)
        phone, life = event.phone, self.life
        if isinstance(event, PhoneReboot):  # the app process dies with the phone
            life.reboot(phone, at_ms)
            return
        if isinstance(event, UploadDue) and phone.reboots:
            assert event.contribution is not None  # only full phones reboot
            fate = reboot_fate(phone, event.contribution.timestamp, at_ms)
            if fate is not None:
                life.ledger.mark(at_ms, event.batch_id, fate)
                return
        if life.faults.any:
            later = self._deferred(phone, at_ms)
            if later is not None and later > at_ms:
                if isinstance(event, DrainDue):
                    if phone.drain_due_ms == at_ms:
                        phone.drain_due_ms = None
                        life.want_drain(phone, later)
                else:
                    self.queue.push(later, event)
                return
        match event:
            case UploadDue(phone=p, batch_id=b, envelope=e, contribution=c):
                self.spawn(life.full_upload(p, b, e, c) if c else life.light_upload(p, b, e, 0),
                           at_ms)
            case RetryDue(phone=p, batch_id=b, envelope=e, attempt=n):
                self.spawn(life.light_upload(p, b, e, n), at_ms)
            case DrainDue(phone=p) if p.drain_due_ms == at_ms:  # else superseded
                p.drain_due_ms = None
                if not p.draining:  # a running worker reschedules when it ends
                    p.draining = True  # now, not when the task starts
                    self.spawn(life.drain(p), at_ms)
            case StormDue(phone=p, number=n):
                life.storm(p, n, at_ms)
            case ClaimDue(phone=p):
                self.spawn(life.claim(p), at_ms)
            case SessionStart(phone=p) | SessionStop(phone=p):
                p.tracking = isinstance(event, SessionStart)  # the user's day
                self.spawn(life.session(p, p.tracking), at_ms)
            case AppStart(phone=p):
                self.spawn(life.app_start(p, p.tracking), at_ms)


async def _at(at_ms: int, coroutine: Coroutine[Any, Any, None]) -> None:
    OPERATION_MS.set(at_ms)
    await coroutine
