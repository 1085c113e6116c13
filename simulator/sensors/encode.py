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

Why a hand-written writer: a 10,000-phone day is 86 million readings, and every general
JSON library (orjson included) needs a Python dict per reading to write nested objects,
which alone costs about a minute. Here orjson formats whole float arrays at once (it does
the number formatting, in Rust), marker values stand where the constant JSON text goes,
and `bytes.replace` and `bytes.join` put the text in place. `reference_line` builds the
same line the ordinary way; tests hold the two to byte equality.
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
from simulator.sensors.batch import BatchBlock, Summary, summarize

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
Floats = npt.NDArray[np.floating[Any]]
LATLON_DECIMALS = 6


@dataclass(frozen=True)
class NumberFormat:
    """How sensor floats and derived floats are written; see the module docstring."""

    name: str = "float32"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"float32|float64|round[0-9]", self.name):
            raise UsageError(
                f"number format must be float32, float64 or round0..round9, got {self.name!r}"
            )

    @property
    def dtype(self) -> type[np.floating[Any]]:  # float32 or float64
        """The float type every written float passes through."""
        return np.float32 if self.name == "float32" else np.float64

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
        "period_start": _iso(block.period_start_ms[i : i + 1])[0].decode(),
        "period_end": _iso(block.period_end_ms[i : i + 1])[0].decode(),
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


# ---------------------------------------------------------------------------------------
# Fast columnar encoder.



def _iso(epoch_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bytes_]:
    """Epoch ms -> b'YYYY-MM-DDTHH:MM:SSZ', vectorised."""
    text = np.datetime_as_string(epoch_ms.astype("datetime64[ms]").astype("datetime64[s]"))
    return np.char.add(text.astype("S19"), b"Z")


def _tokens(values: npt.NDArray[np.generic]) -> list[bytes]:
    """Each element of a 1-D numeric array as the JSON text orjson writes for it."""
    if values.size == 0:
        return []
    return orjson.dumps(values, option=_NUMPY)[1:-1].split(b",")


class _Hole:
    """A per-line token column in the template (device id, seq, t, ...)."""

    def __init__(self, column: int) -> None:
        self.column = column


@dataclass(frozen=True)
class _Opt:
    """Constant text written only when the batch's phone has a barometer."""

    text: bytes


@dataclass(frozen=True)
class _Motion:
    """Motion text k: the accel (k = 2r) or gyro (k = 2r + 1) values of reading r."""

    reading: int


_Item = bytes | int | _Hole | _Opt | _Motion  # int: a float column


@dataclass(frozen=True)
class _Template:
    """The slots of one line with `count` readings.

    Slot kinds: ``("text", (with_pressure, without_pressure))`` constant text (the two
    differ only around optional pressure members); ``("group", g)`` a float group (floats
    joined by plain commas, as orjson writes a row); ``("hole", column)`` a token;
    ``("motion", r)`` reading r's accel and gyro text. In the dumped float row a marker
    value follows every group, so splitting the dump at the marker yields the groups'
    texts in order. Groups in `optional_groups` are pressure values, blank without a
    barometer.
    """

    slots: tuple[tuple[str, object], ...]
    float_groups: tuple[tuple[int, ...], ...]
    optional_groups: frozenset[int]


_N_SUMMARY = 8  # light avg,min,max, accel_rms, gyro_rms, pressure avg,min,max
_P_COLUMNS = (5, 6, 7)  # summary pressure avg,min,max
_PER_READING = 2  # float columns per reading outside the motion text: light, pressure


