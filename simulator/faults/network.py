"""Network faults between a phone and the backend, as a `Transport` wrapper.

Per request of phone p, drawn from the scenario seed by counter (`uniform_hash` over p
and the request's key: its idempotency key, or its path and body, with the attempt
number), so a phone's faults depend neither on other phones nor on the order in which
its own concurrent requests happen to go out:
Windows (offline, server errors) are judged at the operation's scheduled instant
(`SimClock.operation_ms`), not at the wall-derived now, so a request near a window's
edge has the same fate whatever the generator's lateness.
- offline: during an `Offline` window, the phones it covers (a seeded share) get
  `NetworkError("offline")` at once, nothing is sent;
- server errors: during a `ServerErrors` window, a request answers `status` with the
  window's probability, without reaching the backend (a failing load balancer);
- loss: with `loss_probability`, the request is sent but the response is lost: the
  phone sees a timeout although the backend may have stored it (what makes idempotency
  keys necessary);
- latency: a lognormal delay (median and p99 in simulated ms) before the request,
  waited in wall time at the run's speed;
- timeout: a response slower than `timeout_s` is a timeout. It is measured in wall
  seconds, not compressed by the run's speed: the backend's own latency is real.
Invariant: every fault is a pure function of (seed, phone, request counter, time).
"""

from __future__ import annotations

import asyncio
import math
import zlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from simulator.drivers.network import Transport
from simulator.faults.options import Faults, Network
from simulator.phone.effects import Http, HttpResponse, NetworkError
from simulator.seeds import Stream, uniform_hash

Z99 = 2.3263478740408408  # standard normal 99th percentile


class Clock(Protocol):
    """What the fault model reads of the run's simulated time (the fleet's `SimClock`)."""

    def operation_ms(self) -> int:
        """The running operation's scheduled instant (simulated epoch ms)."""
        ...

    def to_wall_s(self, sim_s: float) -> float:
        """A simulated duration in wall seconds."""
        ...


@dataclass
class FaultCounts:
    """How often each fault fired (for the report)."""

    offline: int = 0
    server_errors: int = 0
    lost_responses: int = 0
    timeouts: int = 0


@dataclass
class NetworkFaults:
    """The fault model shared by all phones of a run."""

    seed: int
    network: Network
    faults: Faults
    clock: Clock
    start_ms: int
    counts: FaultCounts = field(default_factory=FaultCounts)

    def __post_init__(self) -> None:
        n = self.network
        self._mu = math.log(max(n.latency_ms_median, 1e-3))
        ratio = max(n.latency_ms_p99, 1e-3) / max(n.latency_ms_median, 1e-3)
        self._sigma = math.log(ratio) / Z99 if ratio > 1 else 0.0

    def _draw(self, phone: int, k: int, what: int) -> float:
        return float(uniform_hash(self.seed, Stream.NETWORK, np.int64(phone), np.int64(k),
                                  np.int64(what)))

    def offline(self, phone: int, at_ms: int) -> bool:
        """Is `phone` cut off at simulated instant `at_ms`?"""
        t_s = (at_ms - self.start_ms) / 1000
        for i, window in enumerate(self.network.offline):
            if window.at_s <= t_s < window.at_s + window.duration_s and float(uniform_hash(
                    self.seed, Stream.FAULTS, np.int64(phone), np.int64(i))) < window.share:
                return True
        return False

    def server_error(self, phone: int, k: int, at_ms: int) -> int | None:
        t_s = (at_ms - self.start_ms) / 1000
        for window in self.faults.server_errors:
            if window.at_s <= t_s < window.at_s + window.duration_s and self._draw(
                    phone, k, 3) < window.probability:
                return window.status
        return None

    def latency_ms(self, phone: int, k: int) -> float:
        """The injected one-way delay of request k (simulated ms)."""
        if self.network.latency_ms_median <= 0:
            return 0.0
        u = min(max(self._draw(phone, k, 1), 1e-12), 1 - 1e-12)
        z = math.sqrt(2) * _erfinv(2 * u - 1)
        return math.exp(self._mu + self._sigma * z)

    def for_phone(self, inner: Transport, phone: int) -> PhoneTransport:
        return PhoneTransport(self, inner, phone)


def _erfinv(y: float) -> float:
    # the standard library has no inverse erf; scipy's costs ~10 us a call, this ~1 us
    from scipy.special import erfinv
    return float(erfinv(y))


@dataclass
class PhoneTransport:
    """One phone's view of the network (implements `Transport`)."""

    model: NetworkFaults
    inner: Transport
    phone: int
    attempts: dict[str, int] = field(default_factory=dict)

    def _key(self, request: Http) -> int:
        """A counter for the fault draws: stable per (request identity, attempt)."""
        identity = dict(request.headers).get("Idempotency-Key") or (
            f"{request.method} {request.path} {zlib.crc32(request.body)}")
        attempt = self.attempts.get(identity, 0)
        self.attempts[identity] = attempt + 1
        return (zlib.crc32(identity.encode()) << 12) + min(attempt, 4095)

    async def __call__(self, request: Http) -> HttpResponse:
        m, k = self.model, self._key(request)
        now = m.clock.operation_ms()
        if m.offline(self.phone, now):
            m.counts.offline += 1
            raise NetworkError("offline", "no network")
        delay_ms = m.latency_ms(self.phone, k)
        if delay_ms:
            await asyncio.sleep(m.clock.to_wall_s(delay_ms / 1000))
        status = m.server_error(self.phone, k, now)
        if status is not None:
            m.counts.server_errors += 1
            return HttpResponse(status, b'{"error": "injected"}')
        try:
            response = await asyncio.wait_for(self.inner(request), timeout=m.network.timeout_s)
        except TimeoutError:
            m.counts.timeouts += 1
            raise NetworkError("timeout", "no response in time") from None
        if m.network.loss_probability and m._draw(self.phone, k, 2) < (
                m.network.loss_probability):
            m.counts.lost_responses += 1
            raise NetworkError("timeout", "response lost")
        return response
