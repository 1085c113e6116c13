"""Backend storage per table, measured on a real PostgreSQL for one schema variant and one
seed: a sample stored through the API, the same uploads stored by COPY (the two must give
the same bytes per row), then a larger fleet by COPY day after day (the growth curve), and
under `recommended` the §5.4 archive move.

Each load goes into its own scratch database, so a size is the size of exactly the rows
described. Sizes are read after `VACUUM (ANALYZE)`, as on a server whose autovacuum has
run. Invariant: `StorageRun.growth` holds one point per bulk day, rows strictly rising.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.backend import jobs, migrations
from simulator.backend.store import instant
from simulator.capacity import bulk_load
from simulator.capacity.api_load import ApiLoad, load_through_api
from simulator.capacity.daily_load import GrowthPoint, load_days, table_sizes
from simulator.capacity.pgsize import JsonColumnSize, TableSize, json_column_size
from simulator.capacity.scratch import scratch_database
from simulator.capacity.workload import DAY_MS, FleetSample, Upload, uploads

AGGREGATE_TABLES = ("sensor_aggregates_5m", "sensor_aggregates_daily")
DEVICE_ROWS = 20_000  # enough devices that a per-device table's fixed pages do not count
Progress = Callable[[str], None]


@dataclass(frozen=True)
class StorageRun:
    """One variant, one seed (see the module docstring)."""

    variant: str
    seed: int
    api_sample: FleetSample
    bulk_sample: FleetSample
    api_load: ApiLoad
    api: dict[str, TableSize]  # every table after the API sample and one aggregation run
    bulk_same: dict[str, TableSize]  # the API sample's uploads, stored by COPY
    growth: list[GrowthPoint]
    bulk: dict[str, TableSize]  # after the whole bulk fleet
    batch_json: JsonColumnSize
    archive: TableSize | None  # recommended: the first bulk day moved by archive_old_batches
    devices: dict[str, TableSize]  # the per-device tables at `DEVICE_ROWS` devices
    aggregates: dict[str, TableSize]  # the aggregation job's tables over the bulk fleet
    uploads_per_phone_day: float
    readings_per_upload: float
    seconds: dict[str, float] = field(default_factory=dict)


def measure_storage(server_url: str, variant: str, *, seed: int, api_sample: FleetSample,
                    bulk_sample: FleetSample, progress: Progress | None = None) -> StorageRun:
    """Measure one variant (see the module docstring); bounded by the two samples' sizes."""
    say = progress or (lambda _: None)
    migrations.namespace(variant)  # an unknown variant fails before any work
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    sample = list(uploads(api_sample))
    with scratch_database(server_url, "api") as url:
        say(f"{variant}, seed {seed}: {len(sample):,} uploads through the API")
        # a day after the sample: phones whose clocks run fast are not in the server's future
        loaded = load_through_api(url, variant, sample, api_sample.end_ms + DAY_MS, say)
        api = asyncio.run(_measure_api(url, variant, api_sample))
    seconds["api"] = time.perf_counter() - started
    with scratch_database(server_url, "bulk") as url:
        started = time.perf_counter()
        bulk_same = asyncio.run(_copy_and_measure(url, variant, sample, api_sample))
        seconds["bulk_same"] = time.perf_counter() - started
        started = time.perf_counter()
        growth, bulk, json_size, archive, aggregates, counts = asyncio.run(
            _grow(url, variant, bulk_sample, say))
        seconds["bulk"] = time.perf_counter() - started
        devices = asyncio.run(_devices_at_scale(url, variant, sample[0]))
    phone_days = bulk_sample.phones * bulk_sample.days
    return StorageRun(variant, seed, api_sample, bulk_sample, loaded, api, bulk_same, growth,
                      bulk, json_size, archive, devices, aggregates, counts[0] / phone_days,
                      counts[1] / max(counts[0], 1), seconds)


def _tables(variant: str) -> tuple[str, ...]:
    return (*bulk_load.PER_UPLOAD_TABLES[variant], *bulk_load.PER_DEVICE_TABLES)


async def _measure_api(url: str, variant: str, sample: FleetSample) -> dict[str, TableSize]:
    conn = await bulk_load.connect(url, variant)
    try:
        await jobs.aggregate(conn, variant, sample.end_ms, lag_s=0.0,
                             lookback_s=(sample.end_ms - sample.start_ms) / 1000 + 3600)
        return await table_sizes(conn, (*_tables(variant), *AGGREGATE_TABLES))
    finally:
        await conn.close()


async def _copy_and_measure(url: str, variant: str, batches: list[Upload],
                            sample: FleetSample) -> dict[str, TableSize]:
    conn = await bulk_load.connect(url, variant)
    try:
        if variant == "recommended":
            await bulk_load.ensure_months(conn, sample.start_ms - DAY_MS, sample.end_ms)
        await bulk_load.copy_uploads(conn, variant, batches)
        await bulk_load.copy_devices(conn, variant, batches)
        sizes = await table_sizes(conn, _tables(variant))
        await bulk_load.truncate(conn, variant)
        return sizes
    finally:
        await conn.close()


async def _grow(url: str, variant: str, sample: FleetSample, say: Progress
                ) -> tuple[list[GrowthPoint], dict[str, TableSize], JsonColumnSize,
                           TableSize | None, dict[str, TableSize], tuple[int, int]]:
    conn = await bulk_load.connect(url, variant)
    try:
        if variant == "recommended":
            await bulk_load.ensure_months(conn, sample.start_ms - DAY_MS, sample.end_ms)
        loaded = await load_days(conn, variant, sample,
                                 f"{variant}, seed {sample.seed}: bulk", say)
        await bulk_load.copy_devices(conn, variant, loaded.last.values())
        bulk = await table_sizes(conn, _tables(variant))
        json_size = await json_column_size(conn, "sensor_batches", "batch_json",
                                           sample_rows=20_000)
        say(f"{variant}, seed {sample.seed}: the aggregation job over the bulk fleet")
        await jobs.aggregate(conn, variant, sample.end_ms, lag_s=0.0,
                             lookback_s=(sample.end_ms - sample.start_ms) / 1000 + 3600)
        aggregates = await table_sizes(conn, AGGREGATE_TABLES)
        archive = await _archive_first_day(conn, sample) if variant == "recommended" else None
        return (loaded.growth, bulk, json_size, archive, aggregates,
                (loaded.uploads, loaded.readings))
    finally:
        await conn.close()


async def _devices_at_scale(url: str, variant: str, template: Upload) -> dict[str, TableSize]:
    """The per-device tables holding `DEVICE_ROWS` devices whose ids have the generator's
    shape (the template's with another phone number)."""
    prefix, user_prefix = template.device_id[:-6], template.user_id[:-6]
    devices = [dataclasses.replace(template, device_id=f"{prefix}{i:06d}",
                                   user_id=f"{user_prefix}{i:06d}") for i in range(DEVICE_ROWS)]
    conn = await bulk_load.connect(url, variant)
    try:
        await bulk_load.truncate(conn, variant)
        await bulk_load.copy_devices(conn, variant, devices)
        return await table_sizes(conn, bulk_load.PER_DEVICE_TABLES)
    finally:
        await conn.close()


async def _archive_first_day(conn: Any, sample: FleetSample) -> TableSize:
    """§5.4's move (as made to work in the recommended schema) of the first bulk day."""
    await conn.fetchval("SELECT archive_old_batches($1)",
                        instant(sample.start_ms + DAY_MS))
    return (await table_sizes(conn, ("sensor_batches_archive",)))["sensor_batches_archive"]
