"""`measure_layouts`: parse the uploads, create every layout in a scratch schema, load
them repeatedly, then measure each and check its round trip.

Invariants:
- Fair ingest: each repeat loads every layout once (see `load`), in an order rotated each
  repeat; the median repeat is reported.
- Sizes are read after `VACUUM (ANALYZE)`, and only once every layout has been loaded for
  the last time; each measured layout's counts and sampled payloads are checked before it
  is reported (`RoundTripError`).
- Clean and bounded: the scratch schema is dropped however the measurement ends; with
  `time_budget_s`, no repeat starts that would be expected to end after the budget (the
  first always runs). Arguments are validated before any work, with what to fix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from simulator.backend.app import init_connection
from simulator.capacity.layouts._types import Progress
from simulator.capacity.layouts.corpus import LayoutCorpus, build_corpus
from simulator.capacity.layouts.load import _checkpoint, load_layout
from simulator.capacity.layouts.report import LayoutReport, LayoutResult, _not_measured, _result
from simulator.capacity.layouts.roundtrip import (
    RoundTripError,
    _counts,
    _sample,
    round_trip_differences,
)
from simulator.capacity.layouts.size import _jsonb_storage, empty_tail_bytes, layout_size
from simulator.capacity.layouts.tables import (
    LAYOUTS,
    create_layout,
    layout_tables,
    scratch_schema,
)
from simulator.capacity.workload import FleetSample, Upload
from simulator.errors import InvariantError


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
        raise InvariantError(f"repeats must be at least 1, got {repeats}")
    if chunk_batches < 1:
        raise InvariantError(f"chunk_batches must be at least 1, got {chunk_batches}")
    if check_batches is not None and check_batches < 1:
        raise InvariantError(f"check_batches must be at least 1 or None (all), got {check_batches}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise InvariantError(f"time_budget_s must be positive or None, got {time_budget_s}")


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
