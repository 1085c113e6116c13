"""The four layouts: their tables, columns, indexes and DDL, and creating them in a
scratch schema.

Every layout has the indexes the backend's queries need on its batch rows: a primary key,
(device_hash, timestamp_utc) for a device's history and (timestamp_utc) for the
aggregation job; the readings table's primary key (batch key, ordinal) finds a batch's
readings. The recommended schema's JSON expression indexes are left out: typed layouts
replace them by plain columns, so they would only blur what the payload's layout costs.

Invariants:
- The typed layouts' columns hold every number of the JSON: sensor values and summary
  statistics as float4 (the phone measures float32), coordinates as float8; the typed
  columns are ordered widest first, so no row pays for padding.
- `create_layout` leaves either the whole layout or nothing of it: a server that refuses
  the layout's TOAST compression (lz4 without lz4 support, or before PostgreSQL 14) gets
  a reason back, never an estimate.
- A scratch schema is dropped with everything in it however its block ends.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from simulator.errors import InvariantError

LAYOUTS = ("jsonb_pglz", "jsonb_lz4", "readings_normalised", "typed_arrays")
CHANNELS = ("light", "accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z",
            "pressure")

_DESCRIPTIONS = {
    "jsonb_pglz": "one row per batch, batch_json JSONB, pglz TOAST compression (as today)",
    "jsonb_lz4": "one row per batch, batch_json JSONB, lz4 TOAST compression",
    "readings_normalised": "one row per reading (float4 columns) + one typed row per batch",
    "typed_arrays": "one row per batch, float4[] per channel, int4[] t offsets, typed summary",
}

# The typed columns are ordered widest first, so no row pays for padding.
_JSONB_COLUMNS = (
    ("id", "bigint NOT NULL"), ("batch_id", "uuid NOT NULL"), ("seq", "bigint"),
    ("device_hash", "text NOT NULL"), ("user_id", "text"),
    ("timestamp_utc", "timestamptz NOT NULL"), ("batch_json", "jsonb NOT NULL"),
    ("created_at", "timestamptz NOT NULL"))
_TYPED_COLUMNS = (
    ("period_start", "timestamptz NOT NULL"), ("period_end", "timestamptz NOT NULL"),
    ("lat", "float8 NOT NULL"), ("lon", "float8 NOT NULL"),
    ("light_avg", "float4"), ("light_min", "float4"), ("light_max", "float4"),
    ("accel_rms", "float4"), ("gyro_rms", "float4"), ("pressure_avg", "float4"),
    ("pressure_min", "float4"), ("pressure_max", "float4"), ("accuracy_m", "float4"),
    ("reading_count", "int2 NOT NULL"), ("battery_level", "int2"), ("is_charging", "bool"),
    ("has_barometer", "bool NOT NULL"))
_TYPED_BATCH_COLUMNS = (
    ("id", "bigint NOT NULL"), ("batch_id", "uuid NOT NULL"), ("seq", "bigint"),
    ("timestamp_utc", "timestamptz NOT NULL"), ("created_at", "timestamptz NOT NULL"),
    *_TYPED_COLUMNS,
    ("device_hash", "text NOT NULL"), ("user_id", "text"), ("geohash", "text NOT NULL"))
_ARRAY_COLUMNS = (
    ("t_offset_ms", "int4[] NOT NULL"),
    *((c, "float4[] NOT NULL") for c in CHANNELS[:-1]),
    ("pressure", "float4[]"))  # NULL: no barometer; a NULL element: a sensor glitch
_READING_COLUMNS = (
    ("batch_key", "bigint NOT NULL"), ("t", "timestamptz NOT NULL"),
    *((c, "float4") for c in CHANNELS), ("ordinal", "int2 NOT NULL"))


def layout_tables(layout: str) -> tuple[str, ...]:
    """The layout's tables; the first holds one row per batch."""
    _check_layout(layout)
    if layout == "readings_normalised":
        return ("readings_normalised_batches", "readings_normalised_readings")
    return (layout,)


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise InvariantError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")


def _columns(layout: str, table: str) -> tuple[tuple[str, str], ...]:
    if layout.startswith("jsonb"):
        return _JSONB_COLUMNS
    if table.endswith("_readings"):
        return _READING_COLUMNS
    if layout == "typed_arrays":
        return (*_TYPED_BATCH_COLUMNS, *_ARRAY_COLUMNS)
    return _TYPED_BATCH_COLUMNS


def _ddl(layout: str, schema: str) -> list[str]:
    statements = []
    for table in layout_tables(layout):
        name = f'"{schema}"."{table}"'
        body = ", ".join(f"{column} {kind}" for column, kind in _columns(layout, table))
        statements.append(f"CREATE TABLE {name} ({body})")
        if table.endswith("_readings"):
            statements.append(f"ALTER TABLE {name} ADD CONSTRAINT {table}_pkey "
                              "PRIMARY KEY (batch_key, ordinal)")
            continue
        statements += [
            f"ALTER TABLE {name} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)",
            f"CREATE INDEX {table}_device_time ON {name} (device_hash, timestamp_utc)",
            f"CREATE INDEX {table}_time ON {name} (timestamp_utc)"]
    return statements


def _compression(layout: str) -> str | None:
    return {"jsonb_pglz": "pglz", "jsonb_lz4": "lz4"}.get(layout)


async def _has_compression_methods(conn: Any) -> bool:
    """PostgreSQL 14 brought a choice of TOAST compression (and pg_column_compression)."""
    return bool(await conn.fetchval(
        "SELECT current_setting('server_version_num')::int >= 140000"))


@asynccontextmanager
async def scratch_schema(conn: Any, purpose: str = "layouts") -> AsyncIterator[str]:
    """Create an empty schema; yield its name; drop it with everything in it."""
    name = f"ggsim_{purpose}_{os.getpid()}_{next(_counter)}"
    await conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


_counter = itertools.count()


async def create_layout(conn: Any, schema: str, layout: str) -> str | None:
    """Create the layout's tables and indexes in `schema`; returns None, or why the server
    cannot have this layout (then nothing of it is left behind)."""
    method = _compression(layout)
    modern = await _has_compression_methods(conn)
    if method == "lz4" and not modern:
        return "lz4 TOAST compression needs PostgreSQL 14 or later"
    try:
        async with conn.transaction():
            for statement in _ddl(layout, schema):
                await conn.execute(statement)
            if method is not None and modern:  # before 14, pglz is the only method
                await conn.execute(f'ALTER TABLE "{schema}"."{layout}" '
                                   f"ALTER COLUMN batch_json SET COMPRESSION {method}")
    except asyncpg.FeatureNotSupportedError as exc:
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        return f"the server refused {method} compression: {exc.message}{detail}"
    return None
