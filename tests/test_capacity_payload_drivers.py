"""What drives the payload's size, measured on a real PostgreSQL (no mocks): number format,
barometer and readings per batch, on the wire and as stored JSONB."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import numpy as np
import pytest
from conftest import fresh_database

from simulator.capacity.payload_drivers import (
    NUMBER_FORMATS,
    READINGS_PER_BATCH,
    PayloadDriversReport,
    generate,
    measure_payload_drivers,
    regroup,
)
from simulator.capacity.workload import decoded
from simulator.errors import UsageError
from simulator.instants import parse_instant
from simulator.sensors import FleetConfig, FleetGenerator
from simulator.sensors.batch import concat
from simulator.sensors.encode import NumberFormat, encode
from simulator.sensors.imperfections import Imperfections

START_MS = parse_instant("2024-01-01T08:00:00Z")
BAROMETER = (True, False)


@pytest.fixture(scope="module")
def report(postgres) -> PayloadDriversReport:  # type: ignore[no-untyped-def]
    """One quick measurement shared by the tests below (a fresh database of its own)."""
    return measure_payload_drivers(fresh_database(postgres.url), seed=1, quick=True)


def test_every_variant_is_measured_once(report: PayloadDriversReport) -> None:
    keys = [(s.number_format, s.barometer, s.readings_per_batch) for s in report.sizes]
    assert sorted(keys) == sorted(itertools.product(NUMBER_FORMATS, BAROMETER,
                                                    READINGS_PER_BATCH))
    assert all(s.uploads > 0 for s in report.sizes)
    assert report.toast_compression in ("pglz", "lz4")
    assert len(report.table()) == 2 + len(report.sizes)


@pytest.mark.parametrize("number_format", NUMBER_FORMATS)
@pytest.mark.parametrize("barometer", BAROMETER)
def test_more_readings_give_more_bytes(report: PayloadDriversReport, number_format: str,
                                       barometer: bool) -> None:
    sizes = [report.size(number_format, barometer, r) for r in READINGS_PER_BATCH]
    for fewer, more in itertools.pairwise(sizes):
        assert more.readings_per_upload_mean > fewer.readings_per_upload_mean
        assert more.payload_bytes_mean > fewer.payload_bytes_mean
        assert more.stored_bytes_mean > fewer.stored_bytes_mean
        # the per-batch part is shared by more readings, and compression finds more repeats
        assert more.stored_bytes_per_reading < fewer.stored_bytes_per_reading
    assert [s.readings_per_upload_mean for s in sizes][::2] == [10.0, 60.0]  # regrouped exactly


@pytest.mark.parametrize("number_format", NUMBER_FORMATS)
@pytest.mark.parametrize("readings", READINGS_PER_BATCH)
def test_no_barometer_gives_fewer_bytes(report: PayloadDriversReport, number_format: str,
                                        readings: int) -> None:
    with_baro = report.size(number_format, True, readings)
    without = report.size(number_format, False, readings)
    assert without.envelope_bytes_mean < with_baro.envelope_bytes_mean
    assert without.payload_bytes_mean < with_baro.payload_bytes_mean
    assert without.stored_bytes_mean < with_baro.stored_bytes_mean
    # a reading's "pressure":1013.2 and the summary's pressure object: > 12 bytes a reading
    saved = with_baro.payload_bytes_mean - without.payload_bytes_mean
    assert saved > 12 * without.readings_per_upload_mean


@pytest.mark.parametrize("barometer", BAROMETER)
@pytest.mark.parametrize("readings", READINGS_PER_BATCH)
def test_float64_beats_float32_beats_round2_in_json_bytes(
        report: PayloadDriversReport, barometer: bool, readings: int) -> None:
    size = {f: report.size(f, barometer, readings) for f in NUMBER_FORMATS}
    assert (size["float64"].payload_bytes_mean > size["float32"].payload_bytes_mean
            > size["orgjson"].payload_bytes_mean > size["round2"].payload_bytes_mean)
    assert size["float64"].stored_bytes_mean > size["float32"].stored_bytes_mean
    assert size["float32"].stored_bytes_mean > size["round2"].stored_bytes_mean


@pytest.mark.parametrize("number_format", NUMBER_FORMATS)
@pytest.mark.parametrize("barometer", BAROMETER)
def test_postgres_stores_fewer_bytes_than_the_json_of_a_30_reading_batch(
        report: PayloadDriversReport, number_format: str, barometer: bool) -> None:
    size = report.size(number_format, barometer, 30)
    assert size.stored_bytes_mean < size.payload_bytes_mean
    assert size.payload_to_stored_ratio > 1.5
    assert size.compressed_share == 1.0  # every value went through TOAST compression
    # JSONB's own text adds a space after each ':' and ',': it held the whole payload
    assert size.jsonb_text_bytes_mean > size.payload_bytes_mean
    assert size.table_bytes_per_row >= size.stored_bytes_mean


def test_the_measurement_is_deterministic_and_leaves_nothing_behind(database_url: str) -> None:
    first = measure_payload_drivers(database_url, seed=5, phones=2, hours=1.0)
    second = measure_payload_drivers(database_url, seed=5, phones=2, hours=1.0)
    assert first.sizes == second.sizes
    other = measure_payload_drivers(database_url, seed=6, phones=2, hours=1.0)
    assert other.sizes != first.sizes
    assert _scratch_schemas(database_url) == []


def test_a_fleet_too_small_for_a_batch_size_is_a_usage_error(database_url: str) -> None:
    with pytest.raises(UsageError, match="too small"):
        measure_payload_drivers(database_url, phones=1, hours=0.1)  # 1-2 windows: no 120
    assert _scratch_schemas(database_url) == []  # dropped on failure too
    with pytest.raises(UsageError, match="phones"):
        measure_payload_drivers(database_url, phones=0)


def _scratch_schemas(database_url: str) -> list[str]:
    async def query() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT nspname FROM pg_namespace "
                                    "WHERE nspname LIKE 'ggsim_payload_drivers%'")
            return [row[0] for row in rows]
        finally:
            await conn.close()

    return asyncio.run(query())


# ---------------------------------------------------------------------------------------
# Regrouping readings into batches of another size


def _perfect_fleet(phones: int, hours: float) -> FleetGenerator:
    return FleetGenerator(FleetConfig(seed=3, phones=phones, start_ms=START_MS, hours=hours,
                                      imperfections=Imperfections.none()))


def test_regrouping_cuts_each_phones_readings_in_order_into_exact_batches() -> None:
    fleet = concat(list(_perfect_fleet(3, 1.0).iter_blocks()))
    assert set(fleet.counts.tolist()) == {30}  # no imperfections: 30 a window, no gaps
    ordered = fleet.take(np.lexsort((fleet.seq, fleet.phone)))
    for readings in (10, 60, 120):
        grouped = regroup(fleet, readings)
        grouped.validate()
        assert set(grouped.counts.tolist()) == {readings}
        assert grouped.size == 3 * (12 * 30 // readings)  # 12 windows an hour per phone
        assert np.array_equal(grouped.t_ms, ordered.t_ms)  # nothing lost or reordered
        assert np.array_equal(grouped.gyro, ordered.gyro)
        span_ms = grouped.period_end_ms - grouped.period_start_ms
        assert span_ms.max() == max(1, readings // 30) * 300_000
    assert np.array_equal(regroup(fleet, 30).t_ms, ordered.t_ms)


def test_regrouped_batches_never_span_a_gap_and_are_uploads_the_api_accepts() -> None:
    fleet = concat(list(_perfect_fleet(2, 1.0).iter_blocks()))
    ordered = fleet.take(np.lexsort((fleet.seq, fleet.phone)))
    keep = np.ones(ordered.size, dtype=bool)
    keep[5] = False  # phone 0 loses its sixth window: 5 windows, a gap, then 6
    gappy = ordered.take(np.flatnonzero(keep))
    grouped = regroup(gappy, 60)
    span_ms = grouped.period_end_ms - grouped.period_start_ms
    assert span_ms.max() == 600_000  # two adjacent windows, never three across the gap
    assert grouped.size == 2 + 3 + 6  # phone 0: 5 -> 2 (one left over), 6 -> 3; phone 1: 6
    for line in encode(grouped, NumberFormat("orgjson")).lines():
        upload = decoded(line.rstrip(b"\n"))
        assert upload.samples == 60


def test_generate_gives_every_phone_a_barometer_or_none() -> None:
    with_baro = generate(2, 3, 1.0, START_MS, barometer=True)
    without = generate(2, 3, 1.0, START_MS, barometer=False)
    assert with_baro.has_pressure.all() and not without.has_pressure.any()
    assert np.array_equal(with_baro.t_ms, without.t_ms)  # the same phones otherwise
    assert np.array_equal(with_baro.light, without.light)


def test_regroup_refuses_a_batch_size_below_one() -> None:
    fleet = concat(list(_perfect_fleet(1, 0.5).iter_blocks()))
    with pytest.raises(UsageError, match=">= 1"):
        regroup(fleet, 0)
