"""The round trip: each layout's rows counted and made back into the payload JSON, and
compared with what was uploaded.

Invariants:
- Equal information: every layout holds the same batches and readings; a layout that
  does not raises `RoundTripError` (a broken invariant, not bad input).
- JSONB must give back the uploaded JSON exactly; typed layouts give it back equal as
  float32, coordinates (float8) exactly; absent keys stay absent, nulls stay null.
- Read-only: nothing here writes to the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson

from simulator.capacity.layouts._types import _ISO_SECONDS, EPOCH
from simulator.capacity.layouts.corpus import LayoutCorpus
from simulator.capacity.layouts.tables import CHANNELS, layout_tables
from simulator.errors import RoundTripError as RoundTripError


async def _counts(conn: Any, schema: str, layout: str) -> tuple[int, int]:
    """Batches and readings as the layout's tables hold them."""
    tables = [f'"{schema}"."{t}"' for t in layout_tables(layout)]
    if layout.startswith("jsonb"):
        sql = (f"SELECT count(*), coalesce(sum(jsonb_array_length(batch_json -> 'batch')), 0) "
               f"FROM {tables[0]}")
    elif layout == "typed_arrays":
        sql = f"SELECT count(*), coalesce(sum(cardinality(t_offset_ms)), 0) FROM {tables[0]}"
    else:
        sql = f"SELECT (SELECT count(*) FROM {tables[0]}), (SELECT count(*) FROM {tables[1]})"
    row = await conn.fetchrow(sql)
    return int(row[0]), int(row[1])


async def round_trip_differences(conn: Any, schema: str, layout: str, corpus: LayoutCorpus,
                                 batches: Sequence[int], limit: int = 10) -> list[str]:
    """Where the stored `batches` (corpus indexes) differ from the uploaded JSON, at most
    `limit` (empty: the same information). JSONB must be equal exactly; typed layouts
    equal as float32, coordinates exactly."""
    rebuilt = await _stored_payloads(conn, schema, layout, [i + 1 for i in batches])
    differences: list[str] = []
    for i in batches:
        original = orjson.loads(corpus.payloads[i])
        stored = rebuilt.get(i + 1)
        if stored is None:
            differences.append(f"batch {i + 1}: missing")
        else:
            _compare(original, stored, f"batch {i + 1}", layout.startswith("jsonb"),
                     differences)
        if len(differences) >= limit:
            break
    return differences[:limit]


async def _stored_payloads(conn: Any, schema: str, layout: str,
                           ids: list[int]) -> dict[int, Any]:
    tables = [f'"{schema}"."{t}"' for t in layout_tables(layout)]
    if layout.startswith("jsonb"):
        rows = await conn.fetch(f"SELECT id, batch_json::text AS j FROM {tables[0]} "
                                "WHERE id = ANY($1::bigint[])", ids)
        return {row["id"]: orjson.loads(row["j"]) for row in rows}
    rows = await conn.fetch(f"SELECT * FROM {tables[0]} WHERE id = ANY($1::bigint[])", ids)
    if layout == "typed_arrays":
        return {row["id"]: _payload_from_arrays(row) for row in rows}
    readings = await conn.fetch(f"SELECT * FROM {tables[1]} WHERE batch_key = ANY($1::bigint[]) "
                                "ORDER BY batch_key, ordinal", ids)
    by_batch: dict[int, list[Any]] = {}
    for reading in readings:
        by_batch.setdefault(reading["batch_key"], []).append(reading)
    return {row["id"]: _payload(row, [_reading_from_row(r, row["has_barometer"])
                                      for r in by_batch.get(row["id"], [])]) for row in rows}


def _millis(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(milliseconds=1)


def _payload(row: Any, readings: list[dict[str, Any]]) -> dict[str, Any]:
    """A typed batch row and its readings as review §4.2's JSON."""
    def minmax(prefix: str) -> dict[str, Any]:
        return {k: row[f"{prefix}_{k}"] for k in ("avg", "min", "max")}

    summary: dict[str, Any] = {
        "count": row["reading_count"],
        "period_start": row["period_start"].strftime(_ISO_SECONDS),
        "period_end": row["period_end"].strftime(_ISO_SECONDS),
        "light": minmax("light"), "accel_rms": row["accel_rms"], "gyro_rms": row["gyro_rms"]}
    if row["has_barometer"]:
        summary["pressure"] = minmax("pressure")
    return {"timestamp": _millis(row["timestamp_utc"]), "summary": summary, "batch": readings,
            "location": {"lat": row["lat"], "lon": row["lon"], "accuracy_m": row["accuracy_m"]},
            "geohash": row["geohash"], "battery_level": row["battery_level"],
            "is_charging": row["is_charging"]}


def _reading(t_ms: int, values: Sequence[float | None], barometer: bool) -> dict[str, Any]:
    reading: dict[str, Any] = {"t": t_ms, "light": values[0], "accel": list(values[1:4]),
                               "gyro": list(values[4:7])}
    if barometer:
        reading["pressure"] = values[7]
    return reading


def _reading_from_row(row: Any, barometer: bool) -> dict[str, Any]:
    return _reading(_millis(row["t"]), [row[c] for c in CHANNELS], barometer)


def _payload_from_arrays(row: Any) -> dict[str, Any]:
    start_ms = _millis(row["timestamp_utc"])
    barometer = bool(row["has_barometer"])
    count = len(row["t_offset_ms"])
    channels = [row[c] if row[c] is not None else [None] * count for c in CHANNELS]
    if any(len(channel) != count for channel in channels):
        return {"arrays": f"channel lengths {[len(c) for c in channels]} differ"}
    readings = [_reading(start_ms + offset, [channel[k] for channel in channels], barometer)
                for k, offset in enumerate(row["t_offset_ms"])]
    return _payload(row, readings)


_EXACT_KEYS = frozenset({"lat", "lon"})  # float8 columns


def _compare(original: Any, stored: Any, path: str, exact: bool, out: list[str],
             key: str = "") -> None:
    """Append to `out` where `stored` differs from `original` (see round_trip_differences)."""
    if isinstance(original, dict) and isinstance(stored, dict):
        if original.keys() != stored.keys():
            out.append(f"{path}: keys {sorted(original)} became {sorted(stored)}")
            return
        for k in original:
            _compare(original[k], stored[k], f"{path}.{k}", exact, out, k)
    elif isinstance(original, list) and isinstance(stored, list):
        if len(original) != len(stored):
            out.append(f"{path}: {len(original)} items became {len(stored)}")
            return
        for n, (a, b) in enumerate(zip(original, stored, strict=True)):
            _compare(a, b, f"{path}[{n}]", exact, out, key)
    elif not _same_value(original, stored, exact or key in _EXACT_KEYS):
        out.append(f"{path}: {original!r} became {stored!r}")


def _same_value(original: Any, stored: Any, exact: bool) -> bool:
    if not (_is_number(original) and _is_number(stored)):
        return type(original) is type(stored) and bool(original == stored)
    if exact or (isinstance(original, int) and isinstance(stored, int)):
        return bool(original == stored)
    return bool(np.float32(original) == np.float32(stored))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sample(batches: int, check_batches: int | None) -> list[int]:
    """Up to `check_batches` corpus indexes spread evenly, first and last included."""
    if check_batches is None or check_batches >= batches:
        return list(range(batches))
    return sorted({int(i) for i in np.linspace(0, batches - 1, max(check_batches, 2))})
