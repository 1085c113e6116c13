"""Sensor Logger's live stream: one HTTP Push (or MQTT) message, parsed and checked whole.

The format is documented in the app's public repository (tszheichoi/awesome-sensor-logger,
PUSHING.md and the README's live-streaming example): a JSON object

    {"messageId": 0, "sessionId": "...", "deviceId": "...",
     "payload": [{"name": "accelerometer", "time": <UTC epoch ns>,
                  "values": {"x": ..., "y": ..., "z": ...}}, ...]}

`messageId` counts the messages of a session up from 0; `sessionId` names one recording and
`deviceId` one phone; delivery is at most once (QoS 0). A sample's `name` is the lower-case
name of the sensor's CSV file in a zip export ("totalacceleration" for
TotalAcceleration.csv) and `values` holds that file's columns other than `time` and
`seconds_elapsed`.

Invariants of a `PushMessage` (`parse_push` raises `PushError` otherwise, naming the field):

- `message_id` >= 0; `session_id` and `device_id` are 1..200 characters;
- every sample has a sensor `name` of 1..64 letters, digits or underscores (it becomes a
  file name), an integer `time_ns` within 2000..2100, and `values` whose keys are column
  names (no `time` or `seconds_elapsed`) and whose values are scalars;
- the columns the recording importer reads are numbers or null where it reads them: x, y, z
  of motion sensors, `pressure`, `lux`, `latitude` (within ±90), `longitude` (within ±180),
  `horizontalAccuracy`/`accuracy`, and `batteryLevel` (at most 1): a message the importer
  could not read is refused at the door, so nothing of it is half-applied;
- no sample is named `metadata` (any case), and no string (ids, values) holds a control
  character: the zip's CSV files must read back as they were written;
- keys of a sample other than name, time and values (Android's `accuracy`) are ignored, as
  the zip export has no column for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from simulator.errors import PushError as PushError
from simulator.sensors.recording_files import (
    ACCELEROMETER,
    ACCELEROMETER_UNCALIBRATED,
    BAROMETER,
    BATTERY,
    GRAVITY,
    GYROSCOPE,
    GYROSCOPE_UNCALIBRATED,
    LIGHT,
    LOCATION,
    TOTAL_ACCELERATION,
)

MAX_BODY_BYTES = 16 * 1024 * 1024  # a 1 s batch of every sensor at 100 Hz is ~100 KiB
MAX_ID_CHARS = 200
EARLIEST_NS = 946_684_800 * 10**9  # 2000-01-01
LATEST_NS = 4_102_444_800 * 10**9  # 2100-01-01

# Push name -> the export's file name; another sensor's file is "<name>.csv" (file lookup
# is case-insensitive, so "wifi" still marks an Android export as WiFi.csv does).
FILES = {name.removesuffix(".csv").lower(): name for name in (
    ACCELEROMETER, ACCELEROMETER_UNCALIBRATED, BAROMETER, BATTERY, GRAVITY, GYROSCOPE,
    GYROSCOPE_UNCALIBRATED, LIGHT, LOCATION, TOTAL_ACCELERATION)}
_XYZ = ("x", "y", "z")
# Columns the importer parses as numbers: (required, optional, bounds by column).
_NUMERIC: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ACCELEROMETER: (_XYZ, ()), ACCELEROMETER_UNCALIBRATED: (_XYZ, ()), GRAVITY: (_XYZ, ()),
    GYROSCOPE: (_XYZ, ()), GYROSCOPE_UNCALIBRATED: (_XYZ, ()), TOTAL_ACCELERATION: (_XYZ, ()),
    BAROMETER: (("pressure",), ()), LIGHT: (("lux",), ()),
    LOCATION: (("latitude", "longitude"), ("horizontalAccuracy", "accuracy")),
    BATTERY: (("batteryLevel",), ()),
}
_LIMITS = {"latitude": 90.0, "longitude": 180.0}
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a CSV cell or Metadata.csv could not hold them as is
_RESERVED_FILES = frozenset({"metadata"})  # Metadata.csv is the session's, not a sensor's
_RESERVED_COLUMNS = frozenset({"time", "seconds_elapsed"})

Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Sample:
    """One sensor sample: its export file, its time and its columns' values."""

    file: str
    time_ns: int
    values: Mapping[str, Cell]


