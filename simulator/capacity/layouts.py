"""What a storage layout change is worth before making it (review §4.2: "Storage
efficiency POOR - 30+ readings per batch = bloat - consider batch table"), measured on a
real PostgreSQL with the same uploads stored four ways, each in its own tables of a scratch
schema that is dropped afterwards:

- `jsonb_pglz`: one row per batch with `sensor_batches`' columns, `batch_json` JSONB as
  the API stores it today, compressed by pglz (the default, set explicitly);
- `jsonb_lz4`: the same with `batch_json` compressed by lz4. A server built without lz4
  (the embedded one) refuses it: the layout is then reported not measured with the
  server's reason, never estimated;
- `readings_normalised`: one row per reading (batch key, ordinal, t, float4 per channel)
  and one row per batch whose summary, location and battery fields are typed columns;
- `typed_arrays`: one row per batch: the same typed columns and the readings as one array
  per channel (float4[], and int4[] millisecond offsets of t from the window timestamp).

Every layout has the indexes the backend's queries need on its batch rows: a primary key,
(device_hash, timestamp_utc) for a device's history and (timestamp_utc) for the
aggregation job; the readings table's primary key (batch key, ordinal) finds a batch's
readings. The recommended schema's JSON expression indexes are left out: typed layouts
replace them by plain columns, so they would only blur what the payload's layout costs.

Invariants:
- Equal information: every layout holds the same batches and readings, and the typed ones
  every number of the JSON: sensor values and summary statistics as float4 (the phone
  measures float32), coordinates as float8. Checked after each measurement: each layout's
  batches and readings are counted in the database, and sampled batches' payloads are
  rebuilt from every layout and compared with the uploaded JSON (`RoundTripError`). A
  payload the typed layouts could not hold (an unknown or missing key, readings that
  disagree on having a barometer) is refused up front with `ValueError`.
- PostgreSQL's accounting is the ground truth (`pgsize.table_size`): main, fsm and vm
  forks, the TOAST relation (its heap and index) and every index, read after
  `VACUUM (ANALYZE)`; a layout's parts add up to its `total_bytes`.
- Fair ingest: each repeat loads every layout once into emptied tables (TRUNCATE, then a
  CHECKPOINT where allowed), in an order rotated each repeat, by COPY
  (`copy_records_to_table`) of the same batches in the same chunks. Only the COPY calls are
  timed (they include asyncpg encoding the records in this process); the median repeat is
  reported.
- Clean and bounded: the scratch schema is dropped however the measurement ends; with
  `time_budget_s`, no repeat starts that would be expected to end after the budget (the
  first always runs).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from simulator.backend.app import init_connection
from simulator.backend.store import device_hash
from simulator.capacity.pgsize import TableSize, table_size
from simulator.capacity.workload import FleetSample, Upload, decoded, uploads

__all__ = [
    "BATCHES_PER_USER_DAY",
    "LAYOUTS",
    "JsonbStorage",
    "LayoutCorpus",
    "LayoutReport",
    "LayoutResult",
    "LayoutSize",
    "RoundTripError",
    "build_corpus",
    "create_layout",
    "empty_tail_bytes",
    "full_sample",
    "layout_size",
    "layout_tables",
    "load_layout",
    "measure_layouts",
    "measure_layouts_async",
    "quick_sample",
    "round_trip_differences",
    "scratch_schema",
]

LAYOUTS = ("jsonb_pglz", "jsonb_lz4", "readings_normalised", "typed_arrays")
BATCHES_PER_USER_DAY = 288  # the review's §5.1: one upload per 5 minutes
SAMPLE_START_MS = 1_709_510_400_000  # 2024-03-04T00:00:00Z, a Monday
CHANNELS = ("light", "accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z",
            "pressure")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Progress = Callable[[str], None]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
Bool = npt.NDArray[np.bool_]

_DESCRIPTIONS = {
    "jsonb_pglz": "one row per batch, batch_json JSONB, pglz TOAST compression (as today)",
    "jsonb_lz4": "one row per batch, batch_json JSONB, lz4 TOAST compression",
    "readings_normalised": "one row per reading (float4 columns) + one typed row per batch",
    "typed_arrays": "one row per batch, float4[] per channel, int4[] t offsets, typed summary",
}


class RoundTripError(AssertionError):
    """A layout does not hold what was uploaded (a broken invariant, not bad input)."""


# ---------------------------------------------------------------------------------------
# The uploads, parsed once. The structs are strict: whatever they accept, the typed
# layouts can hold without loss (absent and null stay apart where the JSON has both).


class _MinMax(msgspec.Struct, forbid_unknown_fields=True):
    avg: float | None
    min: float | None
    max: float | None


class _Summary(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    period_start: str
    period_end: str
    light: _MinMax
    accel_rms: float | None
    gyro_rms: float | None
    pressure: _MinMax | msgspec.UnsetType = msgspec.UNSET


_Triple = tuple[float | None, float | None, float | None]


class _Reading(msgspec.Struct, forbid_unknown_fields=True):
    t: int
    light: float | None
    accel: _Triple
    gyro: _Triple
    pressure: float | msgspec.UnsetType | None = msgspec.UNSET


class _Location(msgspec.Struct, forbid_unknown_fields=True):
    lat: float
    lon: float
    accuracy_m: float | None


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: int
    summary: _Summary
    batch: list[_Reading]
    location: _Location
    geohash: str
    battery_level: int | None
    is_charging: bool | None


_decode_payload = msgspec.json.Decoder(_Payload)
_ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class LayoutCorpus:
    """The batches to store, columnar: batch i owns readings `offsets[i]:offsets[i+1]`;
    `values[:, k]` is channel `CHANNELS[k]` as float32, NaN for a JSON null."""

    payloads: tuple[bytes, ...]  # batch_json, byte for byte what the API stores
    batch_uuid: tuple[uuid.UUID, ...]
    seq: tuple[int | None, ...]
    device_hash: tuple[str, ...]
    user_id: tuple[str, ...]
    timestamp_ms: I64
    typed: tuple[tuple[Any, ...], ...]  # per batch, the values of _TYPED_COLUMNS
    geohash: tuple[str, ...]
    offsets: I64
    t_ms: I64
    values: F32
    has_barometer: Bool

    @property
    def batches(self) -> int:
        return len(self.payloads)

    @property
    def readings(self) -> int:
        return int(self.offsets[-1])

    @property
    def payload_bytes_mean(self) -> float:
        return sum(map(len, self.payloads)) / self.batches


def quick_sample(seed: int = 1) -> FleetSample:
    """A few thousand batches (12 phones for a day): `--quick`."""
    return FleetSample(seed=seed, phones=12, days=1.0, start_ms=SAMPLE_START_MS)


def full_sample(seed: int = 1) -> FleetSample:
    """Tens of thousands of batches (100 phones for a day)."""
    return FleetSample(seed=seed, phones=100, days=1.0, start_ms=SAMPLE_START_MS)


def build_corpus(payloads: FleetSample | Iterable[bytes | Upload]) -> LayoutCorpus:
    """Parse upload envelopes (lines of `ggsim generate`, or `Upload`s) or generate a
    fleet sample's; `ValueError` names the first upload the typed layouts cannot hold."""
    source = uploads(payloads) if isinstance(payloads, FleetSample) else payloads
    builder = _CorpusBuilder()
    for i, item in enumerate(source):
        upload = item if isinstance(item, Upload) else decoded(bytes(item).rstrip(b"\n"))
        builder.add(i, upload)
    if not builder.payloads:
        raise ValueError("no uploads to store: give at least one upload envelope")
    return builder.build()


