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

Derived numbers (summary statistics) are float32 in ``float32`` mode and double otherwise.
Latitude and longitude are doubles on Android and are always written rounded to 6
decimals (0.1 m, far below GPS accuracy).

The fast writer is `simulator.sensors.jsonl` (orjson formats the numbers, a compiled
loop lays out the text); `reference_line` builds the same line the ordinary way, one dict
per batch, and tests hold the two to byte equality.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from simulator.errors import UsageError
from simulator.sensors.batch import BatchBlock, summarize
from simulator.sensors.jsonl import LATLON_DECIMALS, Encoded, encode_block, iso_seconds

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
Floats = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class NumberFormat:
    """How sensor floats and derived floats are written; see the module docstring."""

    name: str = "float32"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"float32|float64|round[0-9]", self.name):
            raise UsageError(
                f"number format must be float32, float64 or round0..round9, got {self.name!r}"
            )

    def sensor(self, values: npt.NDArray[np.float32]) -> Floats:
        """Sensor values (float32 on the phone) as they are written."""
        if self.name == "float32":
            return values.astype(np.float32, copy=False)
        wide = values.astype(np.float64)
        return wide if self.name == "float64" else np.round(wide, int(self.name[5:]))

    def derived(self, values: npt.NDArray[np.float64]) -> Floats:
        """Computed values (summary statistics) as they are written."""
        if self.name == "float32":
            return values.astype(np.float32)
        return values if self.name == "float64" else np.round(values, int(self.name[5:]))


DEFAULT_FORMAT = NumberFormat()


# ---------------------------------------------------------------------------------------
# Reference encoder: one dict per batch, orjson.dumps. Slow and obviously right.


def _num(value: np.floating[Any]) -> np.floating[Any] | None:
    return None if np.isnan(value) else value


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
            "light": _num(light[k]),
            "accel": [_num(v) for v in accel[k]],
            "gyro": [_num(v) for v in gyro[k]],
        }
        if block.has_pressure[i]:
            reading["pressure"] = _num(pressure[k])
        readings.append(reading)

    def stat(name: str) -> np.floating[Any] | None:
        return _num(fmt.derived(getattr(summary, name))[0])

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
            "lat": float(np.round(block.lat[i], LATLON_DECIMALS)),
            "lon": float(np.round(block.lon[i], LATLON_DECIMALS)),
            "accuracy_m": _num(fmt.sensor(block.accuracy_m[i : i + 1])[0]),
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
    return encode_block(block, fmt.sensor, fmt.derived)


def iter_lines(block: BatchBlock, fmt: NumberFormat = DEFAULT_FORMAT) -> Iterator[bytes]:
    """`encode_lines` in time order (`order_ms`, then phone), as the generator writes them."""
    order = np.lexsort((block.phone, block.order_ms))
    lines = encode_lines(block, fmt)
    for i in order.tolist():
        yield lines[i]