@dataclass(frozen=True)
class PushMessage:
    """One checked push message; invariants in the module docstring."""

    message_id: int
    session_id: str
    device_id: str
    samples: tuple[Sample, ...]


def parse_push(body: bytes) -> PushMessage:
    """The message in an HTTP Push body; `PushError` (400 or 413 or 422) says what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise PushError(f"body of {len(body):,} bytes is over the {MAX_BODY_BYTES:,} limit",
                        413)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PushError(f"body is not JSON: {exc}", 400) from None
    if not isinstance(doc, dict):
        raise PushError(f"body is a JSON {type(doc).__name__}, expected an object with "
                        "messageId, sessionId, deviceId and payload", 400)
    message_id = doc.get("messageId")
    if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id < 0:
        raise PushError(f"messageId must be an integer >= 0, got {message_id!r}")
    payload = doc.get("payload")
    if not isinstance(payload, list):
        raise PushError(f"payload must be a list of samples, got {_kind(payload)}")
    return PushMessage(
        message_id=message_id,
        session_id=_identifier(doc, "sessionId"),
        device_id=_identifier(doc, "deviceId"),
        samples=tuple(_sample(entry, i) for i, entry in enumerate(payload)),
    )


def _identifier(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        raise PushError(f"{key} must be a string of 1..{MAX_ID_CHARS} characters, "
                        f"got {_kind(value)}")
    if _CONTROL.search(value):
        raise PushError(f"{key} holds a control character: {value!r}")
    return value


def _sample(entry: object, i: int) -> Sample:
    if not isinstance(entry, dict):
        raise PushError(f"payload[{i}] must be an object, got {_kind(entry)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PushError(f"payload[{i}].name must be 1..64 letters, digits or underscores, "
                        f"got {name!r}")
    if name.lower() in _RESERVED_FILES:
        raise PushError(f"payload[{i}].name {name!r} is not a sensor (Metadata.csv is the "
                        "session's own file)")
    where = f"payload[{i}] ({name})"
    time_ns = _time_ns(entry.get("time"), where)
    values = entry.get("values")
    if not isinstance(values, dict):
        raise PushError(f"{where}.values must be an object, got {_kind(values)}")
    for column, value in values.items():
        if column in _RESERVED_COLUMNS or not _NAME.fullmatch(column):
            raise PushError(f"{where}.values has an unusable column name {column!r}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise PushError(f"{where}.values.{column} must be a scalar, got {_kind(value)}")
        if isinstance(value, str) and _CONTROL.search(value):
            raise PushError(f"{where}.values.{column} holds a control character: {value!r}")
    file = FILES.get(name.lower(), f"{name.lower()}.csv")
    _check_numbers(file, values, where)
    return Sample(file, time_ns, values)


def _time_ns(value: object, where: str) -> int:
    """Epoch ns as an int; an integral float is accepted (a JavaScript number is a double)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PushError(f"{where}.time must be integer UTC epoch nanoseconds, "
                        f"got {_kind(value)}")
    if not EARLIEST_NS <= value < LATEST_NS:
        raise PushError(f"{where}.time {value} is not epoch nanoseconds between 2000 and 2100")
    return value


def _check_numbers(file: str, values: Mapping[str, Any], where: str) -> None:
    required, optional = _NUMERIC.get(file, ((), ()))
    missing = [column for column in required if column not in values]
    if missing:
        raise PushError(f"{where}.values lacks {', '.join(missing)}")
    for column in (*required, *optional):
        value = values.get(column)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PushError(f"{where}.values.{column} must be a number or null, "
                            f"got {_kind(value)}")
        if not math.isfinite(value):
            raise PushError(f"{where}.values.{column} must be finite, got {value}")
        limit = _LIMITS.get(column)
        if limit is not None and abs(value) > limit:
            raise PushError(f"{where}.values.{column} {value} is outside ±{limit:g} degrees")
        if column == "batteryLevel" and value > 1:
            raise PushError(f"{where}.values.batteryLevel {value} is not a fraction 0..1")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    shown = repr(value)
    return f"{type(value).__name__} {shown[:40]}" + ("..." if len(shown) > 40 else "")
