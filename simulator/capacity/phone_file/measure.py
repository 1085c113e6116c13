"""The whole measurement (`measure_phone_file`): the growth of every default growth
variant (with the late maintenance), the batching check on both schemas, and the outages
of every default outage variant, in a temporary directory, timed.

Invariants:
- Deterministic: the same seed and arguments give the same report, `seconds` and the
  other timings aside (nothing else reads a clock).
- The files live in a temporary directory, on a RAM file system when there is one (every
  commit fsyncs, and the host disk's fsync time models nothing about a phone's flash),
  removed however the measurement ends.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from simulator.capacity.phone_file.batching import check_batching
from simulator.capacity.phone_file.growth import measure_growth
from simulator.capacity.phone_file.outage import measure_outages
from simulator.capacity.phone_file.parameters import (
    DEFAULT_SEED,
    FULL_DAYS,
    FULL_OUTAGE_DAYS,
    QUICK_DAYS,
    QUICK_OUTAGE_DAYS,
    SESSIONS_PER_DAY,
    START_MS,
    Progress,
    _check_days,
)
from simulator.capacity.phone_file.results import PhoneFileReport
from simulator.capacity.phone_file.variants import GrowthVariant
from simulator.phone import schema
from simulator.seeds import check_seed


@contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory, on a RAM file system when there is one: every commit
    fsyncs, and the host disk's fsync time models nothing about a phone's flash."""
    shm = Path("/dev/shm")
    parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="ggsim-phone-file-", dir=parent) as directory:
        yield Path(directory)


def measure_phone_file(*, days: Sequence[int] | None = None,
                       outage_days: Sequence[int] | None = None, seed: int = DEFAULT_SEED,
                       quick: bool = False, progress: Progress | None = None
                       ) -> PhoneFileReport:
    """The phone file's growth (`days`, default 7, 30, 90, 365; quick: 7, 30) for every
    `default_growth_variants()`, the batching check, and outages (`outage_days`, default
    1, 3, 7, 14, 30; quick: 1, 9) for every `default_outage_variants()`."""
    seed = check_seed(seed)
    if days is None:
        days = QUICK_DAYS if quick else FULL_DAYS
    if outage_days is None:
        outage_days = QUICK_OUTAGE_DAYS if quick else FULL_OUTAGE_DAYS
    growth_days, offline = _check_days(days, "days"), _check_days(outage_days, "outage_days")
    say = progress or (lambda _: None)
    seconds: dict[str, float] = {}
    with _workdir() as directory:
        began = time.perf_counter()
        growth, catch_ups = measure_growth(directory, days=growth_days, seed=seed,
                                           progress=say)
        seconds["growth"] = time.perf_counter() - began
        began = time.perf_counter()
        say("phone file: one commit per statement against one per day")
        batching = tuple(check_batching(directory, GrowthVariant(v, "none"),
                                        days=1 if quick else 2, seed=seed)
                         for v in (schema.V2, schema.V3))
        seconds["batching"] = time.perf_counter() - began
        began = time.perf_counter()
        outages, envelope_mean = measure_outages(directory, days=offline, seed=seed,
                                                 progress=say)
        seconds["outages"] = time.perf_counter() - began
    last = growth[-1]
    return PhoneFileReport(seed, quick, sqlite3.sqlite_version, last.stats.dbstat_available,
                           START_MS, SESSIONS_PER_DAY, last.uploads / last.days, envelope_mean,
                           tuple(growth), tuple(catch_ups), batching, tuple(outages), seconds)