class _CorpusBuilder:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.uploads: list[Upload] = []
        self.typed: list[tuple[Any, ...]] = []
        self.geohash: list[str] = []
        self.counts: list[int] = []
        self.t_ms: list[int] = []
        self.values: list[float] = []
        self.has_barometer: list[bool] = []

    def add(self, index: int, upload: Upload) -> None:
        try:
            payload = _decode_payload.decode(upload.payload)
            barometer = _barometer(payload)
            self.typed.append(_typed_values(payload, barometer))
        except (msgspec.MsgspecError, ValueError) as exc:
            raise ValueError(f"upload {index} ({upload.batch_id}) cannot be stored in the "
                             f"typed layouts without loss: {exc}") from None
        self.payloads.append(upload.payload)
        self.uploads.append(upload)
        self.geohash.append(payload.geohash)
        self.counts.append(len(payload.batch))
        self.has_barometer.append(barometer)
        for reading in payload.batch:
            self.t_ms.append(reading.t)
            self.values.extend(_reading_values(reading))

    def build(self) -> LayoutCorpus:
        offsets = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=offsets[1:])
        return LayoutCorpus(
            payloads=tuple(self.payloads),
            batch_uuid=tuple(uuid.UUID(u.batch_id) for u in self.uploads),
            seq=tuple(u.seq for u in self.uploads),
            device_hash=tuple(device_hash(u.device_id) for u in self.uploads),
            user_id=tuple(u.user_id for u in self.uploads),
            timestamp_ms=np.array([u.timestamp_ms for u in self.uploads], dtype=np.int64),
            typed=tuple(self.typed), geohash=tuple(self.geohash), offsets=offsets,
            t_ms=np.array(self.t_ms, dtype=np.int64),
            values=np.array(self.values, dtype=np.float32).reshape(-1, len(CHANNELS)),
            has_barometer=np.array(self.has_barometer, dtype=np.bool_))


