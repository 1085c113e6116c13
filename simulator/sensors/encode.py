"""Upload envelopes as JSON Lines: a fast columnar writer and a plain reference.

Each line is one upload envelope::

    {"device_id": ..., "user_id": ..., "seq": ..., "batch_id": ..., "payload": {review §4.2}}

How numbers are written is a `NumberFormat` (it changes payload size, and payload size
drives the capacity figures of review §5):

- ``float32`` (default): the shortest decimal that reads back as the same float32. Android
  delivers sensor values as `float`; Kotlin has no implicit widening, so
  `JSONObject.put(key, event.values[0])` boxes a `java.lang.Float`, and org.json's
  `numberToString` prints it with `Float.toString`, the shortest float32 form.
- ``float64``: the float32 widened to double first (`toDouble()` in the app, or a
  serializer that takes doubles), printed as the shortest double: ``0.1f`` becomes
  ``0.10000000149011612``. About 40 % more bytes per batch.
- ``roundN`` (``round0``..``round9``): widened and rounded to N decimals before printing.
- ``orgjson``: exactly what Android's own org.json (AOSP libcore) writes for the app's
  values. The values are those of ``float32`` (boxed `java.lang.Float`s), but every
  number goes through `JSONObject.numberToString`: a value equal to its `long` is
  written as `Long.toString` (``150``, not ``150.0``; ``-0.0f`` as ``0``), any other as
  `Float.toString`/`Double.toString`, which use the exponent form below 10^-3 and from
  10^7 (``1.0652645E-4``). Latitude and longitude are `Double`s there too.
- ``orgjson64``: the same with every sensor value widened to `Double` (``put(name,
  double)`` from Java, or ``toDouble()`` in Kotlin) and double summary statistics;
  `Double` negative zero is written ``-0``.

Derived numbers (summary statistics) are float32 in ``float32`` and ``orgjson`` mode and
double otherwise. Latitude and longitude are doubles on Android and are always written
rounded to 6 decimals (0.1 m, far below GPS accuracy).

The Java digits are those of the JDK 19+ specification of `Float.toString` and
`Double.toString` (the shortest decimal that rounds to the value; the closest of them;
at least two digits when one would do), which AOSP's libcore now implements
(`FloatToDecimal`); `android_number` below is an exact, slow statement of it (rational
arithmetic), the fast writer gets the same text from orjson's shortest digits. Sources
and the caveats (older Android releases, the Kotlin overload) are in docs/payload.md.

The fast writer is `simulator.sensors.jsonl` (orjson formats the numbers, a compiled
loop lays out the text); `reference_line` builds the same line the ordinary way, one dict
per batch, and tests hold the two to byte equality.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from simulator.errors import UsageError
from simulator.sensors.batch import BatchBlock, summarize
from simulator.sensors.jsonl import (
    LATLON_DECIMALS,
    Encoded,
    android_numbers,
    encode_block,
    iso_seconds,
    orjson_numbers,
)

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
Floats = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class NumberFormat:
    """How sensor floats and derived floats are written; see the module docstring."""

    name: str = "float32"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"float32|float64|round[0-9]|orgjson|orgjson64", self.name):
            raise UsageError(
                "number format must be float32, float64, round0..round9, orgjson or "
                f"orgjson64, got {self.name!r}"
            )

    @property
    def android(self) -> bool:
        """Numbers are written by Android's `JSONObject.numberToString` (the orgjson formats)."""
        return self.name.startswith("orgjson")

    @property
    def _float32(self) -> bool:
        return self.name in ("float32", "orgjson")

    def sensor(self, values: npt.NDArray[np.float32]) -> Floats:
        """Sensor values (float32 on the phone) as they are written."""
        if self._float32:
            return values.astype(np.float32, copy=False)
        wide = values.astype(np.float64)
        return np.round(wide, int(self.name[5:])) if self.name.startswith("round") else wide

    def derived(self, values: npt.NDArray[np.float64]) -> Floats:
        """Computed values (summary statistics) as they are written."""
        if self._float32:
            return values.astype(np.float32)
        return np.round(values, int(self.name[5:])) if self.name.startswith("round") else values

    def numbers(self, values: npt.NDArray[Any]) -> bytes:
        """A flat array of values as written, as one JSON array (for the fast writer)."""
        return android_numbers(values, android_number) if self.android else orjson_numbers(
            values)


