"""Numbers as a capacity planner reads them: 1.23 MB, 8.64M, an interval in brackets."""

from __future__ import annotations

import math

from simulator.capacity.project import Interval

_SCALE = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))


def human(value: float, unit: str) -> str:
    """1234567 bytes -> '1.23 MB'; 8_640_000 rows -> '8.64M'."""
    if value != value or math.isinf(value):
        return "n/a"
    for prefix, size in _SCALE:
        if abs(value) >= size:
            number = f"{value / size:.3g}{prefix}"
            break
    else:
        number = f"{value:.3g}"
    if unit == "bytes":
        return number.replace("T", " TB").replace("G", " GB").replace("M", " MB").replace(
            "K", " KB") if number[-1] in "TGMK" else f"{number} B"
    return number


def interval_text(value: Interval | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if value.low == value.high:
        return f"{human(value.estimate, unit)} (n={value.samples}, no interval)"
    return f"{human(value.estimate, unit)} [{human(value.low, unit)}, {human(value.high, unit)}]"