def _barometer(payload: _Payload) -> bool:
    """Whether the batch carries pressure: the summary and every reading must agree."""
    has = not isinstance(payload.summary.pressure, msgspec.UnsetType)
    if any(isinstance(r.pressure, msgspec.UnsetType) == has for r in payload.batch):
        raise ValueError("summary.pressure and the readings' pressure keys disagree")
    if payload.summary.count != len(payload.batch):
        raise ValueError(f"summary.count is {payload.summary.count}, "
                         f"batch has {len(payload.batch)} readings")
    return has


def _typed_values(payload: _Payload, barometer: bool) -> tuple[Any, ...]:
    """The values of `_TYPED_COLUMNS` for one batch."""
    s = payload.summary
    pressure = s.pressure if isinstance(s.pressure, _MinMax) else _MinMax(None, None, None)
    return (_parse_iso(s.period_start), _parse_iso(s.period_end),
            payload.location.lat, payload.location.lon,
            s.light.avg, s.light.min, s.light.max, s.accel_rms, s.gyro_rms,
            pressure.avg, pressure.min, pressure.max, payload.location.accuracy_m,
            s.count, payload.battery_level, payload.is_charging, barometer)


def _parse_iso(text: str) -> datetime:
    instant = datetime.strptime(text, _ISO_SECONDS).replace(tzinfo=UTC)
    if instant.strftime(_ISO_SECONDS) != text:
        raise ValueError(f"{text!r} is not an ISO-8601 UTC instant in whole seconds")
    return instant


def _reading_values(reading: _Reading) -> list[float]:
    pressure = None if isinstance(reading.pressure, msgspec.UnsetType) else reading.pressure
    values = (reading.light, *reading.accel, *reading.gyro, pressure)
    return [math.nan if v is None else v for v in values]


# ---------------------------------------------------------------------------------------
# The tables. The typed columns are ordered widest first, so no row pays for padding.

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
        raise ValueError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")


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


# ---------------------------------------------------------------------------------------
# Loading.


async def load_layout(conn: Any, schema: str, layout: str, corpus: LayoutCorpus,
                      chunk_batches: int = 500) -> float:
    """Empty the layout's tables and COPY every batch of `corpus` into them, in chunks of
    `chunk_batches`; returns the seconds spent in COPY (see the module docstring).
    `conn` must store JSONB as bytes (`backend.app.init_connection`)."""
    tables = ", ".join(f'"{schema}"."{t}"' for t in layout_tables(layout))
    await conn.execute(f"TRUNCATE {tables}")
    await _checkpoint(conn)
    copying_s = 0.0
    for start in range(0, corpus.batches, chunk_batches):
        batches = range(start, min(corpus.batches, start + chunk_batches))
        copies = _records(layout, corpus, batches)
        started = time.perf_counter()
        for table, columns, records in copies:
            await conn.copy_records_to_table(table, schema_name=schema, columns=columns,
                                             records=records)
        copying_s += time.perf_counter() - started
    return copying_s


async def _checkpoint(conn: Any) -> bool:
    """Write out earlier loads' dirty pages, so no load pays for another's."""
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        return False
    return True


_Copy = tuple[str, tuple[str, ...], list[tuple[Any, ...]]]