DEFAULT_FORMAT = NumberFormat()


# ---------------------------------------------------------------------------------------
# Android's numberToString, stated exactly (rational arithmetic). Slow and obviously right.

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def android_number(value: float, *, double: bool) -> str:
    """`JSONObject.numberToString` of a finite `Double` (`double`) or `Float` on Android.

    AOSP libcore's org.json: a `Double` equal to -0.0 is ``-0`` (a `Float` is not equal to
    the `Double` it is compared with); a number whose `doubleValue()` equals its
    `(double) longValue()` is `Long.toString(longValue())`; any other is `toString()`.
    """
    if double and value == 0.0 and math.copysign(1.0, value) < 0:
        return "-0"
    long_value = max(_LONG_MIN, min(_LONG_MAX, int(value)))  # Java's saturating (long)
    if float(long_value) == value:  # (double) long rounds to nearest, as Python's float()
        return str(long_value)
    return java_to_string(value, double=double)


def java_to_string(value: float, *, double: bool) -> str:
    """`Double.toString` (`double`) or `Float.toString` of a finite value, JDK 19+ rules."""
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    significand, exponent = _java_decimal(abs(value), double=double)
    return ("-" if value < 0 else "") + _java_layout(str(significand), exponent)


def _java_decimal(magnitude: float, *, double: bool) -> tuple[int, int]:
    """The decimal s x 10^i Java selects for a positive finite value: of those that round
    to it, the shortest (but two digits when one would do), closest, even s on a tie."""
    exact = Fraction(magnitude)
    low, high, closed = _rounding_interval(magnitude, double=double)

    def rounds_back(decimal: Fraction) -> bool:
        return low < decimal < high or (closed and decimal in (low, high))

    top = _decimal_exponent(exact)
    # from 2 digits: a 1-digit decimal is on the 2-digit grid, and Java then picks the
    # closest decimal of length 1 or 2 (Float.MIN_VALUE is 1.4E-45, not 1.0E-45)
    for length in range(2, 19):
        exponent = top - length + 1
        scale = Fraction(10) ** exponent
        below = math.floor(exact / scale)
        found = [s for s in (below, below + 1) if rounds_back(s * scale)]
        if found:
            best = min(found, key=lambda s: (abs(s * scale - exact), s % 2))
            while best % 10 == 0:
                best, exponent = best // 10, exponent + 1
            return best, exponent
    raise AssertionError(f"no decimal rounds to {magnitude!r}")  # pragma: no cover


def _rounding_interval(magnitude: float, *, double: bool) -> tuple[Fraction, Fraction, bool]:
    """The reals that round to `magnitude` (as float32 or float64): the halfway points to
    its neighbours, included when its significand is even (round half to even)."""
    kind = np.float64 if double else np.float32
    value = kind(magnitude)
    with np.errstate(over="ignore"):  # the largest finite value's neighbour is infinity
        below = np.nextafter(value, kind(0.0))
        above = np.nextafter(value, kind(np.inf))
    exact = Fraction(magnitude)
    step_up = Fraction(float(above)) - exact if np.isfinite(above) else exact - Fraction(
        float(below))
    bits = value.view(np.uint64 if double else np.uint32)
    return (exact + Fraction(float(below))) / 2, exact + step_up / 2, int(bits) % 2 == 0


def _decimal_exponent(exact: Fraction) -> int:
    """k with 10^k <= exact < 10^(k+1)."""
    k = len(str(exact.numerator)) - len(str(exact.denominator))
    while Fraction(10) ** k > exact:
        k -= 1
    while Fraction(10) ** (k + 1) <= exact:
        k += 1
    return k


def _java_layout(digits: str, exponent: int) -> str:
    """Java's layout of digits x 10^exponent: plain for 10^-3 <= d < 10^7, else d.dddEn."""
    n = len(digits)
    e = n + exponent - 1
    if -3 <= e < 0:
        return "0." + "0" * (-e - 1) + digits
    if 0 <= e < 7:
        if exponent >= 0:
            return digits + "0" * exponent + ".0"
        return digits[: n + exponent] + "." + digits[n + exponent:]
    return digits[0] + "." + (digits[1:] or "0") + "E" + str(e)


