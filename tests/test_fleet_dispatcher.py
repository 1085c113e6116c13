"""The open-model loop without a stack: events run in time order at their scheduled
instant, a saturated generator's uploads are counted not sent, a phone's events wait while
it is off, a batch collected while it rebooted is lost to the reboot, and what is left
after the settle period is accounted for."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fleet_helpers import quick

from simulator.checks.ledgers import Outcome
from simulator.faults.phone import PhoneFaults, Reboot
from simulator.fleet.clock import OPERATION_MS, SimClock
from simulator.fleet.dispatcher import Dispatcher, NothingToLoad
from simulator.fleet.events import (
    BackendRestart,
    ClaimDue,
    Event,
    EventQueue,
    RetryDue,
    UploadDue,
    describe,
)
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.phone import Phone, PhoneLife
from simulator.fleet.schedule import RuntimeDraws
from simulator.fleet.timeline import Timeline
from simulator.phone.app import Contribution
from simulator.phone.profiles import profile
from simulator.phone.uploader import Credentials

START = 1_704_700_800_000  # 2024-01-08T08:00:00Z
MINUTE = 60_000


class RecordingLife(PhoneLife):
    """The phones' operations, recorded instead of performed: (what, phone, now)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.done: list[tuple[str, int, int]] = []

    def _note(self, what: str, phone: Phone) -> None:
        now = OPERATION_MS.get()
        assert now is not None
        self.done.append((what, phone.index, now))

    async def light_upload(self, phone: Phone, batch_id: str, envelope: bytes,
                           attempt: int) -> None:
        self._note(f"upload {batch_id} #{attempt}", phone)

    async def full_upload(self, phone: Phone, batch_id: str, envelope: bytes,
                          c: Contribution) -> None:
        self._note(f"full upload {batch_id}", phone)

    async def claim(self, phone: Phone) -> None:
        self._note("claim", phone)


def setting(tmp_path: Path, **faults: Any) -> tuple[EventQueue, RecordingLife, list[Phone]]:
    scenario = quick(faults=faults)
    timeline = Timeline(START)
    queue = EventQueue()
    life = RecordingLife(profile("v2"), SimClock(START, 1e9), RuntimeDraws(1, 0.0),
                         PhoneFaults(1, scenario.faults, START, START + 3_600_000),
                         FleetLedger(timeline), timeline, queue.push)
    phones = [Phone(i, f"d{i}", f"u{i}", Credentials(f"d{i}", "s"), None,  # type: ignore[arg-type]
                    db=tmp_path / f"{i}.db") for i in range(2)]
    return queue, life, phones


def dispatch(queue: EventQueue, life: RecordingLife, *, max_in_flight: int = 100,
             settle_end_ms: int = START + 7_200_000) -> Dispatcher:
    async def restart(event: BackendRestart) -> None:
        life.done.append(("restart", -1, 0))
    dispatcher = Dispatcher(queue, life, life.clock, NothingToLoad(), end_ms=START + 3_600_000,
                            settle_end_ms=settle_end_ms, max_in_flight=max_in_flight,
                            restart=restart)
    asyncio.run(dispatcher.run())
    return dispatcher


def test_events_pop_in_time_then_scheduling_order() -> None:
    queue = EventQueue()
    phone = Phone(0, "d", "u", Credentials("d", "s"), None)  # type: ignore[arg-type]
    first, second, earlier = ClaimDue(phone), RetryDue(phone, "b", b"", 1), ClaimDue(phone)
    queue.push(START + 5, first)
    queue.push(START + 5, second)
    queue.push(START + 1, earlier)
    assert [queue.pop()[1] for _ in range(3)] == [earlier, first, second]
    assert not queue and describe(second) == "retry"


