"""Store uploads with COPY, row for row what the API stores, to reach month-scale row
counts quickly.

For each upload the API writes (`backend/store.py`): a `sensor_batches` row (and, under
`recommended`, an `upload_receipts` row), a `pot_events` row for the app's
`/daily-pot/upload`; per device one `device_secrets`, `user_stats` and `daily_pots` row.
Invariant: every value has the type and width the API's would have (the same device hash,
payload bytes, batch id, a 32-byte digest for the receipt and the secret); only instants
the API takes from its clock (`received_at`, `created_at`) and counters differ in value, not
in size. A test compares bytes per row of both paths on the same uploads.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from simulator.backend import migrations, pot
from simulator.backend.app import init_connection
from simulator.backend.store import device_hash, instant
from simulator.capacity.workload import Upload

PER_UPLOAD_TABLES = {"as-is": ("sensor_batches", "pot_events"),
                     "recommended": ("sensor_batches", "upload_receipts", "pot_events")}
PER_DEVICE_TABLES = ("device_secrets", "user_stats", "daily_pots")


async def prepare(conn: Any, variant: str) -> None:
    """Migrate `variant` into the connected database and make the connection store JSONB as
    the API does; the search path is the variant's namespace."""
    await migrations.migrate(conn, variant)
    await conn.execute(f"SET search_path TO {migrations.namespace(variant)}")
    await init_connection(conn)


async def connect(url: str, variant: str) -> Any:
    """A connection to the database at `url`, prepared for `variant` (`prepare`)."""
    conn = await asyncpg.connect(url, timeout=30)
    try:
        await prepare(conn, variant)
    except BaseException:
        await conn.close()
        raise
    return conn


async def ensure_months(conn: Any, first_ms: int, last_ms: int) -> None:
    """Monthly partitions (recommended) covering [first_ms, last_ms], as the backend's
    daily job keeps ahead of time."""
    first = instant(first_ms).date().replace(day=1)
    last = instant(last_ms).date()
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    await conn.fetchval("SELECT ensure_monthly_partitions($1, $2)", first, months)


async def copy_uploads(conn: Any, variant: str, batches: Sequence[Upload]) -> None:
    """COPY the per-upload rows of `batches` (see the module docstring)."""
    schema = migrations.namespace(variant)
    if variant == "as-is":
        await conn.copy_records_to_table(
            "sensor_batches", schema_name=schema,
            columns=("device_hash", "user_id", "timestamp_utc", "batch_json"),
            records=[(device_hash(b.device_id), b.user_id, instant(b.timestamp_ms), b.payload)
                     for b in batches])
    else:
        await conn.copy_records_to_table(
            "sensor_batches", schema_name=schema,
            columns=("batch_id", "seq", "device_hash", "user_id", "timestamp_utc",
                     "batch_json"),
            records=[(uuid.UUID(b.batch_id), b.seq, device_hash(b.device_id), b.user_id,
                      instant(b.timestamp_ms), b.payload) for b in batches])
        await conn.copy_records_to_table(
            "upload_receipts", schema_name=schema,
            columns=("batch_id", "device_hash", "body_sha256", "timestamp_utc", "received_at"),
            records=[(uuid.UUID(b.batch_id), device_hash(b.device_id), b.body_sha256,
                      instant(b.timestamp_ms), instant(b.timestamp_ms + 300_000))
                     for b in batches])
    await conn.copy_records_to_table(
        "pot_events", schema_name=schema,
        columns=("user_id", "kind", "event_key", "pot_day", "created_at"),
        records=[(b.user_id, "upload", b.batch_id, pot.day_of(b.timestamp_ms),
                  instant(b.timestamp_ms + 300_000)) for b in batches])


async def copy_devices(conn: Any, variant: str, batches: Iterable[Upload],
                       uploads_required: int = pot.PotRules().uploads_required) -> int:
    """One row per device in each per-device table; returns how many devices."""
    schema = migrations.namespace(variant)
    last: dict[str, Upload] = {}
    counts: dict[str, tuple[int, int]] = {}
    for b in batches:
        last[b.device_id] = b
        uploads, samples = counts.get(b.device_id, (0, 0))
        counts[b.device_id] = (uploads + 1, samples + b.samples)
    await conn.copy_records_to_table(
        "device_secrets", schema_name=schema,
        columns=("device_id", "secret_hash", "user_id", "created_at"),
        records=[(d, hashlib.sha256(d.encode()).digest(), b.user_id, instant(b.timestamp_ms))
                 for d, b in last.items()])
    await conn.copy_records_to_table(
        "user_stats", schema_name=schema,
        columns=("device_hash", "user_id", "total_uploads", "total_samples", "last_upload_at"),
        records=[(device_hash(d), b.user_id, *counts[d], instant(b.timestamp_ms))
                 for d, b in last.items()])
    await conn.copy_records_to_table(
        "daily_pots", schema_name=schema,
        columns=("user_id", "total_credits", "uploads_today", "uploads_required", "pot_day",
                 "last_claim_date", "version", "updated_at"),
        records=[(b.user_id, 10, uploads_required, uploads_required,
                  pot.day_of(b.timestamp_ms), pot.day_of(b.timestamp_ms), counts[d][0] + 1,
                  instant(b.timestamp_ms)) for d, b in last.items()])
    return len(last)


async def truncate(conn: Any, variant: str) -> None:
    """Empty every table a capacity load writes (new files, so the sizes start at 0)."""
    tables = (*PER_UPLOAD_TABLES[variant], *PER_DEVICE_TABLES)
    extra = ("sensor_batches_archive",) if variant == "recommended" else ()
    await conn.execute(f"TRUNCATE {', '.join((*tables, *extra))}")
