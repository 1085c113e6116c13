"""Which phone a load-test user is: the master hands out phone indices across the cluster.

locust gives no cluster-wide user index, and workers get users as the master's dispatcher
decides; so each new user asks the master for a phone (a custom message) and gives it
back when it stops. Phone i's identity and data are a function of (seed, i) alone, so it
is the same phone whichever worker runs it.

Invariants: an index is held by at most one user at a time; a new user gets the lowest
free index, so N users hold exactly 0..N-1; every grant is recorded with its worker, and
no index reaches `phones` (the fleet's size): past it, the request is refused, not wrapped.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

from simulator.errors import FleetFull


@dataclass
class PhoneAllocator:
    """The master's book of phones (see the module docstring)."""

    phones: int
    _free: list[int] = field(default_factory=list)  # released indices, a heap
    _next: int = 0  # the lowest index never handed out
    holders: dict[int, str] = field(default_factory=dict)  # index -> worker
    grants: Counter[int] = field(default_factory=Counter)  # times each index was granted
    secrets: dict[int, str] = field(default_factory=dict)  # registered phones' secrets

    def acquire(self, worker: str) -> int:
        """The lowest free index, now held by `worker`."""
        if self._free:
            index = heapq.heappop(self._free)
        elif self._next < self.phones:
            index, self._next = self._next, self._next + 1
        else:
            raise FleetFull(f"all {self.phones} phones are in use: run at most that many "
                            "users, or raise --phones")
        self.holders[index] = worker
        self.grants[index] += 1
        return index

    def secret(self, index: int) -> str | None:
        """The secret phone `index` registered with, once a user gave it back (the
        backend registers a device once; the next holder needs it)."""
        return self.secrets.get(index)

    def release(self, index: int, worker: str, secret: str | None = None) -> None:
        """`worker`'s user of phone `index` stopped (with the phone's `secret`); a release
        by another worker, or of a free index, is ignored (a message repeated or from a
        worker that was replaced)."""
        if self.holders.get(index) != worker:
            return
        if secret:
            self.secrets[index] = secret
        del self.holders[index]
        heapq.heappush(self._free, index)

    def release_worker(self, worker: str) -> list[int]:
        """A worker left (quit or missing): every phone it held is free again."""
        held = sorted(i for i, w in self.holders.items() if w == worker)
        for index in held:
            self.release(index, worker)
        return held

    def spread(self) -> dict[str, int]:
        """Phones held per worker now."""
        return dict(Counter(self.holders.values()))
