"""The fast JSON Lines writer: orjson formats the numbers, a compiled loop lays them out.

Why hand-written: a 10,000-phone day is 86 million readings. A general JSON library
needs a Python object per reading to write nested objects (orjson included), and
joining pre-formatted pieces still costs ~100 ns per piece with ~370 pieces per line;
either alone takes minutes for a day. Here:

1. orjson formats each numeric column in one call (it writes a float32 as the shortest
   text that reads back as the same float32, in Rust); each column is dumped as an
   (N, k) array so that the brackets it writes mark where each row's text starts and
   ends; all texts and the constant JSON fragments go into one byte buffer;
2. a line is a small program of copy operations (constant fragment, row of a per-line
   column, row of a per-reading column, some only for phones with a barometer), run by
   a numba-compiled loop over all lines of the block.

The output is byte-identical to `simulator.sensors.encode.reference_line` (tests hold
the two equal for every number format).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import orjson

from simulator.sensors.batch import BatchBlock, summarize

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
I64 = npt.NDArray[np.int64]
LATLON_DECIMALS = 6

# Operation codes of a line program; each operation is (code, argument).
CONST, LINE, READ = 0, 1, 2  # copy constant k / row i of line column c / reading row
WITH_PRESSURE = 4  # added to a code: only for phones with a barometer
WITHOUT_PRESSURE = 8  # added to a code: only for phones without one
FIRST = 16  # added to a code: only for a batch's first reading
NOT_FIRST = 32  # added to a code: only for the other readings


@dataclass(frozen=True)
class Encoded:
    """Lines of a block, in block order: line i is `blob[ends[i-1]:ends[i]]`."""

    blob: npt.NDArray[np.uint8]
    ends: I64

    def lines(self) -> list[bytes]:
        """Each line as its own bytes object (newline included)."""
        data = self.blob.tobytes()
        starts = [0, *self.ends[:-1].tolist()]
        return [data[a:b] for a, b in zip(starts, self.ends.tolist(), strict=True)]


def _run_program(src: Any, const_at: Any, const_len: Any, line_at: Any, line_len: Any,
         read_at: Any, read_len: Any, offsets: Any, has_pressure: Any, head: Any,
         reading: Any, tail: Any, out: Any, ends: Any) -> int:  # pragma: no cover - compiled
    pos = 0
    for i in range(len(offsets) - 1):
        for part in range(3):
            program = head if part == 0 else (reading if part == 1 else tail)
            first_r = offsets[i] if part == 1 else 0
            last_r = offsets[i + 1] if part == 1 else 1
            for r in range(first_r, last_r):
                for k in range(program.shape[0]):
                    code = program[k, 0]
                    arg = program[k, 1]
                    if code > 3:
                        if code & WITH_PRESSURE and not has_pressure[i]:
                            continue
                        if code & WITHOUT_PRESSURE and has_pressure[i]:
                            continue
                        if code & FIRST and r != offsets[i]:
                            continue
                        if code & NOT_FIRST and r == offsets[i]:
                            continue
                    kind = code & 3
                    if kind == CONST:
                        at = const_at[arg]
                        size = const_len[arg]
                    elif kind == LINE:
                        at = line_at[arg, i]
                        size = line_len[arg, i]
                    else:
                        at = read_at[arg, r]
                        size = read_len[arg, r]
                    if size > 24:
                        out[pos:pos + size] = src[at:at + size]
                    else:  # most fragments are short: a loop beats memmove's set-up
                        for j in range(size):
                            out[pos + j] = src[at + j]
                    pos += size
        ends[i] = pos
    return pos


# Compiled on first use and cached on disk (numba `cache=True`).
_run: Callable[..., int] = numba.njit(cache=True, nogil=True)(_run_program)


class _Builder:
    """Collects sources (one byte buffer) and the three line programs."""

    def __init__(self, lines: int, readings: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.constants: dict[bytes, int] = {}
        self.const_at: list[int] = []
        self.const_len: list[int] = []
        self.line_cols: list[tuple[I64, I64]] = []
        self.read_cols: list[tuple[I64, I64]] = []
        self.lines, self.readings = lines, readings

    def _add(self, data: bytes) -> int:
        at = self.size
        self.parts.append(data)
        self.size += len(data)
        return at

    def const(self, text: bytes, flags: int = 0) -> tuple[int, int]:
        if text not in self.constants:
            self.constants[text] = len(self.const_at)
            self.const_at.append(self._add(text))
            self.const_len.append(len(text))
        return CONST + flags, self.constants[text]

    def _rows(self, values: npt.NDArray[Any]) -> tuple[I64, I64]:
        """Offsets and lengths of each row's text `v` or `v1,v2,v3` (k values per row).

        The values are dumped as one flat array (orjson is ten times faster on a flat
        array than on one with a row per value); commas separate the values, and no
        number orjson writes contains a comma.
        """
        rows = len(values)
        if rows == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        per_row = values.size // rows
        text = orjson.dumps(np.ascontiguousarray(values).reshape(-1), option=_NUMPY)
        base = self._add(text)
        commas = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord(","))
        if len(commas) != values.size - 1:
            raise AssertionError("unexpected comma in orjson output")
        starts = np.concatenate([[1], commas + 1])[::per_row]
        ends = np.concatenate([commas, [len(text) - 1]])[per_row - 1::per_row]
        return base + starts, ends - starts

    def _strings(self, values: npt.NDArray[np.bytes_]) -> tuple[I64, I64]:
        width = values.dtype.itemsize
        base = self._add(np.ascontiguousarray(values).tobytes())
        return (base + width * np.arange(len(values), dtype=np.int64),
                np.char.str_len(values).astype(np.int64))

    def line(self, values: npt.NDArray[Any], flags: int = 0) -> tuple[int, int]:
        """A per-line column: numbers (formatted by orjson) or fixed-width strings."""
        cols = self._strings(values) if values.dtype.kind == "S" else self._rows(values)
        self.line_cols.append(cols)
        return LINE + flags, len(self.line_cols) - 1

    def read(self, values: npt.NDArray[Any], flags: int = 0) -> tuple[int, int]:
        """A per-reading column of numbers ((N,) or (N, k) rows)."""
        self.read_cols.append(self._rows(values))
        return READ + flags, len(self.read_cols) - 1

    def run(self, block: BatchBlock, head: list[tuple[int, int]],
            reading: list[tuple[int, int]], tail: list[tuple[int, int]]) -> Encoded:
        src = np.frombuffer(b"".join(self.parts), dtype=np.uint8)
        line_at = np.array([c[0] for c in self.line_cols], dtype=np.int64)
        line_len = np.array([c[1] for c in self.line_cols], dtype=np.int64)
        read_at = np.array([c[0] for c in self.read_cols], dtype=np.int64)
        read_len = np.array([c[1] for c in self.read_cols], dtype=np.int64)
        const_len = np.array(self.const_len, dtype=np.int64)
        programs = [np.array(p, dtype=np.int64).reshape(-1, 2) for p in (head, reading, tail)]
        # Every source row is used at most once; constants once per use.
        bound = src.size + int(const_len.sum()) * (self.lines + self.readings) + 1
        out = np.empty(bound, dtype=np.uint8)
        ends = np.empty(self.lines, dtype=np.int64)
        size = _run(src, np.array(self.const_at, dtype=np.int64), const_len, line_at,
                    line_len, read_at, read_len, block.offsets, block.has_pressure,
                    *programs, out, ends)
        return Encoded(out[:size], ends)


def iso_seconds(epoch_ms: I64) -> npt.NDArray[np.bytes_]:
    """Epoch ms -> b'YYYY-MM-DDTHH:MM:SSZ', vectorised."""
    text = np.datetime_as_string(epoch_ms.astype("datetime64[ms]").astype("datetime64[s]"))
    return np.char.add(text.astype("S19"), b"Z")


def encode_block(block: BatchBlock, sensor_of: Any, derived_of: Any) -> Encoded:
    """Encode every batch of `block`, in block order.

    `sensor_of(float32 array)` and `derived_of(float64 array)` give the values as written
    (a `NumberFormat`'s `sensor` and `derived`).
    """
    if block.size == 0:
        return Encoded(np.zeros(0, np.uint8), np.zeros(0, np.int64))
    summary = summarize(block)
    b = _Builder(block.size, len(block.t_ms))
    c, line, read = b.const, b.line, b.read
    p = WITH_PRESSURE
    head = [
        c(b'{"device_id":"'), line(block.device_id), c(b'","user_id":"'), line(block.user_id),
        c(b'","seq":'), line(block.seq), c(b',"batch_id":"'), line(block.batch_id),
        c(b'","payload":{"timestamp":'), line(block.period_start_ms),
        c(b',"summary":{"count":'), line(summary.count),
        c(b',"period_start":"'), line(iso_seconds(block.period_start_ms)),
        c(b'","period_end":"'), line(iso_seconds(block.period_end_ms)),
        c(b'","light":{"avg":'), line(derived_of(summary.light_avg)),
        c(b',"min":'), line(derived_of(summary.light_min)),
        c(b',"max":'), line(derived_of(summary.light_max)),
        c(b'},"accel_rms":'), line(derived_of(summary.accel_rms)),
        c(b',"gyro_rms":'), line(derived_of(summary.gyro_rms)),
        c(b',"pressure":{"avg":', p), line(derived_of(summary.pressure_avg), p),
        c(b',"min":', p), line(derived_of(summary.pressure_min), p),
        c(b',"max":', p), line(derived_of(summary.pressure_max), p),
        c(b"}", p), c(b'},"batch":['),
    ]
    reading = [  # each reading's closing brace is written by the next one, or the tail
        c(b'{"t":', FIRST), c(b'},{"t":', NOT_FIRST), read(block.t_ms), c(b',"light":'),
        read(sensor_of(block.light)), c(b',"accel":['), read(sensor_of(block.accel)),
        c(b'],"gyro":['), read(sensor_of(block.gyro)), c(b'],"pressure":', p),
        read(sensor_of(block.pressure), p), c(b"]", WITHOUT_PRESSURE),
    ]
    tail = [
        c(b'}],"location":{"lat":'), line(np.round(block.lat, LATLON_DECIMALS)),
        c(b',"lon":'), line(np.round(block.lon, LATLON_DECIMALS)),
        c(b',"accuracy_m":'), line(sensor_of(block.accuracy_m)),
        c(b'},"geohash":"'), line(block.geohash),
        c(b'","battery_level":'), line(block.battery_level),
        c(b',"is_charging":'), line(np.where(block.is_charging, b"true", b"false")),
        c(b"}}\n"),
    ]
    return b.run(block, head, reading, tail)
