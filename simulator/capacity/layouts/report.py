"""The report: one `LayoutResult` per layout and the `LayoutReport` over all of them,
built from the measured sizes, counts and timings.

Invariants:
- A measured layout's figures derive from its `LayoutSize` alone: `total_bytes` is the
  sum of its parts, and per batch, per reading and per user-day are that total divided;
  ingest is the median repeat.
- A layout not measured says why, and every figure is 0 (counts) or NaN: never estimated.
- The report lists every layout of `LAYOUTS`, in that order.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from simulator.capacity.layouts.size import JsonbStorage, LayoutSize
from simulator.capacity.layouts.tables import _DESCRIPTIONS, _check_layout, layout_tables
from simulator.capacity.pgsize import TableSize

BATCHES_PER_USER_DAY = 288  # the review's §5.1: one upload per 5 minutes


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
    heap_empty_tail_bytes: int  # of which: empty pages after the last tuple (see size)
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
