"""Every cell of the review's §5.1-§5.3 beside the measured projection of the same
quantity, with a verdict.

A projection comes from one of the measurement sources: the backend's unit costs per
schema variant (`model.PerUserDay`), the aggregate cells model, the phone file. A cell
whose source was not measured in this run has no projection and says so; nothing is
filled in by arithmetic on the review's own numbers. Server sizes are compared without
retention (§5.3's table and its 50 GB precede §5.4's retention policy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from simulator.capacity import model
from simulator.capacity.project import Interval
from simulator.capacity.review import QUANTITIES, REVIEW_CELLS, ReviewCell, Verdict, verdict

# (quantity, users, days) -> the projection, or None when its source was not measured
Projector = Callable[[str, int, int], Interval | None]


@dataclass(frozen=True)
class Compared:
    """One review cell against one variant's projection."""

    variant: str
    projection: Interval | None
    verdict: Verdict | None
    how: str  # what the projection was computed from


@dataclass(frozen=True)
class ComparisonRow:
    cell: ReviewCell
    unit: str
    by_variant: tuple[Compared, ...]


def product(a: Interval, b: Interval) -> Interval:
    """The product of two positive independent estimates, ends multiplied."""
    return Interval(a.estimate * b.estimate, a.low * b.low, a.high * b.high,
                    min(a.samples, b.samples))


HOW = {
    "uploads": "uploads per phone-day of the generated fleets x users x days",
    "readings": "uploads x readings per upload",
    "sensor_batches_rows": "one row per upload (recommended: idempotent)",
    "sensor_batches_bytes": "growth slope (bytes per row, all forks and indexes) x rows",
    "aggregates_5m_rows": "distinct (5-minute window, geohash) cells, cells model",
    "aggregates_daily_rows": "distinct (day, geohash) cells, cells model",
    "aggregates_5m_bytes": "cells model rows x bytes per row of the job's table",
    "aggregates_daily_bytes": "cells model rows x bytes per row of the job's table",
    "contributions_rows": "rows the app core wrote into a real SQLite file",
    "phone_file_bytes": "the SQLite file's size after those days (v2 as shipped)",
}


def unit_projector(unit: model.PerUserDay,
                   aggregate_rows: Callable[[str, int, int], Interval | None],
                   phone: Callable[[str, int], Interval | None]) -> Projector:
    """A projector for one variant from its unit costs and the other two sources."""
    def project(quantity: str, users: int, days: int) -> Interval | None:
        uploads = model.uploads(unit, users, days)
        if quantity in ("uploads", "sensor_batches_rows"):
            return uploads
        if quantity == "readings":
            return product(uploads, unit.readings_per_upload)
        if quantity == "sensor_batches_bytes":
            return model.server_bytes(unit, users, days, retention=False)["sensor_batches"]
        if quantity in ("aggregates_5m_rows", "aggregates_daily_rows"):
            return aggregate_rows(quantity, users, days)
        if quantity in ("aggregates_5m_bytes", "aggregates_daily_bytes"):
            rows = aggregate_rows(quantity.replace("_bytes", "_rows"), users, days)
            table = "sensor_" + quantity.replace("_bytes", "")
            per_row = unit.aggregate_bytes_per_row.get(table)
            return product(rows, per_row) if rows is not None and per_row else None
        if quantity in ("contributions_rows", "phone_file_bytes"):
            return phone(quantity, days)
        raise KeyError(f"no projection for {quantity}")
    return project


def compare(projectors: Mapping[str, Projector],
            cells: Sequence[ReviewCell] = REVIEW_CELLS) -> list[ComparisonRow]:
    """Each cell against each variant's projection."""
    rows = []
    for cell in cells:
        compared = []
        for variant, project in projectors.items():
            value = project(cell.quantity, cell.users, cell.days)
            compared.append(Compared(
                variant, value,
                verdict(cell, value.estimate, value.low, value.high) if value else None,
                HOW[cell.quantity] if value else "not measured in this run"))
        rows.append(ComparisonRow(cell, QUANTITIES[cell.quantity], tuple(compared)))
    return rows