def test_each_operation_runs_at_its_scheduled_instant_in_order(tmp_path: Path) -> None:
    queue, life, (a, b) = setting(tmp_path)
    queue.push(START + 2 * MINUTE, UploadDue(b, "b1", b"{}", None))
    queue.push(START + MINUTE, UploadDue(a, "a1", b"{}", None))
    queue.push(START + 3 * MINUTE, ClaimDue(a))
    dispatch(queue, life)
    assert life.done == [("upload a1 #0", 0, START + MINUTE),
                         ("upload b1 #0", 1, START + 2 * MINUTE),
                         ("claim", 0, START + 3 * MINUTE)]
    assert len(life.timeline.all_late()) == 3  # each scheduled event's lateness is counted


def test_a_saturated_generator_counts_uploads_not_sent(tmp_path: Path) -> None:
    queue, life, (a, _) = setting(tmp_path)
    queue.push(START + MINUTE, UploadDue(a, "a1", b"{}", None))
    queue.push(START + MINUTE, ClaimDue(a))
    dispatch(queue, life, max_in_flight=0)
    assert life.ledger.final == {"a1": Outcome.NOT_SENT.value}
    assert [what for what, _, _ in life.done] == ["claim"]  # only sends are refused


def test_a_phone_off_defers_its_events_and_loses_the_batch_it_was_collecting(
        tmp_path: Path) -> None:
    queue, life, (a, _) = setting(tmp_path, reboots_per_day=1.0)
    a.reboots = [Reboot(START + 10 * MINUTE, START + 20 * MINUTE)]

    def collected(start: int) -> Contribution:
        return Contribution(f"c{start}", start, 30, "u4pruyd", True, start + 5 * MINUTE, "u0")
    queue.push(START + 12 * MINUTE, UploadDue(a, "during", b"{}", collected(START + 7 * MINUTE)))
    queue.push(START + 17 * MINUTE, UploadDue(a, "off", b"{}", collected(START + 12 * MINUTE)))
    queue.push(START + 15 * MINUTE, ClaimDue(a))
    dispatch(queue, life)
    assert life.ledger.final == {"during": Outcome.KILLED.value, "off": Outcome.PHONE_OFF.value}
    assert life.done == [("claim", 0, START + 20 * MINUTE)]  # when the phone is back


def test_what_is_left_after_the_settle_period_is_accounted_for(tmp_path: Path) -> None:
    queue, life, (a, b) = setting(tmp_path)
    a.reboots = [Reboot(START + 10 * MINUTE, START + 200 * MINUTE)]
    late: list[tuple[int, Event]] = [(START + 150 * MINUTE, RetryDue(a, "a-late", b"{}", 3)),
                                     (START + 150 * MINUTE, RetryDue(b, "b-late", b"{}", 3))]
    for at, event in late:
        queue.push(at, event)
    dispatch(queue, life, settle_end_ms=START + 120 * MINUTE)
    assert life.ledger.final == {"a-late": Outcome.PHONE_OFF.value,
                                 "b-late": Outcome.NOT_SENT.value}
    assert life.done == [] and not queue


def test_the_kill_is_decided_as_the_fatal_operation_begins_and_the_process_dies_once(
        tmp_path: Path) -> None:
    """With every operation fatal, the first to begin (in simulated order) kills its
    process at its own instant; one of the same process that begins later only dies with
    it, whatever the wall clock does; one of the new process kills that one in turn."""
    queue, life, (phone, _) = setting(tmp_path)
    life.draws = RuntimeDraws(1, 1.0)
    old = phone.life
    kill_after, alive = life.doomed(phone, START + 5_000, old, "upload a", "upload")
    assert kill_after is not None and alive()  # dies by its own count, not with the process
    assert phone.life == old + 1 and life.kills == 1
    assert not phone.alive(old)()  # the rest of that process dies at its next effect
    again, alive_again = life.doomed(phone, START + 6_000, old, "upload b", "upload")
    assert again is None and not alive_again() and life.kills == 1
    assert [(at, type(event).__name__) for at, event in queue.take_all()] == [
        (START + 6_000, "AppStart")]
    assert life.doomed(phone, START + 7_000, phone.life, None, "claim")[0] is None
    assert life.doomed(phone, START + 8_000, phone.life, "claim d", "claim")[0] is not None
    assert life.kills == 2 and phone.life == old + 2
