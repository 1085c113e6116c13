"""The review's growth tables (§5.1, §5.2, §5.3) as data, the arithmetic relations its
cells must satisfy among themselves, and a verdict for a cell against a measured
projection.

Units: the review's KB/MB/GB are read as decimal (10³, 10⁶, 10⁹ bytes); reading them as
binary changes no verdict (2.4-7.4 %). Horizons: a month is 30 days, six months 180 and a
year 365 days, which is how the review's own rows multiply out (8.6M = 1K × 288 × 30;
105M = 1K × 288 × 365), except where a check below shows it does not.
Invariant: `contradictions` names only relations that the numbers in `REVIEW_CELLS` break by
more than the tolerance; a test plants a broken cell and sees it named.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

KB, MB, GB = 1e3, 1e6, 1e9
HORIZON_DAYS = {"day": 1, "month": 30, "6months": 180, "year": 365}


@dataclass(frozen=True)
class ReviewCell:
    """One figure of the review's tables: `quantity` for `users` users over `days` days."""

    key: str  # unique, e.g. "5.1 sensor_batches size 1K/day"
    section: str
    quantity: str  # what the projection must give: see QUANTITIES
    users: int
    days: int
    value: float  # in the quantity's unit (rows, bytes, uploads, readings)
    text: str  # as the review prints it

    @property
    def rounding(self) -> tuple[float, float]:
        """The values that print as `text`: half a unit of its last significant digit either
        side ("8.6M": 8.55M-8.65M; "~500KB": 450-550 KB, trailing zeros not significant)."""
        found = re.search(r"\d[\d,]*(?:\.\d+)?", self.text)
        if found is None:
            return self.value, self.value
        digits = found.group().replace(",", "")
        if "." in digits:
            place = 10.0 ** -len(digits.split(".")[1])
        else:
            place = 10.0 ** (len(digits) - len(digits.rstrip("0")))
        half = 0.5 * place * self.value / float(digits)
        return self.value - half, self.value + half


QUANTITIES = {
    "uploads": "uploads", "readings": "readings",
    "sensor_batches_rows": "rows", "sensor_batches_bytes": "bytes",
    "contributions_rows": "rows", "phone_file_bytes": "bytes",
    "aggregates_5m_rows": "rows", "aggregates_daily_rows": "rows",
    "aggregates_5m_bytes": "bytes", "aggregates_daily_bytes": "bytes",
}


def _cells() -> tuple[ReviewCell, ...]:
    c = ReviewCell
    per_day = [("uploads", 288, 288e3, 2.88e6, "288", "288K", "2.88M"),
               ("readings", 30 * 288, 8.6e6, 86e6, "~30 per upload", "8.6M", "86M"),
               ("sensor_batches_rows", 288, 288e3, 2.88e6, "288", "288K", "2.88M"),
               ("sensor_batches_bytes", 500 * KB, 500 * MB, 5 * GB, "~500KB", "500MB", "5GB")]
    cells = []
    for quantity, one, thousand, ten_thousand, t1, t1k, t10k in per_day:
        name = quantity
        cells += [c(f"5.1 {name} per user/day", "5.1", quantity, 1, 1, one, t1),
                  c(f"5.1 {name} 1K users/day", "5.1", quantity, 1000, 1, thousand, t1k),
                  c(f"5.1 {name} 10K users/day", "5.1", quantity, 10_000, 1, ten_thousand,
                    t10k)]
    for days, rows, size, text in ((7, 2016, 200 * KB, "~200KB"), (30, 8640, 800 * KB, "~800KB"),
                                   (90, 25_920, 2.5 * MB, "~2.5MB"),
                                   (365, 105_120, 10 * MB, "~10MB")):
        cells += [c(f"5.2 contributions rows {days} days", "5.2", "contributions_rows", 1, days,
                    rows, f"{rows:,}"),
                  c(f"5.2 SQLite size {days} days", "5.2", "phone_file_bytes", 1, days, size, text)]
    for horizon, batches, five, daily, tb, t5, td in (
            ("month", 8.6e6, 26e3, 900, "8.6M", "26K", "900"),
            ("6months", 52e6, 156e3, 5.4e3, "52M", "156K", "5.4K"),
            ("year", 105e6, 315e3, 10.8e3, "105M", "315K", "10.8K")):
        days = HORIZON_DAYS[horizon]
        cells += [c(f"5.3 sensor_batches rows 1K {horizon}", "5.3", "sensor_batches_rows", 1000,
                    days, batches, tb),
                  c(f"5.3 aggregates_5m rows 1K {horizon}", "5.3", "aggregates_5m_rows", 1000,
                    days, five, t5),
                  c(f"5.3 aggregates_daily rows 1K {horizon}", "5.3", "aggregates_daily_rows",
                    1000, days, daily, td)]
    cells += [c("5.3 sensor_batches size 1K year", "5.3", "sensor_batches_bytes", 1000, 365,
                50 * GB, "~50GB"),
              c("5.3 aggregates_5m size 1K year", "5.3", "aggregates_5m_bytes", 1000, 365,
                50 * MB, "~50MB"),
              c("5.3 aggregates_daily size 1K year", "5.3", "aggregates_daily_bytes", 1000, 365,
                2 * MB, "~2MB")]
    return tuple(cells)


