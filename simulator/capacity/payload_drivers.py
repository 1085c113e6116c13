"""What drives the payload's size, on the wire and in PostgreSQL: how the phone writes
numbers, whether it has a barometer, and how many readings a batch holds.

Variants: every combination of `NUMBER_FORMATS` (float32, float64, round2, orgjson; see
docs/payload.md), barometer or not (`FleetConfig.barometer_share` 1 and 0: the same phones,
so the pressure fields are the only difference) and `READINGS_PER_BATCH` (10, 30, 60, 120).

Readings per batch. The generator samples every 10 s and closes a batch every 5 minutes, a
rate it cannot change: 30 is the generator's own batches, the app's (a few hold fewer or
more readings: a reading lost or duplicated, the app killed). Any other size R regroups each
phone's readings in time order into consecutive batches of exactly R (10: a third of a
window; 60: two windows; 120: four), never across a gap in the phone's windows, the
remainder dropped. A regrouped batch takes its batch fields (ids, location, battery, window
start) from the generator batch of its first reading and its window end from that of its
last; its summary is computed from its own readings, as the encoder always does. Those
fields have fixed or nearly fixed widths, so the sizes are those of a phone that batches R
readings (three 10-reading batches of one window share that window's ids, which no size
depends on).

Stored as the backend stores it: every envelope is parsed by the API's own parser
(`workload.decoded`, i.e. `backend.payload.decode_upload`, which also proves each variant's
bytes are uploads the API accepts) and the payload's JSON text, byte for byte, goes into a
`batch_json jsonb` column through the backend's binary codec (`backend.app.init_connection`),
by COPY. Each variant gets a fresh table `(batch_json jsonb)` and no index; after
`VACUUM (ANALYZE)` it is measured by PostgreSQL's own accounting (`pgsize`):
`pg_column_size(batch_json)` (the stored datum after TOAST compression, header included),
`octet_length(batch_json::text)` (JSONB's canonical text: a space after each `:` and `,`,
numbers as `numeric` prints them) and the table's `pg_total_relation_size` per row (heap,
TOAST and maps).

Invariants: deterministic, the same (seed, phones, hours, start) on the same server gives
the same report except `elapsed_s`; the variants are measured in a scratch schema of the
given database that is dropped however the measurement ends, and nothing else is touched.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from simulator.backend.app import init_connection
from simulator.capacity.pgsize import json_column_size, table_size
from simulator.capacity.workload import decoded
from simulator.errors import UsageError
from simulator.instants import parse_instant
from simulator.sensors import FleetConfig, FleetGenerator
from simulator.sensors.batch import BatchBlock, concat, offsets_from_counts
from simulator.sensors.encode import NumberFormat, encode

NUMBER_FORMATS = ("float32", "float64", "round2", "orgjson")
READINGS_PER_BATCH = (10, 30, 60, 120)
APP_READINGS_PER_BATCH = 30  # the generator's own batches: 5 minutes at 10 s
START = "2024-01-01T08:00:00Z"  # a Monday morning, as docs/payload.md's measurements
PHONES, HOURS = 40, 3.0
QUICK_PHONES, QUICK_HOURS = 8, 1.0

_schemas = itertools.count()


@dataclass(frozen=True)
class VariantSize:
    """One variant's uploads: their JSON on the wire and what PostgreSQL stores for them."""

    number_format: str
    barometer: bool
    readings_per_batch: int  # the variant's size (30: the generator's own batches)
    uploads: int
    readings_per_upload_mean: float
    envelope_bytes_mean: float  # the upload body as POSTed (no newline)
    payload_bytes_mean: float  # the payload's JSON text: what batch_json is given
    stored_bytes_mean: float  # avg pg_column_size(batch_json): after TOAST compression
    jsonb_text_bytes_mean: float  # avg octet_length(batch_json::text)
    compressed_share: float  # rows whose batch_json is stored compressed (0..1)
    table_bytes_per_row: float  # pg_total_relation_size / rows, after VACUUM
    heap_bytes_per_row: float
    toast_bytes_per_row: float

    @property
    def payload_to_stored_ratio(self) -> float:
        """Payload JSON bytes per stored byte (above 1: PostgreSQL stores less)."""
        return self.payload_bytes_mean / self.stored_bytes_mean

    @property
    def stored_bytes_per_reading(self) -> float:
        return self.stored_bytes_mean / self.readings_per_upload_mean


