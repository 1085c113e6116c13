"""Tracking-session boundaries, decided from the loaded windows alone: a session starts
just before the first window after a gap of over `SESSION_GAP_MS` (the phone idle) and
stops just after the last window before such a gap.

Pure: the functions read and set a phone's `in_session` and `last_due_ms` and hand the
events they decide to `schedule`; nothing here touches a file or the network. Invariant:
a phone's session stops are scheduled in order, each after its start, and never twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from simulator.fleet.events import Event, SessionStart, SessionStop

if TYPE_CHECKING:
    from simulator.fleet.phone import Phone

SESSION_GAP_MS = 10 * 60_000  # a longer gap between windows ends a tracking session
Schedule = Callable[[int, Event], None]


def track(phone: Phone, due: int, schedule: Schedule) -> None:
    """A full phone's window ends at `due` (loaded in order of time for the phone): start
    a session before it if none runs; stop the running one first when a gap inside what
    is loaded proves it over. The stop of the last session of a load is left to
    `end_sessions`."""
    if phone.db is None:
        return
    if phone.in_session and phone.last_due_ms is not None and (
            due - phone.last_due_ms > SESSION_GAP_MS):  # a gap inside what is loaded
        schedule(phone.last_due_ms + 1, SessionStop(phone))
        phone.in_session = False
    if not phone.in_session:
        schedule(due - 1, SessionStart(phone))
        phone.in_session = True
    phone.last_due_ms = due


def end_sessions(phones: Iterable[Phone], next_due_ms: int, schedule: Schedule) -> None:
    """Stop every session among `phones` that is sure to be over: no window of theirs is
    due before `next_due_ms` that is not loaded, so a last window more than
    SESSION_GAP_MS before it has none following within the gap. Decided as each piece
    loads, about an hour ahead, so the stop is dispatched when it is due (and the phone's
    `tracking` is right meanwhile), not hours later when the window that starts the next
    session happens to load."""
    for phone in phones:
        if phone.in_session and phone.last_due_ms is not None and (
                next_due_ms - phone.last_due_ms > SESSION_GAP_MS):
            schedule(phone.last_due_ms + 1, SessionStop(phone))
            phone.in_session = False
