"""Projected rows: what an aggregate table gains in some days at some number of users
(`project_rows`), and the projections every report carries (`PROJECTED_USERS` over a
month, six months and a year, beside review §5.3's figures for 1K users).

Invariants: a cell per window is 288 rows a day of `sensor_aggregates_5m`, a cell per day
one row a day of `sensor_aggregates_daily`; intervals are 95 %: the occupancy model's
jackknife over phone blocks (the default) or a curve's bootstrap over seeds.
"""

from __future__ import annotations

from simulator.capacity.aggregates._types import Model, Table
from simulator.capacity.aggregates.arithmetic import PERIODS_DAYS, REVIEW_ROWS_1K
from simulator.capacity.aggregates.counting import WINDOWS_PER_DAY
from simulator.capacity.aggregates.report import AggregateCellsReport, RowProjection
from simulator.errors import UsageError

PROJECTED_USERS = (1_000, 10_000, 100_000)


def _rows_per_day_factor(table: str) -> float:
    if table == "sensor_aggregates_5m":
        return float(WINDOWS_PER_DAY)
    if table == "sensor_aggregates_daily":
        return 1.0
    raise UsageError(f"table must be sensor_aggregates_5m or sensor_aggregates_daily, "
                     f"got {table!r}")


def project_rows(report: AggregateCellsReport, users: int, days: int, *,
                 table: Table = "sensor_aggregates_5m", model: Model = "occupancy"
                 ) -> tuple[float, float, float]:
    """(estimate, low, high) rows `table` gains in `days` days at `users` users, with a
    95 % interval: the occupancy model's jackknife over phone blocks (the default), or a
    curve's bootstrap over seeds."""
    if users < 1 or days < 1:
        raise UsageError(f"users and days must be at least 1, got {users} and {days}")
    scale = _rows_per_day_factor(table) * days
    which = 0 if table == "sensor_aggregates_5m" else 1
    if model == "occupancy":
        e = report.occupancy.estimate(users)
        estimate, low, high = ((e.cells_per_window, e.cells_per_window_low,
                                e.cells_per_window_high) if which == 0 else
                               (e.cells_per_day, e.cells_per_day_low, e.cells_per_day_high))
    elif model in ("saturating", "power"):
        fit = getattr((report.window_fits, report.day_fits)[which], model)
        estimate = float(fit.predict(users))
        low, high = fit.predict_interval(users)
    else:
        raise UsageError(f"model must be occupancy, saturating or power, got {model!r}")
    return estimate * scale, low * scale, high * scale


def _projections(report: AggregateCellsReport) -> tuple[RowProjection, ...]:
    out = []
    tables: tuple[Table, ...] = ("sensor_aggregates_5m", "sensor_aggregates_daily")
    for table in tables:
        for users in PROJECTED_USERS:
            for period, days in PERIODS_DAYS:
                rows, low, high = project_rows(report, users, days, table=table)
                out.append(RowProjection(
                    table, users, period, days, rows, low, high,
                    project_rows(report, users, days, table=table, model="saturating")[0],
                    project_rows(report, users, days, table=table, model="power")[0],
                    REVIEW_ROWS_1K[(table, days)] if users == 1_000 else None))
    return tuple(out)
