"""Loading a corpus into a layout's tables by COPY, timed.

Invariant: fair ingest: every load empties the layout's tables first (TRUNCATE, then a
CHECKPOINT where allowed, so no load pays for another's dirty pages) and COPYs
(`copy_records_to_table`) the same batches in the same chunks; only the COPY calls are
timed (they include asyncpg encoding the records in this process). Instants are exact
milliseconds, never floats of seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from simulator.capacity.layouts._types import EPOCH, F32
from simulator.capacity.layouts.corpus import LayoutCorpus
from simulator.capacity.layouts.tables import (
    _ARRAY_COLUMNS,
    _JSONB_COLUMNS,
    _READING_COLUMNS,
    _TYPED_BATCH_COLUMNS,
    CHANNELS,
    layout_tables,
)


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
