"""The real job: `check_against_job` loads batches through the backend's upload path into
a database, runs `simulator.backend.jobs.aggregate` once and compares its rows with
`count_block_cells`, cell by cell (`JobCheck`).

Invariants: the database holds no sensor batches beforehand (checked, else
`UsageError`); the schema is migrated here; the job's windows are read back as epoch ms
and its days as days since the epoch, the keys `counting` defines a cell by. The backend
is imported only when the check runs, so measuring never needs it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from simulator.capacity.aggregates.counting import DAY_MS, WINDOW_MS, CellCount, count_block_cells
from simulator.errors import UsageError
from simulator.instants import MS_PER_S
from simulator.sensors.batch import BatchBlock


@dataclass(frozen=True)
class JobCheck:
    """`count_block_cells` beside the aggregation job's tables, for the same batches."""

    variant: str
    batches: int
    counted: CellCount
    job_rows_5m: int
    job_rows_daily: int
    only_counted_5m: int  # cells counted here that the job has no row for
    only_job_5m: int
    only_counted_daily: int
    only_job_daily: int

    @property
    def matches(self) -> bool:
        return (self.counted == CellCount(self.job_rows_5m, self.job_rows_daily)
                and self.only_counted_5m == self.only_job_5m == 0
                and self.only_counted_daily == self.only_job_daily == 0)


Cells = set[tuple[int, str]]


def _cell_sets(blocks: Sequence[BatchBlock]) -> tuple[Cells, Cells]:
    """The (window start ms, geohash) and (UTC day number, geohash) cells of `blocks`."""
    windows: Cells = set()
    days: Cells = set()
    for block in blocks:
        for ts, gh in zip(block.period_start_ms.tolist(), block.geohash.tolist(), strict=True):
            windows.add((ts // WINDOW_MS * WINDOW_MS, gh.decode()))
            days.add((ts // DAY_MS, gh.decode()))
    return windows, days


async def _load_and_aggregate(conn: Any, variant: str, blocks: Sequence[BatchBlock]
                              ) -> tuple[int, Cells, Cells]:
    """Upload every batch through the API's decoding and store path, run the job once,
    read both tables back."""
    from simulator.backend import jobs, migrations, store
    from simulator.backend.app import init_connection
    from simulator.backend.payload import decode_upload
    from simulator.sensors.encode import encode_lines

    await migrations.migrate(conn, variant)
    await conn.execute(f'SET search_path TO "{migrations.namespace(variant)}"')
    await init_connection(conn)
    if await conn.fetchval("SELECT count(*) FROM sensor_batches"):
        raise UsageError("check_against_job needs a database without sensor batches")
    stamps = np.concatenate([b.period_start_ms for b in blocks])
    now_ms = int(stamps.max()) + 1
    uploaded = 0
    for block in blocks:
        for line in encode_lines(block):
            envelope, payload = decode_upload(line, now_ms, 0)
            await store.store_upload(
                conn, variant, device_id=envelope.device_id, user_id=envelope.user_id,
                batch_id=envelope.batch_id, seq=envelope.seq, timestamp_ms=payload.timestamp,
                payload=bytes(envelope.payload), samples=len(payload.batch),
                body_sha256=hashlib.sha256(line).digest(), now_ms=now_ms)
            uploaded += 1
    span_s = (now_ms - int(stamps.min())) / MS_PER_S + 1.0
    await jobs.aggregate(conn, variant, now_ms, lag_s=0.0, lookback_s=span_s)
    windows = {(int(r[0].timestamp() * MS_PER_S), r[1]) for r in await conn.fetch(
        "SELECT window_start, geohash FROM sensor_aggregates_5m")}
    epoch = date(1970, 1, 1)
    days = {((r[0] - epoch).days, r[1]) for r in await conn.fetch(
        "SELECT day, geohash FROM sensor_aggregates_daily")}
    return uploaded, windows, days


def check_against_job(database_url: str, blocks: Iterable[BatchBlock], *,
                      variant: str = "recommended") -> JobCheck:
    """Load `blocks` into the `variant` schema of a database without batches (migrated
    here) through the backend's upload path, run `jobs.aggregate` once and compare its
    rows, cell by cell, with `count_block_cells`."""
    import asyncpg

    parts = [b for b in blocks if b.size]
    if not parts:
        raise UsageError("check_against_job needs at least one batch")

    async def run() -> tuple[int, Cells, Cells]:
        conn = await asyncpg.connect(database_url)
        try:
            return await _load_and_aggregate(conn, variant, parts)
        finally:
            await conn.close()

    uploaded, job_windows, job_days = asyncio.run(run())
    windows, days = _cell_sets(parts)
    return JobCheck(variant, uploaded, count_block_cells(parts), len(job_windows), len(job_days),
                    len(windows - job_windows), len(job_windows - windows),
                    len(days - job_days), len(job_days - days))
