"""Backend storage measured on the real engine: the API path and COPY store the same bytes
per row, the growth curve rises, the archive holds what was moved."""

from __future__ import annotations

import pytest

from simulator.capacity.storage import measure_storage
from simulator.capacity.workload import FleetSample, uploads
from simulator.instants import parse_instant

START = parse_instant("2024-03-04T00:00:00Z")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["recommended", "as-is"])
def test_the_api_and_copy_store_the_same_bytes_per_row(postgres, variant: str) -> None:  # type: ignore[no-untyped-def]
    run = measure_storage(postgres.url, variant, seed=3,
                          api_sample=FleetSample(3, 24, 0.5, START),
                          bulk_sample=FleetSample(3, 6, 2, START))
    uploads_sent = run.api_load.uploads
    assert run.api["sensor_batches"].rows == uploads_sent == run.bulk_same["sensor_batches"].rows
    assert run.api["pot_events"].rows == uploads_sent
    for table in ("sensor_batches", "pot_events"):
        api, bulk = run.api[table], run.bulk_same[table]
        # the same rows: heap and TOAST agree but for the pages concurrent inserters add
        # ahead (PostgreSQL extends a contended relation by several pages at once: a fixed
        # few pages, 1 % at 11,500 rows, more in this small sample); indexes also depend on
        # the order of inserts
        assert bulk.heap_bytes + bulk.toast_bytes == pytest.approx(
            api.heap_bytes + api.toast_bytes, rel=0.10), table
        assert bulk.per_row()["total"] == pytest.approx(api.per_row()["total"], rel=0.15), table
    assert [p.uploads for p in run.growth] == sorted({p.uploads for p in run.growth})
    assert len(run.growth) == 2 and run.growth[-1].uploads == run.bulk["sensor_batches"].rows
    assert 250 < run.uploads_per_phone_day <= 289 and 25 < run.readings_per_upload < 35
    assert run.batch_json.compression_ratio > 1.5  # pglz compresses the readings' JSON
    assert run.api["sensor_aggregates_5m"].rows > 0  # the job ran over the API's rows
    if variant == "recommended":
        assert run.archive is not None and 0 < run.archive.rows < run.bulk["sensor_batches"].rows
        assert set(run.api) >= {"upload_receipts"}
    else:
        assert run.archive is None
        assert "sensor_batches_json" in run.api["sensor_batches"].index_bytes  # §4.1's GIN


def test_the_workload_is_what_the_api_parses_and_is_the_same_for_a_seed() -> None:
    sample = FleetSample(5, 3, 0.1, START)
    first, again = list(uploads(sample)), list(uploads(sample))
    assert first == again and len(first) > 0
    one = first[0]
    assert one.payload in one.body and one.batch_id.encode() in one.body
    assert len(one.body_sha256) == 32
