"""The check that batching a day into one transaction changes no b-tree page: the same
days with a commit per statement (as the app) and one per day (as the measurement),
compared page by page (`check_batching`, `differing_pages`).

Invariants:
- Batching: a simulated day's operations run in one transaction (the core's own
  BEGIN IMMEDIATE ... COMMIT become a SAVEPOINT inside it), so a year takes seconds per
  variant instead of a million commits. It changes no b-tree page: the same operations
  allocate and free the same pages whatever the commit boundaries; only page 1's change
  counter differs (and, with auto-vacuum, when free pages go back).
  `BatchingCheck` compares the first days page by page.
- Both files are deleted before `check_batching` returns.
"""

from __future__ import annotations

import time
from pathlib import Path

from simulator.capacity.phone_file.daily_use import live_day
from simulator.capacity.phone_file.generated_uploads import _day_uploads, _generate
from simulator.capacity.phone_file.page_accounting import file_stats
from simulator.capacity.phone_file.parameters import DEFAULT_SEED, START_MS
from simulator.capacity.phone_file.results import BatchingCheck
from simulator.capacity.phone_file.simulated_phone import PhoneFile
from simulator.capacity.phone_file.variants import GrowthVariant


def differing_pages(a: Path, b: Path, page_size: int) -> int:
    """Pages whose bytes differ between two files (a page only one has counts)."""
    one, two = a.read_bytes(), b.read_bytes()
    count = abs(len(one) - len(two)) // page_size
    for start in range(0, min(len(one), len(two)), page_size):
        count += one[start:start + page_size] != two[start:start + page_size]
    return count


def check_batching(directory: Path, variant: GrowthVariant, *, days: int,
                   seed: int = DEFAULT_SEED) -> BatchingCheck:
    """`days` days of `variant` twice: a commit per statement, then one per day."""
    sample = _generate(seed, days, START_MS, envelopes=False)
    stats, paths, seconds = [], [], []
    for batched in (False, True):
        path = directory / f"batching-{int(batched)}.db"
        began = time.perf_counter()
        phone = PhoneFile(path, variant.profile, auto_vacuum=variant.auto_vacuum, seed=seed)
        try:
            for day in range(days):
                live_day(phone, day, _day_uploads(sample, seed, day), variant.maintenance,
                         batched=batched)
            stats.append(file_stats(phone.conn))
        finally:
            phone.close()
        seconds.append(time.perf_counter() - began)
        paths.append(path)
    diff = differing_pages(paths[0], paths[1], stats[0].page_size_bytes)
    for path in paths:
        path.unlink()
    return BatchingCheck(variant, days, stats[0], stats[1], diff, seconds[0], seconds[1])