# ---------------------------------------------------------------------------------------
# Reference encoder: one dict per batch, orjson.dumps. Slow and obviously right.


def _num(value: np.floating[Any], fmt: NumberFormat = DEFAULT_FORMAT) -> object:
    """A value as the reference writes it: null for a glitch; Android's text for orgjson
    (a float32 is a `Float`, a float64 a `Double`)."""
    if not fmt.android:
        return None if np.isnan(value) else value
    if not np.isfinite(value):
        return None
    text = android_number(float(value), double=value.dtype == np.float64)
    return orjson.Fragment(text.encode())


def reference_line(block: BatchBlock, i: int, fmt: NumberFormat = DEFAULT_FORMAT) -> bytes:
    """The envelope of batch `i` as one JSON line (with trailing newline), built from dicts."""
    summary = summarize(block.take(np.array([i])))
    start, end = int(block.offsets[i]), int(block.offsets[i + 1])
    light = fmt.sensor(block.light[start:end])
    accel = fmt.sensor(block.accel[start:end])
    gyro = fmt.sensor(block.gyro[start:end])
    pressure = fmt.sensor(block.pressure[start:end])
    readings = []
    for k in range(end - start):
        reading: dict[str, object] = {
            "t": int(block.t_ms[start + k]),
            "light": _num(light[k], fmt),
            "accel": [_num(v, fmt) for v in accel[k]],
            "gyro": [_num(v, fmt) for v in gyro[k]],
        }
        if block.has_pressure[i]:
            reading["pressure"] = _num(pressure[k], fmt)
        readings.append(reading)

    def stat(name: str) -> object:
        return _num(fmt.derived(getattr(summary, name))[0], fmt)

    def degrees(values: npt.NDArray[np.float64]) -> object:
        rounded = np.round(values[i], LATLON_DECIMALS)
        return _num(rounded, fmt) if fmt.android else float(rounded)

    summary_dict: dict[str, object] = {
        "count": int(summary.count[0]),
        "period_start": iso_seconds(block.period_start_ms[i : i + 1])[0].decode(),
        "period_end": iso_seconds(block.period_end_ms[i : i + 1])[0].decode(),
        "light": {"avg": stat("light_avg"), "min": stat("light_min"), "max": stat("light_max")},
        "accel_rms": stat("accel_rms"),
        "gyro_rms": stat("gyro_rms"),
    }
    if block.has_pressure[i]:
        summary_dict["pressure"] = {
            "avg": stat("pressure_avg"),
            "min": stat("pressure_min"),
            "max": stat("pressure_max"),
        }
    payload = {
        "timestamp": int(block.period_start_ms[i]),
        "summary": summary_dict,
        "batch": readings,
        "location": {
            "lat": degrees(block.lat),
            "lon": degrees(block.lon),
            "accuracy_m": _num(fmt.sensor(block.accuracy_m[i : i + 1])[0], fmt),
        },
        "geohash": block.geohash[i].decode(),
        "battery_level": int(block.battery_level[i]),
        "is_charging": bool(block.is_charging[i]),
    }
    envelope = {
        "device_id": block.device_id[i].decode(),
        "user_id": block.user_id[i].decode(),
        "seq": int(block.seq[i]),
        "batch_id": block.batch_id[i].decode(),
        "payload": payload,
    }
    return orjson.dumps(envelope, option=_NUMPY) + b"\n"


def encode_lines(block: BatchBlock, fmt: NumberFormat = DEFAULT_FORMAT) -> list[bytes]:
    """Every batch of `block` as one JSON line (newline included), in block order."""
    return encode(block, fmt).lines()


def encode(block: BatchBlock, fmt: NumberFormat = DEFAULT_FORMAT) -> Encoded:
    """Every batch of `block` as JSON lines in one buffer (see `jsonl.Encoded`)."""
    return encode_block(block, fmt.sensor, fmt.derived, fmt.numbers)


def iter_lines(block: BatchBlock, fmt: NumberFormat = DEFAULT_FORMAT) -> Iterator[bytes]:
    """`encode_lines` in time order (`order_ms`, then phone), as the generator writes them."""
    order = np.lexsort((block.phone, block.order_ms))
    lines = encode_lines(block, fmt)
    for i in order.tolist():
        yield lines[i]
