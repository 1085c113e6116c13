"""Simulated time for a fleet run: `speed` simulated seconds per wall second from a
start instant. Invariant: `now_ms` never goes backwards (it reads the event loop's
monotonic clock); `wall_delay_s` of an instant in the past is 0.

`OPERATION_MS`: the simulated instant a phone operation was scheduled for, set in the
operation's own task. The phone's code and the fault model use it as "now" instead of
the clock, so what happens to an operation does not depend on how late the generator
ran it (determinism; lateness is measured separately).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

OPERATION_MS: ContextVar[int | None] = ContextVar("operation_ms", default=None)


@dataclass
class SimClock:
    """Maps simulated epoch ms to the wall (monotonic) clock."""

    start_ms: int
    speed: float
    _t0: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        self._t0 = time.monotonic()

    def operation_ms(self) -> int:
        """The running operation's scheduled instant, or now outside an operation."""
        at = OPERATION_MS.get()
        return self.now_ms() if at is None else at

    def now_ms(self) -> int:
        """The simulated instant now."""
        return self.start_ms + int((time.monotonic() - self._t0) * 1000 * self.speed)

    def wall_at(self, sim_ms: int) -> float:
        """The monotonic time at which `sim_ms` happens."""
        return self._t0 + (sim_ms - self.start_ms) / 1000 / self.speed

    def wall_delay_s(self, sim_ms: int) -> float:
        """Wall seconds until `sim_ms` (0 if it has passed)."""
        return max(0.0, self.wall_at(sim_ms) - time.monotonic())

    def to_wall_s(self, sim_s: float) -> float:
        """A simulated duration in wall seconds."""
        return sim_s / self.speed