def _records(layout: str, corpus: LayoutCorpus, batches: range) -> list[_Copy]:
    tables = layout_tables(layout)
    if layout.startswith("jsonb"):
        return [(tables[0], _names(_JSONB_COLUMNS), [_jsonb_row(corpus, i) for i in batches])]
    if layout == "typed_arrays":
        columns = _names((*_TYPED_BATCH_COLUMNS, *_ARRAY_COLUMNS))
        return [(tables[0], columns,
                 [(*_typed_row(corpus, i), *_array_values(corpus, i)) for i in batches])]
    return [(tables[0], _names(_TYPED_BATCH_COLUMNS), [_typed_row(corpus, i) for i in batches]),
            (tables[1], _names(_READING_COLUMNS),
             [row for i in batches for row in _reading_rows(corpus, i)])]


def _names(columns: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(name for name, _ in columns)


def _instant(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)  # exact, unlike a float of seconds


def _jsonb_row(corpus: LayoutCorpus, i: int) -> tuple[Any, ...]:
    timestamp_ms = int(corpus.timestamp_ms[i])
    return (i + 1, corpus.batch_uuid[i], corpus.seq[i], corpus.device_hash[i],
            corpus.user_id[i], _instant(timestamp_ms), corpus.payloads[i],
            _instant(timestamp_ms + 300_000))


def _typed_row(corpus: LayoutCorpus, i: int) -> tuple[Any, ...]:
    timestamp_ms = int(corpus.timestamp_ms[i])
    return (i + 1, corpus.batch_uuid[i], corpus.seq[i], _instant(timestamp_ms),
            _instant(timestamp_ms + 300_000), *corpus.typed[i], corpus.device_hash[i],
            corpus.user_id[i], corpus.geohash[i])


def _nullable(values: F32) -> list[float | None]:
    out: list[float | None] = list(values.tolist())
    if np.isnan(values).any():
        out = [None if v != v else v for v in out]  # NaN is the only value unequal to itself
    return out


def _array_values(corpus: LayoutCorpus, i: int) -> list[list[int] | list[float | None] | None]:
    start, end = int(corpus.offsets[i]), int(corpus.offsets[i + 1])
    offsets = (corpus.t_ms[start:end] - corpus.timestamp_ms[i]).tolist()
    channels: list[list[float | None] | None] = [
        _nullable(corpus.values[start:end, k]) for k in range(len(CHANNELS))]
    if not corpus.has_barometer[i]:
        channels[-1] = None
    return [offsets, *channels]


def _reading_rows(corpus: LayoutCorpus, i: int) -> list[tuple[Any, ...]]:
    start, end = int(corpus.offsets[i]), int(corpus.offsets[i + 1])
    values = corpus.values[start:end]
    rows = []
    for ordinal, (t_ms, reading) in enumerate(zip(corpus.t_ms[start:end].tolist(),
                                                  values.tolist(), strict=True)):
        nullable = [None if v != v else v for v in reading]
        rows.append((i + 1, _instant(t_ms), *nullable, ordinal))
    return rows


# ---------------------------------------------------------------------------------------
# What the server stores.


@dataclass(frozen=True)
class LayoutSize:
    """PostgreSQL's accounting of a layout's tables, summed (see `pgsize.TableSize`)."""

    tables: tuple[TableSize, ...]
    heap_bytes: int
    fsm_bytes: int
    vm_bytes: int
    toast_bytes: int
    index_bytes: dict[str, int]
    total_bytes: int

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


async def layout_size(conn: Any, tables: Sequence[str]) -> LayoutSize:
    """The summed sizes of `tables` (schema-qualified names) now; call after
    `VACUUM (ANALYZE)` for the maps to exist."""
    sizes = tuple([await table_size(conn, t) for t in tables])
    index_bytes: dict[str, int] = {}
    for size in sizes:
        index_bytes |= size.index_bytes
    return LayoutSize(
        tables=sizes, heap_bytes=sum(s.heap_bytes for s in sizes),
        fsm_bytes=sum(s.fsm_bytes for s in sizes), vm_bytes=sum(s.vm_bytes for s in sizes),
        toast_bytes=sum(s.toast_bytes for s in sizes), index_bytes=index_bytes,
        total_bytes=sum(s.total_bytes for s in sizes))


async def empty_tail_bytes(conn: Any, table: str) -> int:
    """Bytes of `table`'s main fork after its last page that holds a tuple. PostgreSQL 16+
    extends a relation by many pages at once for COPY and VACUUM gives back a tail only
    when it is at least 1/16 of the table, so a small bulk-loaded table keeps up to a few
    hundred KB of empty pages: real bytes, but a fixed cost, not a cost per row."""
    row = await conn.fetchrow(
        f"SELECT pg_relation_size($1::regclass), current_setting('block_size')::int, "
        f"max((ctid::text::point)[0])::bigint FROM {_quoted(table)}", table)
    main_bytes, block_bytes, last_page = int(row[0]), int(row[1]), row[2]
    used_pages = 0 if last_page is None else int(last_page) + 1
    return main_bytes - used_pages * block_bytes


def _quoted(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


@dataclass(frozen=True)
class JsonbStorage:
    """How `batch_json` is stored, averaged over the rows."""

    stored_bytes_mean: float  # pg_column_size: as stored (compressed or not), header included
    text_bytes_mean: float  # octet_length(batch_json::text): PostgreSQL's JSON text
    uncompressed_bytes_mean: float  # the JSONB datum before TOAST compression
    compression_methods: dict[str, int]  # pg_column_compression -> rows ("none": not
    # compressed); empty before PostgreSQL 14, where pglz is the only method

    @property
    def compression_ratio(self) -> float:
        """JSON text bytes per stored byte."""
        return self.text_bytes_mean / self.stored_bytes_mean


async def _jsonb_storage(conn: Any, table: str) -> JsonbStorage:
    # `|| '{}'` hands pg_column_size the detoasted (decompressed) datum
    means = await conn.fetchrow(
        f"SELECT avg(pg_column_size(batch_json))::float8, "
        f"avg(octet_length(batch_json::text))::float8, "
        f"avg(pg_column_size(batch_json || '{{}}'::jsonb))::float8 FROM {table}")
    methods = await conn.fetch(
        f"SELECT coalesce(pg_column_compression(batch_json), 'none') AS method, count(*) "
        f"FROM {table} GROUP BY 1 ORDER BY 1") if await _has_compression_methods(conn) else []
    return JsonbStorage(float(means[0]), float(means[1]), float(means[2]),
                        {row[0]: int(row[1]) for row in methods})


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


# ---------------------------------------------------------------------------------------
# The round trip: each layout's rows made back into the payload JSON.


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


# ---------------------------------------------------------------------------------------
# The measurement.


@dataclass(frozen=True)
class LayoutResult:
    """One layout's storage and ingest cost for the report's batches. When `measured` is
    False, `not_measured_reason` says why and every figure is 0 (counts) or NaN."""

    layout: str
    description: str
    measured: bool
    not_measured_reason: str | None
    tables: tuple[str, ...]
    batches: int  # counted in the layout's tables
    readings: int  # counted in the layout's tables
    rows_loaded: int  # rows one load writes, over all the layout's tables
    heap_bytes: int  # main fork of every table
    heap_empty_tail_bytes: int  # of which: empty pages after the last tuple (see _empty_tail)
    fsm_bytes: int
    vm_bytes: int
    toast_bytes: int  # TOAST heaps and their indexes
    index_bytes: dict[str, int]  # index name -> bytes (every fork)
    total_bytes: int
    bytes_per_batch: float
    bytes_per_reading: float
    bytes_per_user_day: float  # BATCHES_PER_USER_DAY batches
    ingest_s: tuple[float, ...]  # seconds in COPY, one per repeat
    ingest_s_median: float
    ingest_rows_per_s: float
    ingest_batches_per_s: float
    round_trip_batches: int  # batches rebuilt and compared with the uploaded JSON
    jsonb: JsonbStorage | None = None  # the JSONB layouts' batch_json
    table_sizes: tuple[TableSize, ...] = field(default=(), repr=False)

    @property
    def index_total_bytes(self) -> int:
        return sum(self.index_bytes.values())


@dataclass(frozen=True)
class LayoutReport:
    """Every layout of `LAYOUTS` (in that order) for the same batches."""

    layouts: tuple[LayoutResult, ...]
    batches: int
    readings: int
    payload_bytes_mean: float  # the phone's compact JSON, as the API stores it
    repeats_requested: int
    repeats_done: int
    chunk_batches: int
    checkpointed: bool  # a CHECKPOINT preceded every load
    server_version: str
    elapsed_s: float

    def layout(self, name: str) -> LayoutResult:
        _check_layout(name)
        return next(result for result in self.layouts if result.layout == name)

    def bytes_ratio(self, name: str, baseline: str = "jsonb_pglz") -> float:
        """`name`'s total bytes per `baseline`'s (NaN if either was not measured)."""
        this, base = self.layout(name), self.layout(baseline)
        if not (this.measured and base.measured):
            return math.nan
        return this.total_bytes / base.total_bytes


def measure_layouts(database_url: str, payloads: FleetSample | Iterable[bytes | Upload], *,
                    repeats: int = 3, chunk_batches: int = 500, check_batches: int | None = 500,
                    time_budget_s: float | None = None,
                    progress: Progress | None = None) -> LayoutReport:
    """`measure_layouts_async` for callers without an event loop."""
    return asyncio.run(measure_layouts_async(
        database_url, payloads, repeats=repeats, chunk_batches=chunk_batches,
        check_batches=check_batches, time_budget_s=time_budget_s, progress=progress))


async def measure_layouts_async(
        database_url: str, payloads: FleetSample | Iterable[bytes | Upload], *,
        repeats: int = 3, chunk_batches: int = 500, check_batches: int | None = 500,
        time_budget_s: float | None = None, progress: Progress | None = None) -> LayoutReport:
    """Store `payloads` (envelope lines, `Upload`s, or a fleet sample to generate) in
    every layout on the server `database_url` names, in a scratch schema of its database;
    load `repeats` times for the ingest cost, then measure (see the module docstring).
    `check_batches` batches (None: all) are rebuilt from each layout for the round trip."""
    _validate(repeats, chunk_batches, check_batches, time_budget_s)
    started = time.perf_counter()
    say = progress or (lambda _: None)
    corpus = build_corpus(payloads)
    say(f"layouts: {corpus.batches} batches, {corpus.readings} readings parsed")
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        await init_connection(conn)
        async with scratch_schema(conn) as schema:
            return await _measure(conn, schema, corpus, _Options(
                repeats, chunk_batches, check_batches, time_budget_s, started, say))
    finally:
        await conn.close()


def _validate(repeats: int, chunk_batches: int, check_batches: int | None,
              time_budget_s: float | None) -> None:
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if chunk_batches < 1:
        raise ValueError(f"chunk_batches must be at least 1, got {chunk_batches}")
    if check_batches is not None and check_batches < 1:
        raise ValueError(f"check_batches must be at least 1 or None (all), got {check_batches}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be positive or None, got {time_budget_s}")


@dataclass(frozen=True)
class _Options:
    repeats: int
    chunk_batches: int
    check_batches: int | None
    time_budget_s: float | None
    started: float
    say: Progress


async def _measure(conn: Any, schema: str, corpus: LayoutCorpus,
                   options: _Options) -> LayoutReport:
    reasons = {layout: await create_layout(conn, schema, layout) for layout in LAYOUTS}
    measured = [layout for layout in LAYOUTS if reasons[layout] is None]
    for layout in LAYOUTS:
        if reasons[layout] is not None:
            options.say(f"layouts: {layout} not measured: {reasons[layout]}")
    timings, checkpointed = await _load_repeatedly(conn, schema, corpus, measured, options)
    results = []
    for layout in LAYOUTS:
        reason = reasons[layout]
        results.append(_not_measured(layout, reason) if reason is not None else
                       await _measure_one(conn, schema, layout, corpus, timings[layout],
                                          options))
    version = await conn.fetchval("SHOW server_version")
    return LayoutReport(
        layouts=tuple(results), batches=corpus.batches, readings=corpus.readings,
        payload_bytes_mean=corpus.payload_bytes_mean, repeats_requested=options.repeats,
        repeats_done=len(timings[measured[0]]), chunk_batches=options.chunk_batches,
        checkpointed=checkpointed, server_version=str(version),
        elapsed_s=time.perf_counter() - options.started)


async def _load_repeatedly(conn: Any, schema: str, corpus: LayoutCorpus, layouts: list[str],
                           options: _Options) -> tuple[dict[str, list[float]], bool]:
    """Seconds in COPY per layout and repeat, layouts rotated each repeat."""
    timings: dict[str, list[float]] = {layout: [] for layout in layouts}
    checkpointed = await _checkpoint(conn)
    for repeat in range(options.repeats):
        repeat_started = time.perf_counter()
        order = layouts[repeat % len(layouts):] + layouts[:repeat % len(layouts)]
        for layout in order:
            options.say(f"layouts: loading {layout} (repeat {repeat + 1}/{options.repeats})")
            timings[layout].append(await load_layout(conn, schema, layout, corpus,
                                                     options.chunk_batches))
        if _out_of_time(options, time.perf_counter() - repeat_started):
            options.say(f"layouts: time budget reached after {repeat + 1} repeats")
            break
    return timings, checkpointed


def _out_of_time(options: _Options, last_repeat_s: float) -> bool:
    if options.time_budget_s is None:
        return False
    elapsed = time.perf_counter() - options.started
    return elapsed + last_repeat_s > options.time_budget_s


async def _measure_one(conn: Any, schema: str, layout: str, corpus: LayoutCorpus,
                       timings: list[float], options: _Options) -> LayoutResult:
    options.say(f"layouts: measuring {layout}")
    for table in layout_tables(layout):
        await conn.execute(f'VACUUM (ANALYZE) "{schema}"."{table}"')
    names = [f"{schema}.{t}" for t in layout_tables(layout)]
    size = await layout_size(conn, names)
    tail_bytes = sum([await empty_tail_bytes(conn, name) for name in names])
    batches, readings = await _counts(conn, schema, layout)
    if (batches, readings) != (corpus.batches, corpus.readings):
        raise RoundTripError(f"{layout} holds {batches} batches and {readings} readings; "
                             f"{corpus.batches} and {corpus.readings} were loaded")
    checked = _sample(corpus.batches, options.check_batches)
    differences = await round_trip_differences(conn, schema, layout, corpus, checked)
    if differences:
        raise RoundTripError(f"{layout} does not hold what was uploaded: "
                             + "; ".join(differences))
    jsonb = (await _jsonb_storage(conn, f'"{schema}"."{layout}"')
             if layout.startswith("jsonb") else None)
    return _result(layout, size, (batches, readings, tail_bytes), timings, len(checked), jsonb)


def _result(layout: str, size: LayoutSize, counts: tuple[int, int, int], timings: list[float],
            checked: int, jsonb: JsonbStorage | None) -> LayoutResult:
    batches, readings, tail_bytes = counts
    median_s = statistics.median(timings)
    per_batch = size.total_bytes / batches
    return LayoutResult(
        layout=layout, description=_DESCRIPTIONS[layout], measured=True,
        not_measured_reason=None, tables=layout_tables(layout), batches=batches,
        readings=readings, rows_loaded=size.rows, heap_bytes=size.heap_bytes,
        heap_empty_tail_bytes=tail_bytes,
        fsm_bytes=size.fsm_bytes, vm_bytes=size.vm_bytes, toast_bytes=size.toast_bytes,
        index_bytes=size.index_bytes, total_bytes=size.total_bytes, bytes_per_batch=per_batch,
        bytes_per_reading=size.total_bytes / readings,
        bytes_per_user_day=per_batch * BATCHES_PER_USER_DAY, ingest_s=tuple(timings),
        ingest_s_median=median_s, ingest_rows_per_s=size.rows / median_s,
        ingest_batches_per_s=batches / median_s, round_trip_batches=checked,
        jsonb=jsonb, table_sizes=size.tables)


def _not_measured(layout: str, reason: str) -> LayoutResult:
    nan = math.nan
    return LayoutResult(
        layout=layout, description=_DESCRIPTIONS[layout], measured=False,
        not_measured_reason=reason, tables=layout_tables(layout), batches=0, readings=0,
        rows_loaded=0, heap_bytes=0, heap_empty_tail_bytes=0, fsm_bytes=0, vm_bytes=0,
        toast_bytes=0, index_bytes={},
        total_bytes=0, bytes_per_batch=nan, bytes_per_reading=nan, bytes_per_user_day=nan,
        ingest_s=(), ingest_s_median=nan, ingest_rows_per_s=nan, ingest_batches_per_s=nan,
        round_trip_batches=0)
