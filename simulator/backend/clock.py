"""The backend's clock: the wall clock, or simulated time running at a fixed speed.

A fleet that lives a day in ten minutes needs a backend whose "now" (the day boundary of
the daily pot, the future-timestamp check, received_at) moves at the same speed.
Invariant: `now_ms` never goes backwards (it reads a monotonic clock after the start),
except when `restart_at` sets a new origin before a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class BackendClock:
    """Simulated instant `origin_ms` at start, advancing `speed` times real time; with no
    origin, the wall clock's instant at start."""

    origin_ms: int | None = None
    speed: float = 1.0
    _wall_origin_ms: int = field(default=0, init=False)
    _mono_origin: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"clock speed must be > 0, got {self.speed}")
        self._mono_origin = time.monotonic()
        self._wall_origin_ms = time.time_ns() // 1_000_000
        if self.origin_ms is None:
            self.origin_ms = self._wall_origin_ms

    def restart_at(self, origin_ms: int, speed: float | None = None) -> None:
        """Jump to simulated instant `origin_ms` now (a fleet run aligning the backend
        with its own clock as it starts); afterwards time moves forward again."""
        self.origin_ms = origin_ms
        if speed is not None:
            if not speed > 0:
                raise ValueError(f"clock speed must be > 0, got {speed}")
            self.speed = speed
        self._mono_origin = time.monotonic()

    def now_ms(self) -> int:
        """The backend's current instant, epoch ms."""
        assert self.origin_ms is not None
        return self.origin_ms + int((time.monotonic() - self._mono_origin) * 1000 * self.speed)
