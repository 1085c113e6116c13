"""Review §5.3's arithmetic: the aggregate rows it states for 1K users
(`REVIEW_ROWS_1K`) turned into cells per window and per day (`review_arithmetic`).

Review §5.3 says `sensor_aggregates_5m` grows by 26K rows a month and
`sensor_aggregates_daily` by 900 at 1K users: three active cells per 5-minute window
(8,640 windows in a 30-day month) and thirty a day.

Invariant: months are 30 days (`DAYS_PER_MONTH`), six months 180 days, a year 365 days
(`PERIODS_DAYS`), here and in every projection.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.capacity.aggregates.counting import WINDOWS_PER_DAY

DAYS_PER_MONTH = 30
PERIODS_DAYS: tuple[tuple[str, int], ...] = (("month", 30), ("6 months", 180), ("year", 365))
REVIEW_ROWS_1K: dict[tuple[str, int], int] = {  # review §5.3, 1K users
    ("sensor_aggregates_5m", 30): 26_000, ("sensor_aggregates_5m", 180): 156_000,
    ("sensor_aggregates_5m", 365): 315_000, ("sensor_aggregates_daily", 30): 900,
    ("sensor_aggregates_daily", 180): 5_400, ("sensor_aggregates_daily", 365): 10_800}


@dataclass(frozen=True)
class ReviewArithmetic:
    """What review §5.3's aggregate rows imply (1K users, 30-day months)."""

    windows_per_month: int  # 30 days x 288
    cells_per_window: float  # 26K / 8,640
    cells_per_day: float  # 900 / 30
    six_month_ratio_5m: float  # 156K / 26K
    six_month_ratio_daily: float  # 5.4K / 900
    daily_year_months: float  # 10.8K / 900: twelve 30-day months
    daily_year_days: float  # 10.8K / 30 a day = 360 days
    five_min_year_windows: float  # 315K / 3 cells (rounded)
    five_min_year_days: float  # those windows / 288: about 365 days


def review_arithmetic(*, rows_5m_month: int = 26_000, rows_5m_6_months: int = 156_000,
                      rows_5m_year: int = 315_000, rows_daily_month: int = 900,
                      rows_daily_6_months: int = 5_400, rows_daily_year: int = 10_800
                      ) -> ReviewArithmetic:
    """Review §5.3's figures (the defaults) turned into cells per window and per day and
    into the number of days each of its years counts."""
    windows = DAYS_PER_MONTH * int(WINDOWS_PER_DAY)
    per_window = rows_5m_month / windows
    per_day = rows_daily_month / DAYS_PER_MONTH
    year_windows = rows_5m_year / round(per_window)
    return ReviewArithmetic(
        windows_per_month=windows, cells_per_window=per_window, cells_per_day=per_day,
        six_month_ratio_5m=rows_5m_6_months / rows_5m_month,
        six_month_ratio_daily=rows_daily_6_months / rows_daily_month,
        daily_year_months=rows_daily_year / rows_daily_month,
        daily_year_days=rows_daily_year / per_day,
        five_min_year_windows=year_windows,
        five_min_year_days=year_windows / WINDOWS_PER_DAY)