@dataclass(frozen=True)
class PayloadDriversReport:
    """Every variant's sizes, and how they were made."""

    seed: int
    phones: int
    hours: float
    start_ms: int
    server_version: str
    toast_compression: str  # the server's default_toast_compression
    sizes: tuple[VariantSize, ...]
    elapsed_s: float  # wall time of the whole measurement (the one non-deterministic field)

    def size(self, number_format: str, barometer: bool, readings_per_batch: int) -> VariantSize:
        """The sizes of one variant (`KeyError` if it was not measured)."""
        for size in self.sizes:
            if (size.number_format, size.barometer, size.readings_per_batch) == (
                    number_format, barometer, readings_per_batch):
                return size
        raise KeyError((number_format, barometer, readings_per_batch))

    def table(self) -> list[str]:
        """The sizes as Markdown table lines."""
        lines = ["| format | barometer | readings | uploads | envelope B | payload B | "
                 "stored B | JSONB text B | table B/row | payload/stored |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for s in self.sizes:
            lines.append(
                f"| {s.number_format} | {'yes' if s.barometer else 'no'} | "
                f"{s.readings_per_batch} | {s.uploads} | {s.envelope_bytes_mean:,.0f} | "
                f"{s.payload_bytes_mean:,.0f} | {s.stored_bytes_mean:,.0f} | "
                f"{s.jsonb_text_bytes_mean:,.0f} | {s.table_bytes_per_row:,.0f} | "
                f"{s.payload_to_stored_ratio:.2f} |")
        return lines


def measure_payload_drivers(database_url: str, *, seed: int = 1, phones: int | None = None,
                            hours: float | None = None, quick: bool = False,
                            progress: Callable[[str], None] | None = None
                            ) -> PayloadDriversReport:
    """Measure every variant (see the module docstring) on the PostgreSQL at `database_url`.

    `phones` and `hours` default to 40 phones for 3 hours (`quick`: 8 phones for 1 hour,
    a few seconds); the fleet starts at `START`.
    """
    phones = (QUICK_PHONES if quick else PHONES) if phones is None else phones
    hours = (QUICK_HOURS if quick else HOURS) if hours is None else hours
    if phones < 1 or not hours > 0:
        raise UsageError(f"payload drivers need phones >= 1 and hours > 0, got {phones}, "
                         f"{hours}")
    return asyncio.run(_measure(database_url, seed, phones, hours, progress or _silent))


def _silent(message: str) -> None:
    """The default `progress`: say nothing."""


async def _measure(database_url: str, seed: int, phones: int, hours: float,
                   progress: Callable[[str], None]) -> PayloadDriversReport:
    started = time.perf_counter()
    start_ms = parse_instant(START)
    conn = await asyncpg.connect(database_url, timeout=30)
    schema = f"ggsim_payload_drivers_{os.getpid()}_{next(_schemas)}"
    try:
        await init_connection(conn)
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        sizes = []
        for barometer in (True, False):
            fleet = generate(seed, phones, hours, start_ms, barometer=barometer)
            for readings in READINGS_PER_BATCH:
                block = fleet if readings == APP_READINGS_PER_BATCH else regroup(fleet, readings)
                for number_format in NUMBER_FORMATS:
                    size = await _measure_variant(conn, schema, block, number_format,
                                                  barometer, readings)
                    progress(f"{number_format} barometer={barometer} readings={readings}: "
                             f"{size.payload_bytes_mean:,.0f} B JSON, "
                             f"{size.stored_bytes_mean:,.0f} B stored")
                    sizes.append(size)
        version = str(await conn.fetchval("SHOW server_version"))
        compression = str(await conn.fetchval("SHOW default_toast_compression"))
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    return PayloadDriversReport(seed=seed, phones=phones, hours=hours, start_ms=start_ms,
                                server_version=version, toast_compression=compression,
                                sizes=tuple(sizes), elapsed_s=time.perf_counter() - started)


def generate(seed: int, phones: int, hours: float, start_ms: int, *,
             barometer: bool) -> BatchBlock:
    """The fleet's batches as one block, every phone with a barometer or none."""
    config = FleetConfig(seed=seed, phones=phones, start_ms=start_ms, hours=hours,
                         barometer_share=1.0 if barometer else 0.0)
    return concat(list(FleetGenerator(config).iter_blocks()))


def regroup(block: BatchBlock, readings_per_batch: int) -> BatchBlock:
    """Each phone's readings in time order as batches of exactly `readings_per_batch`
    consecutive readings, never across a gap in its windows (see the module docstring)."""
    if readings_per_batch < 1:
        raise UsageError(f"readings per batch must be >= 1, got {readings_per_batch}")
    ordered = block.take(np.lexsort((block.seq, block.phone)))
    source = np.repeat(np.arange(ordered.size), ordered.counts)  # batch of each reading
    first = _group_starts(ordered, source, readings_per_batch)
    last = first + readings_per_batch - 1
    reading_index = (first[:, None] + np.arange(readings_per_batch)).ravel()
    batches = ordered.take(source[first])
    values: dict[str, Any] = {f.name: getattr(batches, f.name) for f in fields(BatchBlock)}
    for name in ("t_ms", "light", "accel", "gyro", "pressure"):
        values[name] = getattr(ordered, name)[reading_index]
    values["offsets"] = offsets_from_counts(np.full(first.size, readings_per_batch, np.int64))
    values["period_end_ms"] = ordered.period_end_ms[source[last]]
    return BatchBlock(**values)


def _group_starts(ordered: BatchBlock, source: npt.NDArray[np.intp],
                  readings_per_batch: int) -> npt.NDArray[np.intp]:
    """Where each full group starts: every R-th reading of a run of a phone's readings in
    consecutive windows, if the run has R readings from there."""
    phone, seq = ordered.phone[source], ordered.seq[source]
    breaks = np.ones(source.size, dtype=bool)  # a run starts at a new phone or after a gap
    breaks[1:] = (phone[1:] != phone[:-1]) | (seq[1:] - seq[:-1] > 1)
    run_start = np.flatnonzero(breaks)
    run_end = np.append(run_start[1:], source.size)
    run = np.cumsum(breaks) - 1
    position = np.arange(source.size) - run_start[run]
    starts: npt.NDArray[np.intp] = np.flatnonzero(position % readings_per_batch == 0)
    full = starts + readings_per_batch <= run_end[run[starts]]
    kept: npt.NDArray[np.intp] = starts[full]
    return kept


async def _measure_variant(conn: Any, schema: str, block: BatchBlock, number_format: str,
                           barometer: bool, readings: int) -> VariantSize:
    if block.size == 0:
        raise UsageError(f"no batch of {readings} readings: the fleet is too small (give more "
                         "phones or hours)")
    bodies = [line.rstrip(b"\n") for line in encode(block, NumberFormat(number_format)).lines()]
    payloads = [decoded(body).payload for body in bodies]
    table = f"{number_format}_{'baro' if barometer else 'nobaro'}_{readings}"
    qualified = f'"{schema}"."{table}"'
    await conn.execute(f"CREATE TABLE {qualified} (batch_json jsonb)")
    await conn.copy_records_to_table(table, schema_name=schema, columns=["batch_json"],
                                     records=[(payload,) for payload in payloads])
    await conn.execute(f"VACUUM (ANALYZE) {qualified}")
    column = await json_column_size(conn, f"{schema}.{table}", "batch_json")
    sizes = await table_size(conn, f"{schema}.{table}")
    compressed = await conn.fetchval(
        f"SELECT avg((pg_column_compression(batch_json) IS NOT NULL)::int)::float8 "
        f"FROM {qualified}")
    await conn.execute(f"DROP TABLE {qualified}")
    rows = sizes.rows
    return VariantSize(
        number_format=number_format, barometer=barometer, readings_per_batch=readings,
        uploads=len(payloads), readings_per_upload_mean=_mean(block.counts.tolist()),
        envelope_bytes_mean=_mean(len(body) for body in bodies),
        payload_bytes_mean=_mean(len(payload) for payload in payloads),
        stored_bytes_mean=column.stored_bytes_mean,
        jsonb_text_bytes_mean=column.text_bytes_mean, compressed_share=float(compressed),
        table_bytes_per_row=sizes.total_bytes / rows,
        heap_bytes_per_row=(sizes.heap_bytes + sizes.fsm_bytes + sizes.vm_bytes) / rows,
        toast_bytes_per_row=sizes.toast_bytes / rows)


def _mean(values: Iterable[int]) -> float:
    items = list(values)
    return math.fsum(items) / len(items)