def _compile(count: int) -> _Template:
    h = _Hole
    items: list[_Item] = [
        b'{"device_id":"', h(0), b'","user_id":"', h(1), b'","seq":', h(2), b',"batch_id":"',
        h(3), b'","payload":{"timestamp":', h(4), b',"summary":{"count":', h(5),
        b',"period_start":"', h(6), b'","period_end":"', h(7), b'","light":{"avg":', 0,
        b',"min":', 1, b',"max":', 2, b'},"accel_rms":', 3, b',"gyro_rms":', 4,
        _Opt(b',"pressure":{"avg":'), 5, _Opt(b',"min":'), 6, _Opt(b',"max":'), 7, _Opt(b"}"),
        b'},"batch":[']
    col, hole = _N_SUMMARY, 8
    pressure_columns = set(_P_COLUMNS)
    for r in range(count):
        items += [b'{"t":' if r == 0 else b',{"t":', h(hole), b',"light":', col,
                  b',"accel":[', _Motion(2 * r), b'],"gyro":[', _Motion(2 * r + 1), b"]",
                  _Opt(b',"pressure":'), col + 1, b"}"]
        pressure_columns.add(col + 1)
        col, hole = col + _PER_READING, hole + 1
    items += [b'],"location":{"lat":', h(hole), b',"lon":', h(hole + 1), b',"accuracy_m":', col,
              b'},"geohash":"', h(hole + 2), b'","battery_level":', h(hole + 3),
              b',"is_charging":', h(hole + 4), b"}}\n"]
    slots: list[tuple[str, object]] = []
    groups: list[list[int]] = []
    optional: set[int] = set()
    text: tuple[bytes, bytes] | None = None  # constant text being gathered
    for item in items:
        if isinstance(item, bytes | _Opt):
            with_p = item.text if isinstance(item, _Opt) else item
            without_p = b"" if isinstance(item, _Opt) else item
            text = (with_p, without_p) if text is None else (text[0] + with_p,
                                                             text[1] + without_p)
            continue
        if isinstance(item, int) and text == (b",", b",") and slots and \
                slots[-1][0] == "group":
            groups[-1].append(item)  # orjson writes the comma inside the group
            text = None
            if item in pressure_columns:
                optional.add(len(groups) - 1)
            continue
        if text is not None:
            slots.append(("text", text))
            text = None
        if isinstance(item, int):
            groups.append([item])
            slots.append(("group", len(groups) - 1))
            if item in pressure_columns:
                optional.add(len(groups) - 1)
        elif isinstance(item, _Hole):
            slots.append(("hole", item.column))
        else:
            slots.append(("motion", item.reading))
    if text is not None:
        slots.append(("text", text))
    return _Template(tuple(slots), tuple(tuple(g) for g in groups), frozenset(optional))


_TEMPLATES: dict[int, _Template] = {}


def _template(count: int) -> _Template:
    if count not in _TEMPLATES:
        _TEMPLATES[count] = _compile(count)
    return _TEMPLATES[count]


_MARKER = -1.0e38  # follows every float group in the dumped row; no sensor reads this


def _hole_tokens(block: BatchBlock, summary: Summary, index: npt.NDArray[np.intp],
                 count: int) -> npt.NDArray[np.object_]:
    """The (lines, holes) table of per-line tokens, in hole-column order."""
    n = len(index)
    starts = block.offsets[:-1][index]
    reading = (starts[:, None] + np.arange(count)[None, :]).ravel()
    tokens = np.empty((n, 8 + count + 5), dtype=object)
    tokens[:, 0] = block.device_id[index].tolist()
    tokens[:, 1] = block.user_id[index].tolist()
    tokens[:, 2] = _tokens(block.seq[index])
    tokens[:, 3] = block.batch_id[index].tolist()
    tokens[:, 4] = _tokens(block.period_start_ms[index])
    tokens[:, 5] = _tokens(summary.count[index])
    tokens[:, 6] = _iso(block.period_start_ms[index]).tolist()
    tokens[:, 7] = _iso(block.period_end_ms[index]).tolist()
    t_tokens = np.empty(n * count, dtype=object)
    t_tokens[:] = _tokens(block.t_ms[reading])
    tokens[:, 8 : 8 + count] = t_tokens.reshape(n, count)
    tail = 8 + count
    tokens[:, tail] = _tokens(np.round(block.lat[index], LATLON_DECIMALS))
    tokens[:, tail + 1] = _tokens(np.round(block.lon[index], LATLON_DECIMALS))
    tokens[:, tail + 2] = block.geohash[index].tolist()
    tokens[:, tail + 3] = _tokens(block.battery_level[index])
    tokens[:, tail + 4] = np.where(block.is_charging[index], b"true", b"false").tolist()
    return tokens


def _float_columns(block: BatchBlock, summary: Summary, index: npt.NDArray[np.intp],
                   count: int, fmt: NumberFormat) -> Floats:
    """The (lines, floats) table of written float values, in float-column order."""
    n = len(index)
    reading = _reading_index(block, index, count)
    columns = np.empty((n, _N_SUMMARY + count * _PER_READING + 1), dtype=fmt.dtype)
    for j, name in enumerate(("light_avg", "light_min", "light_max", "accel_rms", "gyro_rms",
                              "pressure_avg", "pressure_min", "pressure_max")):
        columns[:, j] = fmt.derived(getattr(summary, name)[index])
    per_reading = np.empty((n * count, _PER_READING), dtype=fmt.dtype)
    per_reading[:, 0] = fmt.sensor(block.light[reading])
    per_reading[:, 1] = fmt.sensor(block.pressure[reading])
    columns[:, _N_SUMMARY:-1] = per_reading.reshape(n, count * _PER_READING)
    columns[:, -1] = fmt.sensor(block.accuracy_m[index])
    return columns


