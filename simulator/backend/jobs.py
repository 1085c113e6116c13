"""The backend's periodic jobs: monthly partitions ahead of time, the aggregation of
review §4.3 ("runs every minute"), and retention/archive (§5.4 made to work).

Aggregation is incremental and idempotent: each run finds the (5-minute window, geohash)
and (day, geohash) cells touched by new rows and recomputes those cells completely from
the raw rows, upserting the result; running it again recomputes the same values.
- `recommended`: new rows are those with `created_at` in (watermark, now - lag]; the lag
  (default 5 s) covers transactions in flight when the job reads;
- `as-is` has no arrival time, so the job recomputes every cell whose window lies in the
  last `lookback` (default 1 hour) of batch time, as the review's partial index implies;
  a batch arriving later than that is never aggregated (a finding the checks can show).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulator.backend.store import instant

_WINDOW = "date_bin('5 minutes', b.timestamp_utc, TIMESTAMPTZ '2020-01-01')"
_DAY = "(b.timestamp_utc AT TIME ZONE 'UTC')::date"
_MEASURES = """
  COUNT(*), COALESCE(SUM((b.batch_json -> 'summary' ->> 'count')::int), 0),
  COUNT(DISTINCT b.device_hash),
  AVG((b.batch_json -> 'summary' -> 'light' ->> 'avg')::float8),
  MIN((b.batch_json -> 'summary' -> 'light' ->> 'min')::float8),
  MAX((b.batch_json -> 'summary' -> 'light' ->> 'max')::float8),
  AVG((b.batch_json -> 'summary' -> 'pressure' ->> 'avg')::float8),
  AVG((b.batch_json -> 'summary' ->> 'accel_rms')::float8)
"""
_UPDATE = """
  batches = excluded.batches, samples = excluded.samples, devices = excluded.devices,
  light_avg = excluded.light_avg, light_min = excluded.light_min,
  light_max = excluded.light_max, pressure_avg = excluded.pressure_avg,
  accel_rms_avg = excluded.accel_rms_avg
"""
_COLUMNS = ("batches, samples, devices, light_avg, light_min, light_max, pressure_avg, "
            "accel_rms_avg")


def _aggregate_sql(table: str, key: str, cell: str, match: str, new_rows: str) -> str:
    return f"""
WITH touched AS (
  SELECT DISTINCT {cell} AS cell, b.batch_json ->> 'geohash' AS geohash
  FROM sensor_batches b WHERE {new_rows}
)
INSERT INTO {table} ({key}, geohash, {_COLUMNS})
SELECT t.cell, t.geohash, {_MEASURES}
FROM touched t JOIN sensor_batches b
  ON {match} AND b.batch_json ->> 'geohash' = t.geohash
GROUP BY t.cell, t.geohash
ON CONFLICT ({key}, geohash) DO UPDATE SET {_UPDATE}
"""


_IN_WINDOW = ("b.timestamp_utc >= t.cell AND b.timestamp_utc < t.cell + INTERVAL '5 minutes'")
_IN_DAY = ("b.timestamp_utc >= (t.cell::timestamp AT TIME ZONE 'UTC') "
           "AND b.timestamp_utc < ((t.cell + 1)::timestamp AT TIME ZONE 'UTC')")
_NEW_RECOMMENDED = "b.created_at > $1 AND b.created_at <= $2"
_NEW_AS_IS = "b.timestamp_utc > $1 AND b.timestamp_utc <= $2"


@dataclass(frozen=True)
class AggregationRun:
    """What one aggregation run did."""

    since: datetime
    until: datetime
    cells_5m: int
    cells_daily: int


async def aggregate(conn: Any, variant: str, now_ms: int, *, lag_s: float = 5.0,
                    lookback_s: float = 3600.0) -> AggregationRun:
    """One run of the aggregation job (see the module docstring), in one transaction."""
    new_rows = _NEW_RECOMMENDED if variant == "recommended" else _NEW_AS_IS
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ggsim-aggregate'))")
        if variant == "recommended":
            until = await conn.fetchval("SELECT NOW() - make_interval(secs => $1)", lag_s)
            since = await conn.fetchval("SELECT watermark FROM job_state WHERE job = "
                                        "'aggregate'") or datetime(2000, 1, 1, tzinfo=UTC)
        else:
            until = instant(now_ms)
            since = instant(now_ms - int(lookback_s * 1000))
        status_5m = await conn.execute(
            _aggregate_sql("sensor_aggregates_5m", "window_start", _WINDOW, _IN_WINDOW,
                           new_rows), since, until)
        status_day = await conn.execute(
            _aggregate_sql("sensor_aggregates_daily", "day", _DAY, _IN_DAY, new_rows),
            since, until)
        await conn.execute(
            "INSERT INTO job_state (job, watermark, last_run) VALUES ('aggregate', $1, NOW()) "
            "ON CONFLICT (job) DO UPDATE SET watermark = GREATEST(job_state.watermark, "
            "excluded.watermark), last_run = excluded.last_run", until)
    return AggregationRun(since, until, int(status_5m.split()[-1]), int(status_day.split()[-1]))


async def ensure_partitions(conn: Any, now_ms: int, months_ahead: int) -> int:
    """Monthly partitions from last month to `months_ahead` months after the current
    one (recommended schema); returns how many were created."""
    now = instant(now_ms)
    first = datetime(now.year - (now.month == 1), (now.month - 2) % 12 + 1, 1).date()
    return int(await conn.fetchval("SELECT ensure_monthly_partitions($1, $2)", first,
                                   months_ahead + 2))


@dataclass(frozen=True)
class RetentionRun:
    """What one retention run did."""

    archived: int
    receipts_deleted: int


async def retention(conn: Any, now_ms: int, keep_days: int = 30) -> RetentionRun:
    """Move batches older than `keep_days` (batch time) to the archive and forget their
    upload receipts, in one transaction; then VACUUM (ANALYZE) outside it, which the
    review's function could not do (recommended schema only)."""
    cutoff = instant(now_ms - keep_days * 86_400_000)
    async with conn.transaction():
        moved = await conn.fetchval("SELECT archive_old_batches($1)", cutoff)
        deleted = await conn.execute("DELETE FROM upload_receipts WHERE timestamp_utc < $1",
                                     cutoff)
    await conn.execute("VACUUM (ANALYZE) sensor_batches")
    return RetentionRun(int(moved), int(deleted.split()[-1]))
