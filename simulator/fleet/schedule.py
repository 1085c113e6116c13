"""Seed-fixed plans (when each user claims the pot, when storms hit a phone) and the
runtime draws of fully simulated phones (retry jitter, app kills), each keyed by what is
decided, never by when the dispatcher got to it.

Invariant: a draw is a pure function of (seed, phone, kind of decision, its key), so the
same scenario and seed make the same decisions however late a run is; each kind of
decision is its own index (`Draw`) in `Stream.RUNTIME`, so two different decisions never
draw the same number (hand-picked key offsets used to overlap: a batch id's crc32 spans
every other kind's range).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator
from enum import IntEnum

from simulator.instants import DAY_MS, HOUR_MS
from simulator.seeds import Stream, uniform_hash_scalar

RETRY_WORKER_JITTERS = 4  # uniforms a retry-worker run uses
MAX_KILL_EFFECTS = 6  # a killed operation dies after 0..5 effects


class Draw(IntEnum):
    """The kinds of runtime decision (see the module docstring)."""

    RETRY_WORKER = 1  # keys: the run's instant, which of its uniforms
    LIGHT_RETRY = 2  # key: the attempt
    UPLOAD_JITTER = 3  # key: crc32 of the batch id
    STORM_PHASE = 4
    STORM_KIND = 5  # key: the storm's number
    CLAIM_HOUR = 6  # key: the epoch day
    KILL = 7  # keys: crc32 of the operation, then 0 (whether) or 1 (after how many effects)


class RuntimeDraws:
    """The runtime decisions of one run's phones (see the module docstring)."""

    def __init__(self, seed: int, app_kill_probability: float) -> None:
        self.seed = seed
        self.app_kill_probability = app_kill_probability

    def _uniform(self, phone: int, draw: Draw, *keys: int) -> float:
        return uniform_hash_scalar(self.seed, Stream.RUNTIME, phone, int(draw), *keys)

    def drain_jitters(self, phone: int, at_ms: int) -> list[float]:
        """The uniforms of the phone's retry-worker run at true time `at_ms` (its instant,
        not its number: whether a due run starts or finds the worker busy is timing)."""
        return [self._uniform(phone, Draw.RETRY_WORKER, at_ms, i)
                for i in range(RETRY_WORKER_JITTERS)]

    def retry_jitter(self, phone: int, attempt: int) -> float:
        """An upload-only phone's backoff jitter before retry `attempt`."""
        return self._uniform(phone, Draw.LIGHT_RETRY, attempt)

    def upload_jitter(self, phone: int, batch_id: str) -> float:
        """A full phone's backoff jitter for the first retry of `batch_id`."""
        return self._uniform(phone, Draw.UPLOAD_JITTER, zlib.crc32(batch_id.encode()))

    def storm_phase(self, phone: int) -> float:
        return self._uniform(phone, Draw.STORM_PHASE)

    def storm_kind(self, phone: int, number: int) -> float:
        """The uniform that picks storm `number`'s race and its interleaving."""
        return self._uniform(phone, Draw.STORM_KIND, number)

    def claim_hour(self, phone: int, day: int) -> float:
        """The user's hour (10:00-20:00 UTC) of opening the app on epoch day `day`."""
        return 10 + 10 * self._uniform(phone, Draw.CLAIM_HOUR, day)

    def kill_after(self, phone: int, key: str) -> int | None:
        """Whether the operation `key` of `phone` is killed, and after how many effects."""
        p = self.app_kill_probability
        if not p:
            return None
        k = zlib.crc32(key.encode())
        if self._uniform(phone, Draw.KILL, k, 0) >= p:
            return None
        return int(MAX_KILL_EFFECTS * self._uniform(phone, Draw.KILL, k, 1))


def claim_times(draws: RuntimeDraws, phones: Iterable[int], start_ms: int, end_ms: int
                ) -> Iterator[tuple[int, int]]:
    """(instant, phone): each user opens the app once a day at a seeded time between
    10:00 and 20:00 UTC, within [start_ms, end_ms)."""
    first_day = start_ms // DAY_MS
    for phone in phones:
        for day in itertools.count(first_day):
            at = day * DAY_MS + int(draws.claim_hour(phone, day) * HOUR_MS)
            if at >= end_ms:
                break
            if at >= start_ms:
                yield at, phone


def storm_times(draws: RuntimeDraws, phones: Iterable[int], per_hour: float, start_ms: int,
                end_ms: int) -> Iterator[tuple[int, int, int]]:
    """(instant, phone, number): `per_hour` storms a phone, evenly spaced from a seeded
    phase, within [start_ms, end_ms); none when `per_hour` is 0."""
    if not per_hour:
        return
    interval_ms = HOUR_MS / per_hour
    for phone in phones:
        phase = draws.storm_phase(phone)
        for k in itertools.count():
            at = start_ms + int((k + phase) * interval_ms)
            if at >= end_ms:
                break
            yield at, phone, k
