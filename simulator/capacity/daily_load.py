"""A generated fleet stored by COPY one day at a time, with the per-upload tables sized
after every day: the growth curve that bytes per row are read from.

Invariant: `DaysLoaded.growth` holds one point per loaded day, uploads strictly rising,
and `copy_s` one COPY duration per day (generation and sizing excluded); sizes are read
after `VACUUM (ANALYZE)`, as on a server whose autovacuum has run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.capacity import bulk_load
from simulator.capacity.pgsize import TableSize, table_size
from simulator.capacity.workload import FleetSample, Upload, uploads

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GrowthPoint:
    """Sizes after a bulk day: the per-upload tables' bytes at `uploads` rows."""

    uploads: int
    total_bytes: dict[str, int]


@dataclass(frozen=True)
class DaysLoaded:
    """What a day-by-day load stored (see the module docstring)."""

    growth: list[GrowthPoint]
    copy_s: list[float]
    last: dict[str, Upload]  # each device's last upload: the per-device rows' source
    uploads: int
    readings: int


async def table_sizes(conn: Any, tables: tuple[str, ...]) -> dict[str, TableSize]:
    """Each table's size after `VACUUM (ANALYZE)` of it."""
    for table in tables:
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    return {table: await table_size(conn, table) for table in tables}


async def load_days(conn: Any, variant: str, sample: FleetSample, label: str,
                    say: Progress) -> DaysLoaded:
    """COPY `sample` day by day into the connected, prepared database (partitions for the
    recommended schema must exist), sizing the per-upload tables after each day."""
    per_upload = bulk_load.PER_UPLOAD_TABLES[variant]
    growth: list[GrowthPoint] = []
    copy_s: list[float] = []
    last: dict[str, Upload] = {}
    count = readings = 0
    days = int(sample.days)
    for day in range(days):
        batches = list(uploads(sample, first_day=day, days=1))
        started = time.perf_counter()
        await bulk_load.copy_uploads(conn, variant, batches)
        copy_s.append(time.perf_counter() - started)
        last.update((b.device_id, b) for b in batches)
        count += len(batches)
        readings += sum(b.samples for b in batches)
        sizes = await table_sizes(conn, per_upload)
        growth.append(GrowthPoint(count, {t: s.total_bytes for t, s in sizes.items()}))
        say(f"{label}: day {day + 1} of {days}, {count:,} uploads by COPY")
    return DaysLoaded(growth, copy_s, last, count, readings)
