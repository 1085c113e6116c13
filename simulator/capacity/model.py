"""From measurements to projections: per-user-day figures with intervals over seeds, and
what 1K/10K/100K users cost over a day, a month, six months and a year.

The model is linear in users and days for everything stored per upload (a row per batch,
its receipt, its pot event): bytes = users × days × uploads per user-day × bytes per row,
where bytes per row is the slope of the measured growth curve (size against rows while
the fleet's days were loaded), so fixed pages at the start do not inflate it. Per-device
tables cost users × bytes per device. Aggregates grow with active cells, not users: their
row counts come from the cells model (`aggregates.py`) and their bytes per row from the job
run on the bulk fleet. Intervals: each per-seed figure is bootstrapped over the seeds
(`project.bootstrap_mean`); a projection scales both ends.

Retention (§5.4 as the recommended schema runs it): batches older than 30 days move to
`sensor_batches_archive` in the same database, whose rows are smaller (one index, not
seven) but still there; receipts older than 30 days are deleted; `pot_events` has no
retention at all. `retention=True` projections apply exactly that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.capacity.pgsize import TableSize
from simulator.capacity.project import Interval, bootstrap_mean, linear_fit
from simulator.capacity.storage import StorageRun
from simulator.errors import InvariantError

RETENTION_DAYS = 30
RECEIPT_TABLE = "upload_receipts"
ARCHIVE_TABLE = "sensor_batches_archive"


@dataclass(frozen=True)
class PerUserDay:
    """One schema variant's measured unit costs, each over the seeds."""

    variant: str
    seeds: int
    uploads_per_user_day: Interval
    readings_per_upload: Interval
    bytes_per_row: dict[str, Interval]  # per-upload tables (growth slope)
    bytes_per_device: dict[str, Interval]
    archive_bytes_per_row: Interval | None
    aggregate_bytes_per_row: dict[str, Interval]

    def bytes_per_user_day(self, table: str) -> Interval:
        return self.bytes_per_row[table].scaled(self.uploads_per_user_day.estimate)


def marginal_bytes_per_row(run: StorageRun, table: str) -> float:
    """The slope of `table`'s size against uploads over the bulk days (or its size over
    its rows when there was one day)."""
    points = [(p.uploads, p.total_bytes[table]) for p in run.growth]
    if len(points) >= 2:
        return linear_fit([x for x, _ in points], [y for _, y in points]).slope
    return run.bulk[table].total_bytes / max(run.bulk[table].rows, 1)


def per_user_day(runs: Sequence[StorageRun]) -> PerUserDay:
    """Bootstrap the per-seed unit costs of one variant's runs."""
    if not runs or len({r.variant for r in runs}) != 1:
        raise InvariantError("per_user_day needs runs of one variant")
    first = runs[0]

    def over_seeds(value: Callable[[StorageRun], float]) -> Interval:
        return bootstrap_mean([value(r) for r in runs], seed=len(runs))

    tables = list(first.growth[0].total_bytes)
    archive = (over_seeds(lambda r: _per_row(r.archive)) if first.archive is not None
               else None)
    return PerUserDay(
        variant=first.variant, seeds=len(runs),
        uploads_per_user_day=over_seeds(lambda r: r.uploads_per_phone_day),
        readings_per_upload=over_seeds(lambda r: r.readings_per_upload),
        bytes_per_row={t: over_seeds(_slope_of(t)) for t in tables},
        bytes_per_device={t: over_seeds(_per_row_of("devices", t)) for t in first.devices},
        archive_bytes_per_row=archive,
        aggregate_bytes_per_row={t: over_seeds(_per_row_of("aggregates", t))
                                 for t in first.aggregates})


def _slope_of(table: str) -> Callable[[StorageRun], float]:
    return lambda run: marginal_bytes_per_row(run, table)


def _per_row_of(part: str, table: str) -> Callable[[StorageRun], float]:
    return lambda run: _per_row(getattr(run, part)[table])


def _per_row(size: TableSize | None) -> float:
    assert size is not None
    return size.total_bytes / max(size.rows, 1)


def uploads(unit: PerUserDay, users: int, days: int) -> Interval:
    return unit.uploads_per_user_day.scaled(users * days)


def server_bytes(unit: PerUserDay, users: int, days: int, *, retention: bool
                 ) -> dict[str, Interval]:
    """Bytes per table after `days` days of `users` users (aggregates not included)."""
    rows_per_day = users * unit.uploads_per_user_day.estimate
    result: dict[str, Interval] = {}
    for table, per_row in unit.bytes_per_row.items():
        kept = days
        if retention and table in ("sensor_batches", RECEIPT_TABLE):
            kept = min(days, RETENTION_DAYS)
        result[table] = per_row.scaled(rows_per_day * kept)
    if retention and unit.archive_bytes_per_row is not None and days > RETENTION_DAYS:
        result[ARCHIVE_TABLE] = unit.archive_bytes_per_row.scaled(
            rows_per_day * (days - RETENTION_DAYS))
    for table, per_device in unit.bytes_per_device.items():
        result[table] = per_device.scaled(users)
    return result


def total(parts: dict[str, Interval]) -> Interval:
    """The sum of the parts (ends added: conservative)."""
    values = list(parts.values())
    result = values[0]
    for part in values[1:]:
        result = result.plus(part)
    return result
