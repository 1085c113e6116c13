"""What the backend stored, read back for a verdict: one row per stored upload and each
user's pot, under either schema variant.

Invariant: read-only; the rows come in the order PostgreSQL returns them (no ORDER BY:
as-is has no arrival column, and a verdict counts reordering from this order as it
always has).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """One `sensor_batches` row: `batch_id`, `row_id` and `seq` only under recommended
    (as-is stores neither; its rows are known by device and window time)."""

    device_hash: str
    timestamp_ms: int | None
    batch_id: str | None
    row_id: int | None
    seq: int | None


async def stored_uploads(database_url: str, schema: str) -> list[StoredUpload]:
    """Every stored upload of the variant `schema`."""
    conn = await asyncpg.connect(database_url)
    try:
        if schema == "recommended":
            records = await conn.fetch("SELECT batch_id::text AS b, device_hash, id, seq "
                                       "FROM recommended.sensor_batches")
            return [StoredUpload(r["device_hash"], None, r["b"], r["id"], r["seq"])
                    for r in records]
        records = await conn.fetch(
            "SELECT device_hash, (extract(epoch FROM timestamp_utc) * 1000)::bigint "
            "AS ts, ctid::text AS c FROM as_is.sensor_batches")
        return [StoredUpload(r["device_hash"], r["ts"], None, None, None) for r in records]
    finally:
        await conn.close()


async def pot_days(database_url: str, schema: str) -> dict[str, tuple[int, str]]:
    """user id -> (uploads today, the pot's day as YYYY-MM-DD)."""
    namespace = "recommended" if schema == "recommended" else "as_is"
    conn = await asyncpg.connect(database_url)
    try:
        records = await conn.fetch(f"SELECT user_id, uploads_today, pot_day FROM "
                                   f"{namespace}.daily_pots")
    finally:
        await conn.close()
    return {r["user_id"]: (r["uploads_today"], r["pot_day"].isoformat()) for r in records}
