"""Month-scale row counts by COPY: one schema variant's per-upload tables holding a whole
month of a generated fleet, loaded day after day into one scratch database and sized after
every day, with each day's COPY timed.

The per-seed storage runs measure bytes per row on a few days of a fleet, and the
projections extrapolate that slope to months and years; this run is the check that the
slope still holds at the row counts a month brings (B-tree depth, GIN posting lists,
TOAST and monthly partitions all at month size), and how ingest slows as the tables grow.
Invariant: bounded by `sample` (phones x days uploads, about 287 a phone-day); the growth
curve has one point per day (`daily_load`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from simulator.backend import migrations
from simulator.capacity import bulk_load
from simulator.capacity.daily_load import GrowthPoint, load_days, table_sizes
from simulator.capacity.pgsize import TableSize
from simulator.capacity.scratch import scratch_database
from simulator.capacity.workload import DAY_MS, FleetSample

Progress = Callable[[str], None]


@dataclass(frozen=True)
class MonthScale:
    """One variant's month (see the module docstring)."""

    variant: str
    sample: FleetSample
    growth: list[GrowthPoint]
    copy_s: list[float]  # each day's COPY
    final: dict[str, TableSize]  # the per-upload tables after the last day
    seconds: float  # the whole measurement: generation, COPY, VACUUM and sizing

    @property
    def rows(self) -> int:
        return self.growth[-1].uploads

    def copy_rows_per_s(self, day: int) -> float:
        """Rows a second of day `day`'s COPY (0-based)."""
        before = self.growth[day - 1].uploads if day else 0
        return (self.growth[day].uploads - before) / self.copy_s[day]


def measure_month_scale(server_url: str, variant: str, sample: FleetSample,
                        progress: Progress | None = None) -> MonthScale:
    """Load and size `sample` (see the module docstring)."""
    say = progress or (lambda _: None)
    migrations.namespace(variant)  # an unknown variant fails before any work
    started = time.perf_counter()
    with scratch_database(server_url, "month") as url:
        growth, copy_s, final = asyncio.run(_load(url, variant, sample, say))
    return MonthScale(variant, sample, growth, copy_s, final, time.perf_counter() - started)


async def _load(url: str, variant: str, sample: FleetSample, say: Progress
                ) -> tuple[list[GrowthPoint], list[float], dict[str, TableSize]]:
    conn = await bulk_load.connect(url, variant)
    try:
        if variant == "recommended":
            await bulk_load.ensure_months(conn, sample.start_ms - DAY_MS, sample.end_ms)
        loaded = await load_days(conn, variant, sample,
                                 f"{variant}: month scale, {sample.phones} phones", say)
        final = await table_sizes(conn, bulk_load.PER_UPLOAD_TABLES[variant])
        return loaded.growth, loaded.copy_s, final
    finally:
        await conn.close()
