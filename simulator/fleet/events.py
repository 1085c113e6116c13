"""What a fleet run schedules: one frozen class per kind of event, and the queue that
orders them by simulated time.

Every event names its phone (the backend restart names its fault). `FOLLOW_UPS` are
scheduled from an operation's own instant, so when one is due in the past it is the
server's latency, not the generator's lateness; `SENDS` put a request on the wire, so the
dispatcher counts them not sent when the generator is saturated.

Invariant: the queue pops in (due time, scheduling order): two events due at the same
instant run in the order they were scheduled, so a run is deterministic by seed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.fleet.phone import Phone
    from simulator.fleet.scenario import DatabaseRestart, Restart
    from simulator.phone.app import Contribution


@dataclass(frozen=True, slots=True, eq=False)
class UploadDue:
    """A phone's window ended: its batch is uploaded (`contribution`: the full phone's
    local record; None for an upload-only phone)."""

    phone: Phone
    batch_id: str
    envelope: bytes
    contribution: Contribution | None


@dataclass(frozen=True, slots=True, eq=False)
class RetryDue:
    """An upload-only phone retries a batch (its retries are kept in memory)."""

    phone: Phone
    batch_id: str
    envelope: bytes
    attempt: int


@dataclass(frozen=True, slots=True, eq=False)
class DrainDue:
    """The retry worker (WorkManager) runs for the phone's upload queue."""

    phone: Phone


@dataclass(frozen=True, slots=True, eq=False)
class ClaimDue:
    """The user opens the app and claims the pot if it shows unlocked."""

    phone: Phone


@dataclass(frozen=True, slots=True, eq=False)
class SessionStart:
    phone: Phone


@dataclass(frozen=True, slots=True, eq=False)
class SessionStop:
    phone: Phone


@dataclass(frozen=True, slots=True, eq=False)
class AppStart:
    """The app process starts again after a kill or a reboot."""

    phone: Phone


@dataclass(frozen=True, slots=True, eq=False)
class PhoneReboot:
    """The phone goes off (it is back, and its app starts, at the reboot's end)."""

    phone: Phone


@dataclass(frozen=True, slots=True, eq=False)
class StormDue:
    """A dual-writer storm on the phone's file (`number`: which one of the phone's)."""

    phone: Phone
    number: int


@dataclass(frozen=True, slots=True, eq=False)
class BackendRestart:
    """The backend's process (`Restart`) or its database (`DatabaseRestart`) goes down
    for a while and comes back."""

    fault: Restart | DatabaseRestart


@dataclass(frozen=True, slots=True, eq=False)
class LiveEnd:
    """The run's end for its live phone (`fleet/live_phone.py`): the stream is closed and
    its last batches are sealed and uploaded."""

    phone: Phone


PhoneEvent = (UploadDue | RetryDue | DrainDue | ClaimDue | SessionStart | SessionStop
              | AppStart | PhoneReboot | StormDue)
Event = PhoneEvent | BackendRestart | LiveEnd
FOLLOW_UPS = (DrainDue, RetryDue, AppStart)
SENDS = (UploadDue, RetryDue)


class EventQueue:
    """Events by (due time, scheduling order); see the module docstring."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Event]] = []
        self._order = itertools.count()

    def push(self, at_ms: int, event: Event) -> None:
        heapq.heappush(self._heap, (at_ms, next(self._order), event))

    def pop(self) -> tuple[int, Event]:
        at_ms, _, event = heapq.heappop(self._heap)
        return at_ms, event

    def next_ms(self) -> int:
        """When the earliest event is due (the queue must not be empty)."""
        return self._heap[0][0]

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def take_all(self) -> Iterator[tuple[int, Event]]:
        """Every event left, in the queue's storage order (not sorted), emptying it."""
        heap, self._heap = self._heap, []
        for at_ms, _, event in heap:
            yield at_ms, event

    def __repr__(self) -> str:
        return f"EventQueue({len(self._heap)} events)"


def describe(event: Any) -> str:
    """The event's kind as progress and traces name it (`UploadDue` -> "upload")."""
    return _NAMES[type(event)]


_NAMES: dict[type, str] = {UploadDue: "upload", RetryDue: "retry", DrainDue: "drain",
                           ClaimDue: "claim", SessionStart: "session_start",
                           SessionStop: "session_stop", AppStart: "app_start",
                           PhoneReboot: "reboot", StormDue: "storm",
                           BackendRestart: "restart", LiveEnd: "live_end"}
