"""Putting a push stream's messages back in `messageId` order: duplicates, reordering, gaps
and late arrivals, each counted.

Sensor Logger numbers the messages of a session 0, 1, 2, ... and delivers each at most once
(PUSHING.md), over HTTP requests that can overtake each other. `PushOrder` releases messages
in id order. A missing id is waited for until `depth` messages are held behind it or its
successor has waited `wait_s` (wall seconds, as the caller's clock says); then it is given
up as lost and the stream goes on.

Invariants:

- every id is released at most once; released ids increase, except for late messages;
- where the stream starts for us: 0 if the first id offered is below `depth` (a missing
  start is waited for as any gap, so messages 1 then 0 are simply reordered), else the
  first id offered (ggsim joined a running session): ids below it are never waited for,
  and one arriving later is late;
- `counts.missing` is the number of ids given up on that never arrived; a given-up id that
  arrives after all is late (`counts.late`), released at once (the caller decides what of
  it still applies), and no longer missing;
- `counts.reordered` counts messages that arrived after a higher id was held or released.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class OrderCounts:
    """How the stream arrived (module invariants)."""

    accepted: int = 0
    duplicates: int = 0
    reordered: int = 0
    missing: int = 0
    late: int = 0
    joined_at: int | None = None  # the first id offered


class PushOrder(Generic[T]):
    """Messages in, the same messages out in `messageId` order (module invariants)."""

    def __init__(self, depth: int, wait_s: float) -> None:
        if depth < 1 or not wait_s >= 0:
            raise ValueError(f"depth must be >= 1 and wait_s >= 0, got {depth}, {wait_s}")
        self.depth, self.wait_s = depth, wait_s
        self.counts = OrderCounts()
        self._next: int | None = None
        self._held: dict[int, tuple[T, float]] = {}
        self._seen: set[int] = set()
        self._given_up: set[int] = set()
        self._highest = -1
        self._late: list[T] = []

    def offer(self, message_id: int, item: T, now_s: float) -> str:
        """Take one message: "accepted", "duplicate" or "late" (released by `due` at once)."""
        if message_id in self._seen:
            self.counts.duplicates += 1
            return "duplicate"
        self._seen.add(message_id)
        self.counts.accepted += 1
        if message_id < self._highest:
            self.counts.reordered += 1
        self._highest = max(self._highest, message_id)
        if self._next is None:
            self._next = 0 if message_id < self.depth else message_id
            self.counts.joined_at = self._next
        if message_id < self._next:
            if message_id in self._given_up:
                self._given_up.discard(message_id)
                self.counts.missing -= 1
            self.counts.late += 1
            self._late.append(item)
            return "late"
        self._held[message_id] = (item, now_s)
        return "accepted"

    def due(self, now_s: float) -> list[T]:
        """Messages to apply now, in order: late ones, then the run of ids from the next
        expected one, giving up on a missing id once `depth` or `wait_s` is exceeded."""
        out, self._late = self._late, []
        while self._held:
            self._release_run(out)
            if not self._held:
                break
            oldest = min(arrived for _, arrived in self._held.values())
            if len(self._held) < self.depth and now_s - oldest < self.wait_s:
                break
            self._skip_to(min(self._held))
        return out

    def drain(self) -> list[T]:
        """Everything still held, in order, giving up on every gap (the stream has ended)."""
        out, self._late = self._late, []
        while self._held:
            self._skip_to(min(self._held))
            self._release_run(out)
        return out

    def _release_run(self, out: list[T]) -> None:
        assert self._next is not None or not self._held
        while self._next is not None and self._next in self._held:
            out.append(self._held.pop(self._next)[0])
            self._next += 1

    def _skip_to(self, message_id: int) -> None:
        assert self._next is not None
        skipped = range(self._next, message_id)
        self._given_up.update(skipped)
        self.counts.missing += len(skipped)
        self._next = message_id
