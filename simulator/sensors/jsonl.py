"""The fast JSON Lines writer: orjson formats the numbers, a compiled loop lays them out.

Why hand-written: a 10,000-phone day is 86 million readings. A general JSON library
needs a Python object per reading to write nested objects (orjson included), and
joining pre-formatted pieces still costs ~100 ns per piece with ~370 pieces per line;
either alone takes minutes for a day. Here:

1. orjson formats each numeric column in one call, as a flat array (it writes a float32
   as the shortest text that reads back as the same float32, in Rust); each column's
   text is a source buffer of its own, as is each fixed-width string column, and one
   more holds the constant JSON fragments;
2. a line is a small program of copy operations (a constant fragment; the next k
   numbers of a column, read with a cursor up to the k-th comma; row i of a string
   column; some only for phones with or without a barometer, or only for a batch's
   first reading), run by a numba-compiled loop over all lines of the block.

Invariant: every value of a number column is written exactly once and in order, so the
cursors end at the ends of their columns (checked after each run); values that are not
written (pressure of a phone without a barometer) are left out of their column.

The output is byte-identical to `simulator.sensors.encode.reference_line` (tests hold
the two equal for every number format).

Android's org.json (`android_numbers`, the ``orgjson`` formats) is one more compiled
pass over a column's orjson text: orjson's digits are already the shortest that read back
as the same float32 (or float64), which is how Java selects its digits too, so each
token is only laid out again the Java way (``1.0652645E-4``, ``1.0E-7``, ``0.001``); a
value equal to its `long` is written as that integer from the value itself (a float32
beyond 2^24 is an integer its shortest digits do not spell). The rare values whose text
the pass cannot derive from orjson's token (a Double's ``-0``, integers from 2^53,
subnormals, where Java writes two digits when one would do) are formatted in Python by
the exact rule and copied in. Invariant: one output token per input value, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numba
import numpy as np
import numpy.typing as npt
import orjson

from simulator.sensors.batch import BatchBlock, summarize

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
I64 = npt.NDArray[np.int64]
LATLON_DECIMALS = 6

# Operation codes of a line program; each operation is (code, argument, count).
CONST, STRING, NUMBERS = 0, 1, 2  # copy constant k / string i of column c / numbers
WITH_PRESSURE = 4  # added to a code: only for phones with a barometer
WITHOUT_PRESSURE = 8  # added to a code: only for phones without one
FIRST = 16  # added to a code: only for a batch's first reading
NOT_FIRST = 32  # added to a code: only for the other readings


@dataclass(frozen=True)
class Encoded:
    """Lines of a block, in block order: line i is `blob[ends[i-1]:ends[i]]`."""

    blob: npt.NDArray[np.uint8]
    ends: I64

    @property
    def starts(self) -> I64:
        """Where each line begins in `blob`."""
        return np.concatenate(([0], self.ends))[:-1].astype(np.int64)

    def lines(self) -> list[bytes]:
        """Each line as its own bytes object (newline included)."""
        data = self.blob.tobytes()
        return [data[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist(),
                                          strict=True)]


def _run_program(srcs: Any, const_at: Any, const_len: Any, str_src: Any, str_at: Any,
                 str_len: Any, cursor_src: Any, cursor: Any, offsets: Any, has_pressure: Any,
                 head: Any, reading: Any, tail: Any, out: Any, ends: Any
                 ) -> int:  # pragma: no cover - compiled
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
                    if kind == NUMBERS:
                        # copy `count` numbers of column `arg` from its cursor: up to the
                        # count-th separator (a comma, or the closing bracket)
                        count = program[k, 2]
                        src = srcs[cursor_src[arg]]
                        p = cursor[arg]
                        while True:
                            if p >= src.size:  # column used more often than it has values
                                return -1
                            b = src[p]
                            if b == 44 or b == 93:
                                count -= 1
                                if count == 0:
                                    break
                            if pos >= out.size:
                                return -1
                            out[pos] = b
                            pos += 1
                            p += 1
                        cursor[arg] = p + 1
                        continue
                    if kind == CONST:
                        src = srcs[0]
                        at = const_at[arg]
                        size = const_len[arg]
                    else:
                        src = srcs[str_src[arg]]
                        at = str_at[arg, i]
                        size = str_len[arg, i]
                    if pos + size > out.size:  # a program that does not fit its bound
                        return -1
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
    """Collects sources (one byte buffer) and the three line programs.

    Number columns are read sequentially: each is one orjson dump of a flat array, and
    the compiled loop keeps a cursor in it, so no per-value offsets are ever computed.
    Every value of a number column must therefore be written exactly once, in order
    (optional values are left out of their column when they are not written).
    """

    def __init__(self, text_of: Callable[[npt.NDArray[Any]], bytes] | None = None) -> None:
        # Source 0 holds the constants; every column is a source of its own (no copy).
        self.text_of = orjson_numbers if text_of is None else text_of
        self.sources: list[npt.NDArray[np.uint8]] = [np.zeros(0, np.uint8)]
        self.constants: dict[bytes, int] = {}
        self.const_text = b""
        self.const_at: list[int] = []
        self.const_len: list[int] = []
        self.strings: list[tuple[int, I64, I64]] = []
        self.cursors: list[tuple[int, int]] = []

    def _add(self, data: bytes) -> int:
        self.sources.append(np.frombuffer(data, dtype=np.uint8))
        return len(self.sources) - 1

    def const(self, text: bytes, flags: int = 0) -> tuple[int, int, int]:
        if text not in self.constants:
            self.constants[text] = len(self.const_at)
            self.const_at.append(len(self.const_text))
            self.const_len.append(len(text))
            self.const_text += text
        return CONST + flags, self.constants[text], 0

    def string(self, values: npt.NDArray[np.bytes_]) -> tuple[int, int, int]:
        """A per-line column of fixed-width strings."""
        width = values.dtype.itemsize
        source = self._add(np.ascontiguousarray(values).tobytes())
        self.strings.append((source, width * np.arange(len(values), dtype=np.int64),
                             np.char.str_len(values).astype(np.int64)))
        return STRING, len(self.strings) - 1, 0

    def numbers(self, values: npt.NDArray[Any], flags: int = 0) -> tuple[int, int, int]:
        """A column of numbers, written `values.shape[1]` (or 1) per use."""
        per_use = 1 if values.ndim == 1 else values.shape[1]
        text = self.text_of(np.ascontiguousarray(values).reshape(-1))
        self.cursors.append((self._add(text), 1))  # just after the opening bracket
        return NUMBERS + flags, len(self.cursors) - 1, per_use

    def run(self, block: BatchBlock, head: list[tuple[int, int, int]],
            reading: list[tuple[int, int, int]], tail: list[tuple[int, int, int]]) -> Encoded:
        self.sources[0] = np.frombuffer(self.const_text, dtype=np.uint8)
        str_src = np.array([c[0] for c in self.strings], dtype=np.int64)
        shape = (len(self.strings), block.size)
        str_at = np.array([c[1] for c in self.strings], dtype=np.int64).reshape(shape)
        str_len = np.array([c[2] for c in self.strings], dtype=np.int64).reshape(shape)
        const_len = np.array(self.const_len, dtype=np.int64)
        cursors = np.array(self.cursors, dtype=np.int64)
        cursor_end = cursors[:, 1].copy()  # advanced by the run
        programs = [np.array(p, dtype=np.int64).reshape(-1, 3) for p in (head, reading, tail)]
        def const_bytes(program: npt.NDArray[np.int64]) -> int:
            is_const = (program[:, 0] & 3) == CONST
            return int(const_len[program[is_const, 1]].sum())

        # Every column value is written at most once; constants once per program step.
        bound = (sum(s.size for s in self.sources) + len(block.t_ms) * const_bytes(programs[1])
                 + block.size * (const_bytes(programs[0]) + const_bytes(programs[2])))
        out = np.empty(bound, dtype=np.uint8)
        ends = np.empty(block.size, dtype=np.int64)
        size = _run(tuple(self.sources), np.array(self.const_at, dtype=np.int64), const_len,
                    str_src, str_at, str_len, cursors[:, 0].copy(), cursor_end,
                    block.offsets, block.has_pressure, *programs, out, ends)
        if size < 0:
            raise AssertionError("a number column was not written exactly once (overrun)")
        size_of = np.array([source.size for source in self.sources])[cursors[:, 0]]
        empty = size_of == 2  # "[]"
        if not ((cursor_end == size_of) | (empty & (cursor_end == 1))).all():
            raise AssertionError("a number column was not written exactly once")
        return Encoded(out[:size], ends)


def orjson_numbers(values: npt.NDArray[Any]) -> bytes:
    """A flat array as one JSON array, by orjson (a float32 as its shortest float32 text)."""
    return orjson.dumps(values, option=_NUMPY)


# ---------------------------------------------------------------------------------------
# Android's org.json: JSONObject.numberToString over a column (see the module docstring).

INTEGER, TOKEN, COPY = 0, 1, 2  # a value written as its long / its token laid out / side text
_EXACT_INT = 2.0**53  # below this every integral float converts to int64 and back exactly


class ExactText(Protocol):
    """`JSONObject.numberToString` of one finite value (`encode.android_number`)."""

    def __call__(self, value: float, *, double: bool) -> str: ...


def android_numbers(values: npt.NDArray[Any], exact: ExactText) -> bytes:
    """A flat array as Android's org.json writes it: float32 values as `Float`s, float64
    as `Double`s (through `JSONObject.numberToString`), integers as `Long`s; a value that
    is not finite as null (org.json refuses it; the app sends null). `exact` formats the
    rare values the compiled pass leaves out (see the module docstring)."""
    if values.dtype.kind != "f":
        return orjson_numbers(values)
    if values.size == 0:
        return b"[]"
    text = np.frombuffer(orjson_numbers(values), dtype=np.uint8)
    double = values.dtype == np.float64
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(values)
        integral = finite & (np.trunc(values) == values)
        small = np.abs(values) < _EXACT_INT
        copy = integral & ~small  # Long.toString beyond 2^53: Python's int is exact
        copy |= finite & (values != 0) & (np.abs(values) < np.finfo(values.dtype).tiny)
    if double:
        copy |= (values == 0) & np.signbit(values)  # a Double's -0.0 is "-0"
    kind = np.full(values.size, TOKEN, dtype=np.int8)
    as_int = integral & ~copy
    kind[as_int] = INTEGER
    kind[copy] = COPY
    texts = [exact(value, double=double).encode() for value in values[copy].tolist()]
    side = np.frombuffer(b"".join(texts), dtype=np.uint8)
    side_len = np.array([len(t) for t in texts], dtype=np.int64)
    out = np.empty(text.size + 4 * values.size + side.size + 64, dtype=np.uint8)
    size = _android_run(text, kind, values[as_int].astype(np.int64), side, side_len, out)
    if size < 0:
        raise AssertionError("org.json rewrite overran its bound")
    return out[:size].tobytes()


def _android_tokens(text: Any, kind: Any, ints: Any, side: Any, side_len: Any,
                    out: Any) -> int:  # pragma: no cover - compiled
    out[0] = 91  # [
    pos, p, n_int, n_side, at_side = 1, 1, 0, 0, 0
    digits = np.empty(40, dtype=np.uint8)
    for j in range(kind.size):
        q = p
        while text[q] != 44 and text[q] != 93:  # the token ends at a comma or ]
            q += 1
        if pos + (q - p) + 32 > out.size:
            return -1
        k = kind[j]
        if k == INTEGER:
            pos = _write_int_c(ints[n_int], out, pos)
            n_int += 1
        elif k == COPY:
            size = side_len[n_side]
            if pos + size + 1 > out.size:
                return -1
            out[pos:pos + size] = side[at_side:at_side + size]
            pos += size
            at_side += size
            n_side += 1
        elif text[p] == 110:  # null
            for r in range(p, q):
                out[pos] = text[r]
                pos += 1
        else:
            pos = _java_token_c(text, p, q, out, pos, digits)
        out[pos] = text[q]
        pos += 1
        p = q + 1
    return pos if p == text.size else -1  # every token read: one value, one token


def _write_int(value: Any, out: Any, pos: int) -> int:  # pragma: no cover - compiled
    if value < 0:
        out[pos] = 45  # -
        pos += 1
        value = -value
    start = pos
    while True:
        out[pos] = 48 + value % 10
        pos += 1
        value //= 10
        if value == 0:
            break
    end = pos - 1
    while start < end:  # the digits came out backwards
        out[start], out[end] = out[end], out[start]
        start += 1
        end -= 1
    return pos


def _java_token(text: Any, p: int, q: int, out: Any, pos: int,
                digits: Any) -> int:  # pragma: no cover - compiled
    """Lay out orjson's token text[p:q] (sign, digits, '.', 'e±n') the way Java does."""
    if text[p] == 45:  # -
        out[pos] = 45
        pos += 1
        p += 1
    n = 0  # significant digits: value = 0.d1d2...dn x 10^(point + exponent)
    point = 0
    after_point = False
    r = p
    while r < q:
        c = text[r]
        if c == 46:  # .
            after_point = True
        elif c == 101 or c == 69:  # e, E
            break
        elif n == 0 and c == 48:  # a leading zero
            if after_point:
                point -= 1
        else:
            digits[n] = c
            n += 1
            if not after_point:
                point += 1
        r += 1
    exponent = 0
    if r < q:
        r += 1
        negative = text[r] == 45
        if text[r] == 45 or text[r] == 43:
            r += 1
        while r < q:
            exponent = 10 * exponent + (text[r] - 48)
            r += 1
        if negative:
            exponent = -exponent
    while n > 1 and digits[n - 1] == 48:  # trailing zeros
        n -= 1
    e = point + exponent - 1  # value = d1.d2...dn x 10^e
    if -3 <= e < 0:
        out[pos] = 48
        out[pos + 1] = 46
        pos += 2
        for _ in range(-e - 1):
            out[pos] = 48
            pos += 1
        for k in range(n):
            out[pos] = digits[k]
            pos += 1
    elif 0 <= e < 7:
        for k in range(max(n, e + 1)):
            if k == e + 1:
                out[pos] = 46
                pos += 1
            out[pos] = digits[k] if k < n else 48
            pos += 1
        if n <= e + 1:
            out[pos] = 46
            out[pos + 1] = 48
            pos += 2
    else:
        out[pos] = digits[0]
        out[pos + 1] = 46
        pos += 2
        if n == 1:
            out[pos] = 48
            pos += 1
        for k in range(1, n):
            out[pos] = digits[k]
            pos += 1
        out[pos] = 69  # E
        pos = _write_int_c(e, out, pos + 1)
    return pos


