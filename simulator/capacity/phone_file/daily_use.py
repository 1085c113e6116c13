"""A day of use on a phone file (`live_day`): the app starts once, at midnight (with the
variant's maintenance), then the day's uploads and tracking-session boundaries run in
time order; the boundaries are seeded instants (`session_times`).

Invariants:
- Deterministic: the session boundaries are a function of the seed and the day.
- Batched (the default), a day's operations run in one transaction; the app start runs
  before it (see `batching` for why the file's b-trees do not change).
- Where the model simplifies: the app starts once a day (the fleet runner starts it, and
  runs its maintenance, after every kill or reboot); session boundaries are seeded
  instants (the runner's come from gaps between uploads, which a generated day rarely
  has).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulator.capacity.phone_file.generated_uploads import PlannedUpload
from simulator.capacity.phone_file.parameters import (
    DAY_MS,
    PHONE,
    SESSIONS_PER_DAY,
    START_MS,
)
from simulator.capacity.phone_file.simulated_phone import PhoneFile
from simulator.seeds import Stream, uniform_hash


def session_times(seed: int, day: int, start_ms: int = START_MS,
                  sessions_per_day: int = SESSIONS_PER_DAY) -> list[int]:
    """The instants of day `day` at which a tracking session ends and the next begins
    (the first begins at the app's start at midnight): `sessions_per_day - 1` seeded
    instants."""
    keys = np.arange(sessions_per_day - 1, dtype=np.int64) + 7_000_000 + 16 * day
    u = uniform_hash(seed, Stream.RUNTIME, np.int64(PHONE), keys)
    return sorted(start_ms + day * DAY_MS + int(x * DAY_MS) for x in np.atleast_1d(u))


def live_day(phone: PhoneFile, day: int, uploads: Sequence[PlannedUpload], maintenance: str,
             *, batched: bool = True, start_ms: int = START_MS,
             sessions_per_day: int = SESSIONS_PER_DAY) -> None:
    """Day `day` on `phone`: the app start (with `maintenance`), then the day's uploads
    and session boundaries in time order; in one transaction when `batched`."""
    phone.app_start(start_ms + day * DAY_MS, maintenance)
    boundaries = session_times(phone.seed, day, start_ms, sessions_per_day)
    if batched:
        phone.begin_day()
    r = 0
    for batch, jitter in zip(uploads, phone.jitters(uploads), strict=True):
        while r < len(boundaries) and boundaries[r] <= batch.due_ms:
            phone.session_boundary(boundaries[r])
            r += 1
        phone.upload(batch, jitter)
    for at in boundaries[r:]:
        phone.session_boundary(at)
    if batched:
        phone.end_day()
