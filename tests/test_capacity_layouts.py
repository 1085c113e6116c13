"""Storage layouts compared on a real PostgreSQL (simulator.capacity.layouts): sizes checked
against the page layout, lz4 detected, every layout holding what was uploaded."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import asyncpg
import numpy as np
import orjson
import pytest

from simulator.backend.app import init_connection
from simulator.capacity.layouts import (
    BATCHES_PER_USER_DAY,
    LAYOUTS,
    LayoutCorpus,
    LayoutReport,
    build_corpus,
    create_layout,
    empty_tail_bytes,
    layout_size,
    load_layout,
    measure_layouts,
    round_trip_differences,
    scratch_schema,
)
from simulator.capacity.layouts.corpus import SAMPLE_START_MS
from simulator.capacity.layouts.tables import CHANNELS
from simulator.capacity.workload import FleetSample
from simulator.sensors import FleetConfig, FleetGenerator
from simulator.sensors.encode import iter_lines

PAGE = 8192
PAGE_HEADER = 24
LINE_POINTER = 4
TUPLE_HEADER = 24  # 23 bytes, padded to the 8-byte alignment
# 8 phones for 4 hours: ~380 batches, phones with and without a barometer, some glitches
SMALL = FleetSample(seed=7, phones=8, days=4 / 24, start_ms=SAMPLE_START_MS)


def run(url: str, body: Any) -> Any:
    async def main() -> Any:
        conn = await asyncpg.connect(url)
        try:
            await init_connection(conn)
            return await body(conn)
        finally:
            await conn.close()
    return asyncio.run(main())


@pytest.fixture(scope="module")
def corpus() -> LayoutCorpus:
    corpus = build_corpus(SMALL)
    # what the tests below rely on: both kinds of phone, and sensor glitches (nulls)
    assert corpus.has_barometer.any() and not corpus.has_barometer.all()
    assert np.isnan(corpus.values[:, :7]).any()
    return corpus


@pytest.fixture(scope="module")
def report(postgres: Any, corpus: LayoutCorpus) -> LayoutReport:
    messages: list[str] = []
    result = measure_layouts(postgres.url, SMALL, repeats=2, check_batches=None,
                             progress=messages.append)
    assert any("loading typed_arrays (repeat 2/2)" in m for m in messages)
    return result


def _schemas_left(url: str) -> list[str]:
    async def body(conn: Any) -> list[str]:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace "
                                "WHERE nspname LIKE 'ggsim\\_layouts\\_%'")
        return [row[0] for row in rows]
    result: list[str] = run(url, body)
    return result


# --- PostgreSQL's accounting against the page layout ------------------------------------


def test_layout_size_matches_the_page_layout_and_sums_its_tables(database_url: str) -> None:
    rows = 10_000

    async def body(conn: Any) -> Any:
        await conn.execute("CREATE TABLE fixed (id bigint NOT NULL)")
        await conn.execute("INSERT INTO fixed SELECT g FROM generate_series(1, $1) g", rows)
        await conn.execute("CREATE INDEX fixed_id ON fixed (id)")
        await conn.execute("CREATE TABLE wide (k int PRIMARY KEY, v text)")
        # incompressible text over the TOAST threshold: md5 chains of 4,000 characters
        await conn.execute("INSERT INTO wide SELECT g, (SELECT string_agg(md5(g::text || "
                           "i::text), '') FROM generate_series(1, 125) i) "
                           "FROM generate_series(1, 50) g")
        await conn.execute("VACUUM (ANALYZE) fixed")
        await conn.execute("VACUUM (ANALYZE) wide")
        size = await layout_size(conn, ["public.fixed", "public.wide"])
        totals = await conn.fetchval("SELECT pg_total_relation_size('fixed') "
                                     "+ pg_total_relation_size('wide')")
        wide_heap = await conn.fetchval("SELECT pg_relation_size('wide')")
        tail = await empty_tail_bytes(conn, "public.fixed")
        return size, totals, wide_heap, tail

    size, totals, wide_heap, tail = run(database_url, body)
    per_page = (PAGE - PAGE_HEADER) // (TUPLE_HEADER + 8 + LINE_POINTER)  # 226
    fixed = size.tables[0]
    assert fixed.rows == rows
    assert fixed.heap_bytes == -(-rows // per_page) * PAGE
    # per row: the tuple and its line pointer, plus the page's share of header and slack
    assert fixed.per_row()["heap"] == -(-rows // per_page) * PAGE / rows == 36.864
    assert fixed.per_row()["heap"] > TUPLE_HEADER + 8 + LINE_POINTER
    assert fixed.toast_bytes == 0  # a bigint-only table has no TOAST relation
    assert tail == 0  # INSERT fills its pages one after another
    assert size.heap_bytes == fixed.heap_bytes + wide_heap
    assert size.toast_bytes >= 50 * 4000  # every 4,000-byte value went out of line
    assert wide_heap < size.toast_bytes / 10  # the wide heap holds only pointers
    assert set(size.index_bytes) == {"fixed_id", "wide_pkey"}
    assert size.total_bytes == totals
    assert size.rows == rows + 50


def _reading_row_bytes(values: np.ndarray) -> np.ndarray:
    """The normalised readings table's tuple length per row, from the page layout:
    a header with a null bitmap (11 columns: 2 bytes) when any value is NULL, two 8-byte
    columns, 4 bytes per non-NULL float4, the int2 ordinal; aligned to 8 bytes."""
    nulls = np.isnan(values).sum(axis=1)
    header = np.where(nulls > 0, 32, TUPLE_HEADER)  # 23 + 2 bitmap bytes, aligned
    length = header + 16 + 4 * (len(CHANNELS) - nulls) + 2
    return (length + 7) // 8 * 8


def _pages_filled(row_bytes: np.ndarray) -> int:
    """Pages a sequence of tuples fills when each goes on the last page if it fits."""
    pages, lower, upper = 1, PAGE_HEADER, PAGE
    for size in row_bytes.tolist():
        if upper - size < lower + LINE_POINTER:
            pages, lower, upper = pages + 1, PAGE_HEADER, PAGE
        lower, upper = lower + LINE_POINTER, upper - size
    return pages


def test_normalised_readings_fill_the_pages_the_page_layout_says(
        database_url: str, corpus: LayoutCorpus) -> None:
    values = corpus.values.copy()
    values[~np.repeat(corpus.has_barometer, np.diff(corpus.offsets)), -1] = np.nan
    expected_pages = _pages_filled(_reading_row_bytes(values))

    async def body(conn: Any) -> Any:
        async with scratch_schema(conn, "test") as schema:
            assert await create_layout(conn, schema, "readings_normalised") is None
            await load_layout(conn, schema, "readings_normalised", corpus, chunk_batches=50)
            table = f"{schema}.readings_normalised_readings"
            await conn.execute(f'VACUUM (ANALYZE) "{schema}".readings_normalised_readings')
            size = await layout_size(conn, [table])
            return size, await empty_tail_bytes(conn, table)

    size, tail = run(database_url, body)
    assert size.rows == corpus.readings
    assert (size.heap_bytes - tail) == expected_pages * PAGE
    assert size.toast_bytes == 0  # fixed-width columns only: no TOAST relation


# --- lz4 ---------------------------------------------------------------------------------


def _server_has_lz4(url: str) -> bool:
    async def body(conn: Any) -> bool:
        try:
            await conn.execute("CREATE TEMP TABLE probe (j jsonb COMPRESSION lz4)")
        except asyncpg.FeatureNotSupportedError:
            return False
        return True
    result: bool = run(url, body)
    return result


def test_lz4_is_measured_only_where_the_server_has_it(postgres: Any,
                                                      report: LayoutReport) -> None:
    lz4 = report.layout("jsonb_lz4")
    if _server_has_lz4(postgres.url):
        assert lz4.measured and lz4.not_measured_reason is None
        assert lz4.jsonb is not None and "lz4" in lz4.jsonb.compression_methods
        assert "pglz" not in lz4.jsonb.compression_methods
    else:  # the embedded server is built without lz4
        assert not lz4.measured
        assert lz4.not_measured_reason is not None and "lz4" in lz4.not_measured_reason
        assert lz4.total_bytes == 0 and lz4.ingest_s == ()
        assert math.isnan(lz4.bytes_per_batch) and math.isnan(lz4.ingest_batches_per_s)
        assert math.isnan(report.bytes_ratio("jsonb_lz4"))


def test_create_layout_reports_lz4_and_leaves_nothing_behind(database_url: str) -> None:
    async def body(conn: Any) -> Any:
        async with scratch_schema(conn, "test") as schema:
            reason = await create_layout(conn, schema, "jsonb_lz4")
            tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1",
                                         schema)
            return reason, tables

    reason, tables = run(database_url, body)
    if _server_has_lz4(database_url):
        assert reason is None and tables == 1
    else:
        assert reason is not None and "lz4" in reason
        assert tables == 0


# --- the same information in every layout --------------------------------------------------


def test_every_layout_holds_the_same_batches_and_readings(report: LayoutReport,
                                                          corpus: LayoutCorpus) -> None:
    readings = sum(len(orjson.loads(p)["batch"]) for p in corpus.payloads)
    assert report.batches == corpus.batches and report.readings == readings
    measured = [r for r in report.layouts if r.measured]
    assert {r.layout for r in measured} >= {"jsonb_pglz", "readings_normalised",
                                            "typed_arrays"}
    for result in measured:
        assert (result.batches, result.readings) == (corpus.batches, readings), result.layout
        # the round trip covered every batch (check_batches=None)
        assert result.round_trip_batches == corpus.batches
    assert report.layout("readings_normalised").rows_loaded == corpus.batches + readings
    assert report.layout("typed_arrays").rows_loaded == corpus.batches


def test_typed_arrays_hold_the_json_readings_as_float32(database_url: str,
                                                        corpus: LayoutCorpus) -> None:
    # a batch of a phone with a barometer and a glitch somewhere, and one without
    counts = np.diff(corpus.offsets)
    glitch = np.isnan(corpus.values[:, :7]).any(axis=1)
    with_glitch = int(np.searchsorted(corpus.offsets, np.flatnonzero(glitch)[0], "right")) - 1
    without = int(np.flatnonzero(~corpus.has_barometer)[0])

    async def body(conn: Any) -> Any:
        async with scratch_schema(conn, "test") as schema:
            await create_layout(conn, schema, "typed_arrays")
            await load_layout(conn, schema, "typed_arrays", corpus)
            return {i: await conn.fetchrow(f'SELECT * FROM "{schema}".typed_arrays '
                                           "WHERE id = $1", i + 1)
                    for i in (with_glitch, without)}

    rows = run(database_url, body)
    for i, row in rows.items():
        payload = orjson.loads(corpus.payloads[i])
        readings = payload["batch"]
        assert len(row["t_offset_ms"]) == counts[i] == len(readings)
        assert [payload["timestamp"] + o for o in row["t_offset_ms"]] == [r["t"] for r in readings]

        def f32(values: list[Any]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float32)

        json_channels = {"light": [r["light"] for r in readings],
                         **{f"accel_{a}": [r["accel"][k] for r in readings]
                            for k, a in enumerate("xyz")},
                         **{f"gyro_{a}": [r["gyro"][k] for r in readings]
                            for k, a in enumerate("xyz")}}
        for channel, values in json_channels.items():
            np.testing.assert_array_equal(f32(row[channel]), f32(values), err_msg=channel)
        if "pressure" in readings[0]:
            np.testing.assert_array_equal(f32(row["pressure"]),
                                          f32([r["pressure"] for r in readings]))
        else:
            assert row["pressure"] is None and not row["has_barometer"]
        assert row["lat"] == payload["location"]["lat"]  # float8: exactly
        assert np.float32(row["accel_rms"]) == np.float32(payload["summary"]["accel_rms"])


@pytest.mark.parametrize(("layout", "tamper"), [
    ("typed_arrays", 'UPDATE "{s}".typed_arrays SET light[3] = light[3] + 1 WHERE id = 5'),
    ("readings_normalised",
     'DELETE FROM "{s}".readings_normalised_readings WHERE batch_key = 5 AND ordinal = 2'),
    ("readings_normalised",
     'UPDATE "{s}".readings_normalised_batches SET geohash = \'zzzzzz\' WHERE id = 5'),
    ("jsonb_pglz", 'UPDATE "{s}".jsonb_pglz SET batch_json = jsonb_set(batch_json, '
                   "'{{battery_level}}', '7') WHERE id = 5"),
])
def test_the_round_trip_finds_a_changed_value(database_url: str, corpus: LayoutCorpus,
                                              layout: str, tamper: str) -> None:
    async def body(conn: Any) -> Any:
        async with scratch_schema(conn, "test") as schema:
            await create_layout(conn, schema, layout)
            await load_layout(conn, schema, layout, corpus)
            batches = range(corpus.batches)
            before = await round_trip_differences(conn, schema, layout, corpus, batches)
            await conn.execute(tamper.format(s=schema))
            after = await round_trip_differences(conn, schema, layout, corpus, batches)
            return before, after

    before, after = run(database_url, body)
    assert before == []
    assert len(after) == 1 and after[0].startswith("batch 5"), after


def test_envelope_lines_and_the_fleet_sample_give_the_same_corpus(corpus: LayoutCorpus) -> None:
    config = FleetConfig(seed=SMALL.seed, phones=SMALL.phones, start_ms=SMALL.start_ms,
                         hours=24 * SMALL.days)
    lines = [line for block in FleetGenerator(config).iter_blocks()
             for line in iter_lines(block)]
    from_lines = build_corpus(lines)
    assert from_lines.payloads == corpus.payloads
    np.testing.assert_array_equal(from_lines.values, corpus.values)
    assert from_lines.readings == corpus.readings


def test_payloads_the_typed_layouts_cannot_hold_are_refused(corpus: LayoutCorpus) -> None:
    good = orjson.loads(corpus.payloads[0])
    envelope = {"device_id": "dev-1", "user_id": "user-1", "seq": 1,
                "batch_id": "00000000-0000-4000-8000-000000000001"}

    def line(payload: dict[str, Any]) -> bytes:
        return orjson.dumps({**envelope, "payload": payload})

    assert build_corpus([line(good)]).batches == 1
    with pytest.raises(ValueError, match="00000000-0000-4000-8000-000000000001"):
        build_corpus([line({**good, "firmware": "1.2"})])  # JSONB keeps it; columns would not
    uneven = orjson.loads(corpus.payloads[0])
    has_pressure = "pressure" in uneven["summary"]
    if has_pressure:
        del uneven["batch"][0]["pressure"]
    else:
        uneven["batch"][0]["pressure"] = 1000.0
    with pytest.raises(ValueError, match="disagree"):
        build_corpus([line(uneven)])
    with pytest.raises(ValueError, match="no uploads"):
        build_corpus([])


# --- the report ------------------------------------------------------------------------------


def test_the_report_adds_up(report: LayoutReport) -> None:
    assert [r.layout for r in report.layouts] == list(LAYOUTS)
    assert report.repeats_done == report.repeats_requested == 2
    for r in (r for r in report.layouts if r.measured):
        assert r.total_bytes == (r.heap_bytes + r.fsm_bytes + r.vm_bytes + r.toast_bytes
                                 + r.index_total_bytes), r.layout
        assert r.total_bytes == sum(t.total_bytes for t in r.table_sizes)
        assert r.bytes_per_batch == r.total_bytes / r.batches
        assert r.bytes_per_reading == r.total_bytes / r.readings
        assert r.bytes_per_user_day == BATCHES_PER_USER_DAY * r.bytes_per_batch
        assert 0 <= r.heap_empty_tail_bytes < r.heap_bytes
        assert r.vm_bytes > 0 and r.fsm_bytes > 0  # VACUUM ran before the sizes were read
        assert len(r.ingest_s) == 2 and all(s > 0 for s in r.ingest_s)
        assert r.ingest_batches_per_s == pytest.approx(r.batches / r.ingest_s_median)
        assert r.ingest_rows_per_s == pytest.approx(r.rows_loaded / r.ingest_s_median)
        batch_table = r.tables[0]
        assert {f"{batch_table}_pkey", f"{batch_table}_device_time",
                f"{batch_table}_time"} <= set(r.index_bytes)
    pglz = report.layout("jsonb_pglz").jsonb
    assert pglz is not None
    assert pglz.compression_methods.get("pglz", 0) > 0 and "lz4" not in pglz.compression_methods
    # JSONB is stored larger than its text, and pglz brings it below the text
    assert pglz.uncompressed_bytes_mean > pglz.text_bytes_mean > pglz.stored_bytes_mean
    assert pglz.compression_ratio > 1
    assert report.payload_bytes_mean < pglz.text_bytes_mean  # PostgreSQL's text has spaces
    assert report.layout("readings_normalised").index_bytes[
        "readings_normalised_readings_pkey"] > 0
    assert report.bytes_ratio("jsonb_pglz") == 1.0


def test_the_scratch_schema_is_dropped_after_success_and_failure(postgres: Any,
                                                                 report: LayoutReport) -> None:
    assert _schemas_left(postgres.url) == []

    def interrupt(message: str) -> None:
        if "measuring" in message:
            raise RuntimeError("stopped by the test")

    with pytest.raises(RuntimeError, match="stopped by the test"):
        measure_layouts(postgres.url, SMALL, repeats=1, progress=interrupt)
    assert _schemas_left(postgres.url) == []


def test_a_time_budget_stops_further_repeats(postgres: Any) -> None:
    one_hour = FleetSample(seed=3, phones=2, days=1 / 24, start_ms=SAMPLE_START_MS)
    result = measure_layouts(postgres.url, one_hour, repeats=3, time_budget_s=0.001)
    assert result.repeats_requested == 3 and result.repeats_done == 1
    assert all(len(r.ingest_s) == 1 for r in result.layouts if r.measured)


def test_misuse_is_refused_with_what_to_fix(postgres: Any) -> None:
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        measure_layouts(postgres.url, SMALL, repeats=0)
    with pytest.raises(ValueError, match="unknown layout 'csv'"):
        LayoutReport((), 0, 0, 0.0, 1, 1, 1, True, "", 0.0).layout("csv")
