"""Per-device rate limits: a token bucket for each authenticated device.

A device starts with `burst` tokens; each request it makes spends one; tokens come back
at `per_minute` a minute, up to `burst`. A request with no token left is refused with
429 and `Retry-After`: the whole seconds until a token is back. Time is the backend's
clock (simulated in a fleet run, so a phone's cadence and its limit scale together).

The defaults leave room for what a phone does: an upload and a pot sync every 5 minutes,
and a retry worker's run after a day offline (50 queued uploads, each with its pot sync:
100 requests at once). A device flooding the API gets a token a second.

Invariants: a bucket's tokens stay within [0, burst]; a refused request spends nothing;
the buckets are keyed by authenticated device only (a wrong secret cannot drain another
device's bucket), so there are at most as many as registered devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimit:
    """The limits (burst 0: no limit)."""

    burst: int = 120
    per_minute: float = 60.0

    @property
    def enabled(self) -> bool:
        return self.burst > 0


@dataclass
class TokenBuckets:
    """One bucket per key (see the module docstring)."""

    limit: RateLimit
    _buckets: dict[str, tuple[float, int]] = field(default_factory=dict)  # tokens, at ms

    def take(self, key: str, now_ms: int) -> int:
        """Spend a token of `key`'s bucket at `now_ms`: 0 if there was one, else the
        seconds until there is (at least 1), and nothing is spent."""
        if not self.limit.enabled:
            return 0
        burst, per_ms = self.limit.burst, self.limit.per_minute / 60_000
        tokens, then = self._buckets.get(key, (float(burst), now_ms))
        tokens = min(float(burst), tokens + max(0, now_ms - then) * per_ms)
        # a clock set back (a fleet's /_sim/clock) refills nothing and restarts from now
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now_ms)
            return 0
        self._buckets[key] = (tokens, now_ms)
        if per_ms <= 0:
            return 3600  # no refill: a token never comes back; ask for an hour
        return max(1, math.ceil((1.0 - tokens) / per_ms / 1000))