# Compiled on first use and cached on disk, as `_run`.
_write_int_c: Callable[..., int] = numba.njit(cache=True, nogil=True)(_write_int)
_java_token_c: Callable[..., int] = numba.njit(cache=True, nogil=True)(_java_token)
_android_run: Callable[..., int] = numba.njit(cache=True, nogil=True)(_android_tokens)


def iso_seconds(epoch_ms: I64) -> npt.NDArray[np.bytes_]:
    """Epoch ms -> b'YYYY-MM-DDTHH:MM:SSZ', vectorised."""
    text = np.datetime_as_string(epoch_ms.astype("datetime64[ms]").astype("datetime64[s]"))
    return np.char.add(text.astype("S19"), b"Z")


def encode_block(block: BatchBlock, sensor_of: Any, derived_of: Any,
                 text_of: Callable[[npt.NDArray[Any]], bytes] | None = None) -> Encoded:
    """Encode every batch of `block`, in block order.

    `sensor_of(float32 array)` and `derived_of(float64 array)` give the values as written
    (a `NumberFormat`'s `sensor` and `derived`); `text_of(flat array)` writes a column as
    one JSON array (default `orjson_numbers`; `android_numbers` for Android's org.json).
    """
    if block.size == 0:
        return Encoded(np.zeros(0, np.uint8), np.zeros(0, np.int64))
    summary = summarize(block)
    b = _Builder(text_of)
    c, string, num = b.const, b.string, b.numbers
    p = WITH_PRESSURE
    has_p = block.has_pressure
    read_has_p = np.repeat(has_p, block.counts)
    head = [
        c(b'{"device_id":"'), string(block.device_id), c(b'","user_id":"'),
        string(block.user_id), c(b'","seq":'), num(block.seq), c(b',"batch_id":"'),
        string(block.batch_id), c(b'","payload":{"timestamp":'), num(block.period_start_ms),
        c(b',"summary":{"count":'), num(summary.count),
        c(b',"period_start":"'), string(iso_seconds(block.period_start_ms)),
        c(b'","period_end":"'), string(iso_seconds(block.period_end_ms)),
        c(b'","light":{"avg":'), num(derived_of(summary.light_avg)),
        c(b',"min":'), num(derived_of(summary.light_min)),
        c(b',"max":'), num(derived_of(summary.light_max)),
        c(b'},"accel_rms":'), num(derived_of(summary.accel_rms)),
        c(b',"gyro_rms":'), num(derived_of(summary.gyro_rms)),
        c(b',"pressure":{"avg":', p), num(derived_of(summary.pressure_avg[has_p]), p),
        c(b',"min":', p), num(derived_of(summary.pressure_min[has_p]), p),
        c(b',"max":', p), num(derived_of(summary.pressure_max[has_p]), p),
        c(b"}", p), c(b'},"batch":['),
    ]
    reading = [  # each reading's closing brace is written by the next one, or the tail
        c(b'{"t":', FIRST), c(b'},{"t":', NOT_FIRST), num(block.t_ms), c(b',"light":'),
        num(sensor_of(block.light)), c(b',"accel":['), num(sensor_of(block.accel)),
        c(b'],"gyro":['), num(sensor_of(block.gyro)), c(b'],"pressure":', p),
        num(sensor_of(block.pressure[read_has_p]), p), c(b"]", WITHOUT_PRESSURE),
    ]
    tail = [
        c(b'}],"location":{"lat":'), num(np.round(block.lat, LATLON_DECIMALS)),
        c(b',"lon":'), num(np.round(block.lon, LATLON_DECIMALS)),
        c(b',"accuracy_m":'), num(sensor_of(block.accuracy_m)),
        c(b'},"geohash":"'), string(block.geohash),
        c(b'","battery_level":'), num(block.battery_level),
        c(b',"is_charging":'), string(np.where(block.is_charging, b"true", b"false")),
        c(b"}}\n"),
    ]
    return b.run(block, head, reading, tail)
