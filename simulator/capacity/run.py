"""`ggsim capacity`'s measurements in order, each timed, and what follows from them: unit
costs, projections for every users × horizon, the review comparison, thresholds.

Invariant: every figure in a `CapacityResult` is computed from a measurement of this run
(or is marked not measured); the review's numbers appear only as the review's.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from simulator.backend.postgres import open_database
from simulator.capacity import model
from simulator.capacity.aggregates import (
    AggregateCellsReport,
    measure_aggregate_cells,
    project_rows,
)
from simulator.capacity.compare import Projector, compare, unit_projector
from simulator.capacity.layouts import full_sample, measure_layouts, quick_sample
from simulator.capacity.month_scale import measure_month_scale
from simulator.capacity.node import OneNode, ingest_limit, job_limit, storage_limit
from simulator.capacity.payload_drivers import measure_payload_drivers
from simulator.capacity.phone_file import GrowthVariant, PhoneFileReport, measure_phone_file
from simulator.capacity.plan import CapacityOptions
from simulator.capacity.project import Interval, bootstrap_mean
from simulator.capacity.queries import measure_queries
from simulator.capacity.result import CapacityResult, GrowthRow, Threshold
from simulator.capacity.review import HORIZON_DAYS, contradictions
from simulator.capacity.scale_check import check_month
from simulator.capacity.storage import measure_storage
from simulator.capacity.throughput import (
    measure_aggregation_job,
    measure_burst,
    measure_pot_reads,
    measure_ramp,
)
from simulator.capacity.workload import FleetSample
from simulator.instants import parse_instant

SAMPLE_START = "2024-03-04T00:00:00Z"  # a Monday: the bulk days start the working week
Progress = Callable[[str], None]


@contextmanager
def _timed(result: CapacityResult, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        result.timings_s[name] = time.perf_counter() - started


def run_capacity(options: CapacityOptions, progress: Progress | None = None) -> CapacityResult:
    """Measure on the embedded PostgreSQL (or `options.database_url`), then project."""
    say = progress or (lambda _: None)
    result = CapacityResult(options)
    start = parse_instant(SAMPLE_START)
    sizes = options.sizes
    with _timed(result, "aggregate cells"):
        cells = measure_aggregate_cells(quick=options.quick, progress=say)
    result.extra["aggregates"] = cells
    with open_database(options.database_url) as db:
        result.server = _server_facts(db.url)
        if db.embedded:
            result.disk_bytes = shutil.disk_usage(tempfile.gettempdir()).total
        for variant in options.schemas:
            with _timed(result, f"storage {variant}"):
                result.storage[variant] = [
                    measure_storage(db.url, variant, seed=seed,
                                    api_sample=FleetSample(seed, sizes.api_phones,
                                                           sizes.api_days, start),
                                    bulk_sample=FleetSample(seed, sizes.bulk_phones,
                                                            sizes.bulk_days, start),
                                    progress=say)
                    for seed in options.seed_list]
        months = []
        for variant in options.schemas:
            with _timed(result, f"month scale {variant}"):
                months.append(measure_month_scale(
                    db.url, variant,
                    FleetSample(options.first_seed, sizes.month_phones, sizes.month_days, start),
                    progress=say))
        result.extra["month scale"] = months
        for name, measure in (("ramp", measure_ramp), ("burst", measure_burst),
                              ("aggregation job", measure_aggregation_job),
                              ("pot reads", measure_pot_reads)):
            with _timed(result, name):
                result.extra[name] = measure(db.url, quick=options.quick, progress=say)
        with _timed(result, "queries"):
            result.extra["queries"] = measure_queries(db.url, quick=options.quick, cells=cells,
                                                      progress=say)
        with _timed(result, "payload drivers"):
            result.extra["payload drivers"] = measure_payload_drivers(
                db.url, seed=options.first_seed, quick=options.quick, progress=say)
        with _timed(result, "storage layouts"):
            sample = quick_sample(options.first_seed) if options.quick else full_sample(
                options.first_seed)
            result.extra["layouts"] = measure_layouts(db.url, sample, progress=say)
    with _timed(result, "phone file"):
        phones = [measure_phone_file(seed=seed, quick=options.quick, progress=say)
                  for seed in options.seed_list]
    result.extra["phone"] = phones
    for variant, runs in result.storage.items():
        result.units[variant] = model.per_user_day(runs)
    result.extra["scale checks"] = [check for month in months
                                    for check in check_month(result.units[month.variant], month,
                                                             early_days=sizes.bulk_days)]
    result.growth = _growth(result)
    result.comparison = compare(_projectors(result))
    result.contradictions = contradictions()
    result.extra["one_node"] = _one_node(result)
    result.thresholds = _thresholds(result)
    return result


def _one_node(result: CapacityResult) -> OneNode:
    """The limits of one node like the measured one (recommended schema when measured)."""
    variant = "recommended" if "recommended" in result.units else next(iter(result.units))
    unit = result.units[variant]
    limits = []
    ramp = result.extra.get("ramp")
    if ramp is not None:
        limits.append(ingest_limit(ramp.knee.held_rate_per_s, ramp.knee.broke_rate_per_s,
                                   unit.uploads_per_user_day.estimate))
    job = result.extra.get("aggregation job")
    retained = [f for f in (job.fits if job else ()) if "retention" in f.table]
    if retained:
        fit = retained[0]
        limits.append(job_limit(fit.users_at_minute, fit.users_at_minute_low,
                                fit.users_at_minute_high, fit.table))
    year = model.total(model.server_bytes(unit, 1, 365, retention=variant == "recommended"))
    limits.append(storage_limit(result.disk_bytes, (year.estimate, year.low, year.high)))
    return OneNode(tuple(limits))


def _aggregate_rows(cells: AggregateCellsReport) -> Callable[[str, int, int], Interval]:
    def rows(quantity: str, users: int, days: int) -> Interval:
        if quantity == "aggregates_5m_rows":
            estimate, low, high = project_rows(cells, users, days, table="sensor_aggregates_5m")
        else:
            estimate, low, high = project_rows(cells, users, days,
                                               table="sensor_aggregates_daily")
        return Interval(estimate, low, high, len(cells.seeds))
    return rows


def _phone_projection(reports: list[PhoneFileReport]
                      ) -> Callable[[str, int], Interval | None]:
    """§5.2's figures from the shipped app's file (v2, no maintenance, SQLite's default
    auto-vacuum), over the seeds; None for a day count this run did not measure."""
    shipped = GrowthVariant(schema_version=2, maintenance="none")

    def project(quantity: str, days: int) -> Interval | None:
        values = [float(p.contributions_rows if quantity == "contributions_rows"
                        else p.file_bytes)
                  for r in reports for p in r.growth if p.variant == shipped and p.days == days]
        return bootstrap_mean(values, seed=days) if len(values) == len(reports) else None
    return project


def _server_facts(url: str) -> dict[str, str]:
    import asyncio

    import asyncpg

    async def read() -> dict[str, str]:
        conn = await asyncpg.connect(url, timeout=30)
        try:
            return {"version": str(await conn.fetchval("SHOW server_version")),
                    "shared_buffers": str(await conn.fetchval("SHOW shared_buffers")),
                    "default_toast_compression": str(
                        await conn.fetchval("SHOW default_toast_compression"))}
        finally:
            await conn.close()
    return asyncio.run(read())


def _growth(result: CapacityResult) -> list[GrowthRow]:
    rows = []
    for variant, unit in result.units.items():
        for users in result.options.users:
            for horizon in result.options.horizons:
                days = HORIZON_DAYS[horizon]
                for retention in (False, True) if variant == "recommended" else (False,):
                    parts = model.server_bytes(unit, users, days, retention=retention)
                    rows.append(GrowthRow(variant, users, horizon, days, retention,
                                          model.total(parts), parts))
    return rows


def _projectors(result: CapacityResult) -> dict[str, Projector]:
    cells, phones = result.extra.get("aggregates"), result.extra.get("phone")
    aggregate_rows = _aggregate_rows(cells) if cells else (lambda q, u, d: None)
    phone = _phone_projection(phones) if phones else (lambda q, d: None)
    return {variant: unit_projector(unit, aggregate_rows, phone)
            for variant, unit in result.units.items()}


def _thresholds(result: CapacityResult) -> list[Threshold]:
    limit = result.options.max_bytes_per_user_day
    if limit is None:
        return []
    found = []
    for variant, unit in result.units.items():
        per_day = model.total(model.server_bytes(unit, 1, 1, retention=False)).estimate
        found.append(Threshold(f"server bytes per user-day ({variant})", limit, per_day,
                               per_day <= limit))
    return found
