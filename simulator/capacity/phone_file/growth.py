"""The file's growth over days of use (`measure_growth`): each growth variant lives the
cycled generated days on its own file, measured after each of the requested days; each
variant without maintenance then gets the late maintenance on its last day's file.

Invariants:
- Deterministic: the same seed and arguments give the same points (timings aside).
- Points come in variant order, then days; every upload of a growth run is acknowledged
  (`uploads` counts them all, `saved_uploads` those whose local insert succeeded).
- Each variant's file is deleted once measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simulator.capacity.phone_file.daily_use import live_day
from simulator.capacity.phone_file.generated_uploads import _day_uploads, _generate
from simulator.capacity.phone_file.maintenance_catch_up import catch_up
from simulator.capacity.phone_file.page_accounting import file_stats
from simulator.capacity.phone_file.parameters import (
    DEFAULT_SEED,
    FULL_DAYS,
    SAMPLE_DAYS,
    SESSIONS_PER_DAY,
    START_MS,
    Progress,
    _check_days,
)
from simulator.capacity.phone_file.results import CatchUp, GrowthPoint
from simulator.capacity.phone_file.simulated_phone import PhoneFile
from simulator.capacity.phone_file.variants import GrowthVariant, default_growth_variants
from simulator.seeds import check_seed


def _growth_point(phone: PhoneFile, variant: GrowthVariant, days: int, uploads: int
                  ) -> GrowthPoint:
    stats = file_stats(phone.conn)
    rows = stats.rows["contributions"]
    table = stats.table_bytes("contributions")
    return GrowthPoint(variant, phone.profile.name, days, uploads, phone.saved, rows,
                       stats.rows["tracking_sessions"], stats.file_bytes, stats.freelist_bytes,
                       table, table / rows if rows else 0.0,
                       stats.file_bytes / rows if rows else 0.0, stats)


def measure_growth(directory: Path, *, days: Sequence[int] = FULL_DAYS,
                   variants: Sequence[GrowthVariant] | None = None, seed: int = DEFAULT_SEED,
                   sample_days: int = SAMPLE_DAYS, sessions_per_day: int = SESSIONS_PER_DAY,
                   progress: Progress | None = None
                   ) -> tuple[list[GrowthPoint], list[CatchUp]]:
    """Each variant's file after each of `days` days of normal use (files in
    `directory`, one per variant), points in variant order, then days; and for each
    variant without maintenance, the catch-up on its last day's file."""
    points = _check_days(days, "days")
    check_seed(seed)
    say = progress or (lambda _: None)
    sample = _generate(seed, min(sample_days, points[-1]), START_MS, envelopes=False)
    result: list[GrowthPoint] = []
    catch_ups: list[CatchUp] = []
    for k, variant in enumerate(variants or default_growth_variants()):
        say(f"phone file: {variant.name}, {points[-1]} days")
        phone = PhoneFile(directory / f"growth-{k}.db", variant.profile,
                          auto_vacuum=variant.auto_vacuum, seed=seed)
        uploads = 0
        try:
            for day in range(points[-1]):
                batches = _day_uploads(sample, seed, day)
                live_day(phone, day, batches, variant.maintenance,
                         sessions_per_day=sessions_per_day)
                uploads += len(batches)
                if day + 1 in points:
                    result.append(_growth_point(phone, variant, day + 1, uploads))
        finally:
            phone.close()
        if variant.maintenance == "none":
            catch_ups.append(catch_up(phone.path, variant, points[-1]))
        phone.path.unlink()
    return result, catch_ups