REVIEW_CELLS = _cells()


def by_key(cells: Sequence[ReviewCell] = REVIEW_CELLS) -> dict[str, ReviewCell]:
    return {cell.key: cell for cell in cells}


@dataclass(frozen=True)
class Relation:
    """Two ways the review's own figures give one number."""

    description: str
    left: Callable[[Mapping[str, float]], float]
    right: Callable[[Mapping[str, float]], float]
    left_text: str
    right_text: str
    tolerance: float = 0.10  # relative; the review's sizes are approximate ("~500KB")


@dataclass(frozen=True)
class Contradiction:
    """A relation the review's figures break: `left` and `right` differ by `ratio`."""

    description: str
    left_text: str
    left: float
    right_text: str
    right: float

    @property
    def ratio(self) -> float:
        return self.left / self.right


def _v(key: str) -> Callable[[Mapping[str, float]], float]:
    return lambda v: v[key]


RELATIONS: tuple[Relation, ...] = (
    Relation("a year of 1K users at §5.1's size per user-day against §5.3's year estimate",
             lambda v: v["5.1 sensor_batches_bytes per user/day"] * 1000 * 365,
             _v("5.3 sensor_batches size 1K year"),
             "500 KB x 1,000 users x 365 days", "§5.3's 50 GB"),
    Relation("bytes per sensor_batches row: §5.1's per-user size over its uploads against "
             "§5.3's year size over its year of rows",
             lambda v: v["5.1 sensor_batches_bytes per user/day"]
             / v["5.1 sensor_batches_rows per user/day"],
             lambda v: v["5.3 sensor_batches size 1K year"]
             / v["5.3 sensor_batches rows 1K year"],
             "500 KB / 288 rows", "50 GB / 105M rows"),
    Relation("10K users a day against 10,000 times one user's day",
             _v("5.1 sensor_batches_bytes 10K users/day"),
             lambda v: v["5.1 sensor_batches_bytes per user/day"] * 10_000,
             "§5.1's 5 GB", "10,000 x 500 KB"),
    Relation("a month of rows against 30 days of §5.1's daily rows",
             _v("5.3 sensor_batches rows 1K month"),
             lambda v: v["5.1 sensor_batches_rows 1K users/day"] * 30,
             "§5.3's 8.6M", "288K x 30", tolerance=0.01),
    Relation("six months of rows against six months",
             _v("5.3 sensor_batches rows 1K 6months"),
             lambda v: v["5.3 sensor_batches rows 1K month"] * 6, "§5.3's 52M", "8.6M x 6",
             tolerance=0.01),
    Relation("days in a year: the daily aggregates' year over their month against the "
             "batches' year over their month",
             lambda v: v["5.3 aggregates_daily rows 1K year"]
             / v["5.3 aggregates_daily rows 1K month"] * 30,
             lambda v: v["5.3 sensor_batches rows 1K year"]
             / v["5.3 sensor_batches rows 1K month"] * 30,
             "10.8K / 900 x 30 days", "105M / 8.6M x 30 days", tolerance=0.01),
    Relation("bytes per SQLite row: a week against a year",
             lambda v: v["5.2 SQLite size 7 days"] / v["5.2 contributions rows 7 days"],
             lambda v: v["5.2 SQLite size 365 days"] / v["5.2 contributions rows 365 days"],
             "200 KB / 2,016", "10 MB / 105,120"),
)


def contradictions(cells: Sequence[ReviewCell] = REVIEW_CELLS,
                   relations: Sequence[Relation] = RELATIONS) -> list[Contradiction]:
    """The relations whose two sides differ by more than their tolerance (relative)."""
    values = {cell.key: cell.value for cell in cells}
    found = []
    for relation in relations:
        left, right = relation.left(values), relation.right(values)
        if abs(left / right - 1) > relation.tolerance:
            found.append(Contradiction(relation.description, relation.left_text, left,
                                       relation.right_text, right))
    return found


@dataclass(frozen=True)
class Verdict:
    """A review figure against a projection with its interval."""

    within: bool
    factor: float  # projection estimate / review figure

    def text(self) -> str:
        if self.within:
            return "within the interval"
        return f"off: measured {self.factor:.3g}x the review's figure"


def verdict(review: ReviewCell | float, estimate: float, low: float, high: float) -> Verdict:
    """Within when the projection's interval [low, high] meets the values the review's
    figure stands for (its rounding, `ReviewCell.rounding`; a bare number stands for
    itself); otherwise off by the factor estimate / figure."""
    if isinstance(review, ReviewCell):
        (review_low, review_high), value = review.rounding, review.value
    else:
        review_low = review_high = value = review
    return Verdict(low <= review_high and review_low <= high, estimate / value)