def _reading_index(block: BatchBlock, index: npt.NDArray[np.intp],
                   count: int) -> npt.NDArray[np.int64]:
    starts = block.offsets[:-1][index]
    return (starts[:, None] + np.arange(count)[None, :]).ravel()


def _motion_texts(block: BatchBlock, reading: npt.NDArray[np.int64],
                  fmt: NumberFormat) -> list[bytes]:
    """Per reading the texts `ax,ay,az` and `gx,gy,gz`, interleaved (2 N items)."""
    motion = np.empty((len(reading), 2, 3), dtype=fmt.dtype)
    motion[:, 0] = fmt.sensor(block.accel[reading])
    motion[:, 1] = fmt.sensor(block.gyro[reading])
    return orjson.dumps(motion.reshape(-1, 3), option=_NUMPY)[2:-2].split(b"],[")


def _encode_group(block: BatchBlock, summary: Summary, index: npt.NDArray[np.intp],
                  count: int, fmt: NumberFormat) -> list[bytes]:
    """Lines (each ending in newline) for the batches at `index`, which all hold `count`."""
    tpl = _template(count)
    n = len(index)
    columns = _float_columns(block, summary, index, count, fmt)
    # One dumped row per line: each float group followed by a marker.
    layout: list[int] = []
    for group in tpl.float_groups:
        layout.extend(group)
        layout.append(-1)
    order = np.array(layout)
    row = np.full((n, len(layout)), _MARKER, dtype=fmt.dtype)
    row[:, order >= 0] = columns[:, order[order >= 0]]
    marker = orjson.dumps(np.array([_MARKER], dtype=fmt.dtype), option=_NUMPY)[1:-1]
    text = b"," + orjson.dumps(row, option=_NUMPY)[2:-2].replace(b"],[", b",") + b","
    group_texts = text.split(b"," + marker + b",")
    group_texts[0] = group_texts[0][1:]
    groups = np.empty(n * len(tpl.float_groups), dtype=object)
    groups[:] = group_texts[:-1]
    groups_table = groups.reshape(n, len(tpl.float_groups))
    motion = np.empty(n * count * 2, dtype=object)
    motion[:] = _motion_texts(block, _reading_index(block, index, count), fmt)
    motion_table = motion.reshape(n, count * 2)
    no_pressure = ~block.has_pressure[index]
    tokens = _hole_tokens(block, summary, index, count)
    table = np.empty((n, len(tpl.slots)), dtype=object)
    any_missing = bool(no_pressure.any())
    for s, (kind, value) in enumerate(tpl.slots):
        if kind == "group":
            assert isinstance(value, int)
            table[:, s] = groups_table[:, value]
            if any_missing and value in tpl.optional_groups:
                table[no_pressure, s] = b""
        elif kind == "hole":
            assert isinstance(value, int)
            table[:, s] = tokens[:, value]
        elif kind == "motion":
            assert isinstance(value, int)
            table[:, s] = motion_table[:, value]
        else:
            assert isinstance(value, tuple)
            table[:, s] = value[0]
            if any_missing and value[0] != value[1]:
                table[no_pressure, s] = value[1]
    return [b"".join(parts) for parts in table.tolist()]


def encode_lines(block: BatchBlock, fmt: NumberFormat = DEFAULT_FORMAT) -> list[bytes]:
    """Every batch of `block` as one JSON line (newline included), in block order."""
    if block.size == 0:
        return []
    summary = summarize(block)
    counts = block.counts
    lines: list[bytes] = [b""] * block.size
    for count in np.unique(counts):
        index = np.flatnonzero(counts == count)
        for i, line in zip(index.tolist(), _encode_group(block, summary, index, int(count), fmt),
                           strict=True):
            lines[i] = line
    return lines


def iter_lines(block: BatchBlock, fmt: NumberFormat = DEFAULT_FORMAT) -> Iterator[bytes]:
    """`encode_lines` in time order (`order_ms`, then phone), as the generator writes them."""
    order = np.lexsort((block.phone, block.order_ms))
    lines = encode_lines(block, fmt)
    for i in order.tolist():
        yield lines[i]
