"""The files of a Sensor Logger zip export, read strictly: the CSV files of the one
recording folder in the zip, each parsed into a header and rows of exactly the header's
width, and turned into `Series` of samples in time order.

A file that cannot be used is a `RecordingError` whose message starts with `where`: the
zip, the member and (if known) the 1-based line. What the files mean (units, frames,
platforms) is `simulator.sensors.recording_export`'s business.

Invariants:

- a CSV file ends with a line end (a cut-off last line is an error: the app appends rows
  while recording, so its last field may be cut short), unless read with
  `whole_lines=False` (Metadata.csv, written once at export time);
- a table's header is not empty and every data row has the header's number of fields;
  columns are found by name (stripped), in any order; an empty cell of a numeric column
  is NaN (the value was not reported), any other non-number is an error;
- `in_order` keeps the rows at or after every row before them (stale re-deliveries are
  dropped, so time going backwards is not an error): a `Series`' times never decrease.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from simulator.errors import RecordingError

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

NS_PER_S = 1_000_000_000

TOTAL_ACCELERATION = "TotalAcceleration.csv"
ACCELEROMETER = "Accelerometer.csv"
ACCELEROMETER_UNCALIBRATED = "AccelerometerUncalibrated.csv"
GRAVITY = "Gravity.csv"
GYROSCOPE = "Gyroscope.csv"
GYROSCOPE_UNCALIBRATED = "GyroscopeUncalibrated.csv"
BAROMETER = "Barometer.csv"
LIGHT = "Light.csv"
LOCATION = "Location.csv"
BATTERY = "Battery.csv"
METADATA = "Metadata.csv"
ACCEL_FILES = (TOTAL_ACCELERATION, ACCELEROMETER, ACCELEROMETER_UNCALIBRATED)




@dataclass(frozen=True, eq=False)
class Series:
    """One sensor's samples: `time_ns` (UTC epoch ns, non-decreasing) and `values` (n, k).

    `file` is the zip member the samples came from. Arrays are read-only.
    """

    file: str
    time_ns: I64
    values: F64

    def __post_init__(self) -> None:
        self.time_ns.flags.writeable = False
        self.values.flags.writeable = False

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    def latest_index(self, query_ns: I64) -> I64:
        """Index of the latest row at or before each query time; -1 where there is none."""
        found: I64 = np.searchsorted(self.time_ns, query_ns, side="right").astype(np.int64)
        return found - 1

    def at(self, query_ns: I64) -> F64:
        """Rows (q, k) of the latest sample at or before each query time; NaN before the first."""
        index = self.latest_index(query_ns)
        out = np.full((query_ns.shape[0], self.values.shape[1]), np.nan)
        have = index >= 0
        out[have] = self.values[index[have]]
        return out



class SensorTable(Protocol):
    """One sensor file's rows as `simulator.sensors.recording_export` reads them: from a
    zip member (`CsvTable`) or from a live push stream (`simulator.sensors.live_files`).
    Cells are the CSV text of each field; `floats` and `times` parse them the same way."""

    member: str
    header: list[str]

    def __len__(self) -> int: ...
    def has(self, name: str) -> bool: ...
    def row(self, i: int) -> list[str]: ...
    def text(self, name: str) -> list[str]: ...
    def times(self) -> I64: ...
    def floats(self, name: str) -> F64: ...
    def line_of(self, row: int) -> int: ...


class SensorFiles(Protocol):
    """The sensor files of one recording, looked up by file name (case-insensitive)."""

    source: str
    folder: str

    @property
    def members(self) -> Mapping[str, str]: ...
    def has(self, name: str) -> bool: ...
    def read(self, name: str, *, whole_lines: bool = True) -> SensorTable: ...


def xyz(files: SensorFiles, name: str) -> Series:
    """The x, y, z columns of file `name` as a `Series` in time order."""
    table = files.read(name)
    values = np.stack([table.floats(axis) for axis in ("x", "y", "z")], axis=1)
    time_ns, values = in_order(table.times(), values)
    return Series(table.member, time_ns, values)


def where(source: str, member: str, line: int | None = None) -> str:
    """`zip: member[, line n]`, the start of every message about a file of the export."""
    return f"{source}: {member}" + ("" if line is None else f", line {line}")


class CsvTable:
    """One parsed CSV member: header, data rows and the 1-based line number of each row."""

    def __init__(self, zf: zipfile.ZipFile, source: str, member: str, *,
                 whole_lines: bool = True) -> None:
        self.source, self.member = source, member
        try:
            raw = zf.read(member)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise RecordingError(f"{where(source, member)}: cannot read from the zip: {exc}"
                                 ) from exc
        if not raw.strip():
            raise RecordingError(f"{where(source, member)}: empty file (no header line)")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise RecordingError(f"{where(source, member, line)}: not UTF-8 text") from exc
        if whole_lines and not text.endswith("\n"):
            # The app appends rows while recording; a last line without its newline is a
            # partial write (app killed, disk full), so its last field may be cut short.
            line = text.count("\n") + 1
            raise RecordingError(f"{where(source, member, line)}: truncated last line "
                                 "(no line end; the recording was cut off mid-write)")
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows: list[list[str]] = []
        lines: list[int] = []
        try:
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise RecordingError(f"{where(source, member, reader.line_num)}: {exc}") from exc
        self.header = [name.strip() for name in rows[0]]
        if not any(self.header):
            raise RecordingError(f"{where(source, member, 1)}: empty header line")
        self.rows, self.lines = rows[1:], lines[1:]
        width = len(self.header)
        for row, line in zip(self.rows, self.lines, strict=True):
            if len(row) != width:
                found = f"{len(row)} fields" if row else "an empty line"
                raise RecordingError(f"{where(source, member, line)}: {found}, "
                                     f"expected {width} fields as in the header")

    def __len__(self) -> int:
        return len(self.rows)

    def has(self, name: str) -> bool:
        return name in self.header

    def row(self, i: int) -> list[str]:
        return self.rows[i]

    def index(self, name: str) -> int:
        if name not in self.header:
            raise RecordingError(f"{where(self.source, self.member, 1)}: missing column "
                                 f"{name!r} (header has {', '.join(self.header)})")
        return self.header.index(name)

    def text(self, name: str) -> list[str]:
        j = self.index(name)
        return [row[j].strip() for row in self.rows]

    def times(self) -> I64:
        """The `time` column as int64 nanoseconds; every row must have an integer."""
        column = self.text("time")
        try:
            return np.array(column, dtype=np.str_).astype(np.int64)
        except (ValueError, OverflowError):
            pass
        values = np.empty(len(column), dtype=np.int64)
        for i, cell in enumerate(column):
            try:
                values[i] = int(cell)
            except (ValueError, OverflowError):
                raise RecordingError(
                    f"{where(self.source, self.member, self.lines[i])}: column 'time': "
                    f"{cell!r} is not an integer (epoch nanoseconds)") from None
        return values

    def floats(self, name: str) -> F64:
        """A numeric column as float64; an empty cell (value not reported) is NaN."""
        column = self.text(name)
        cells = np.array(column, dtype=np.str_)
        try:
            return np.where(cells == "", "nan", cells).astype(np.float64)
        except ValueError:
            pass
        values = np.empty(len(column), dtype=np.float64)
        for i, cell in enumerate(column):
            try:
                values[i] = float(cell) if cell else np.nan
            except ValueError:
                raise RecordingError(
                    f"{where(self.source, self.member, self.lines[i])}: column {name!r}: "
                    f"{cell!r} is not a number") from None
        return values

    def line_of(self, row: int) -> int:
        return self.lines[row]


def in_order(time_ns: I64, values: F64, keep: npt.NDArray[np.bool_] | None = None
             ) -> tuple[I64, F64]:
    """Drop rows earlier than a row before them (stale re-deliveries), and rows not in `keep`."""
    fresh = np.ones(time_ns.shape[0], dtype=np.bool_)
    if time_ns.size:
        fresh = time_ns >= np.maximum.accumulate(time_ns)
    if keep is not None:
        fresh &= keep
    return time_ns[fresh], values[fresh]


class ExportFolder:
    """The CSV members of one recording folder, looked up by file name (case-insensitive).

    The folder is the only one in the zip (the root or a sub-folder) holding a motion file
    (`ACCEL_FILES`): none, or several, is an error. Hidden files and macOS `__MACOSX`
    entries are not members.
    """

    def __init__(self, zf: zipfile.ZipFile, source: str) -> None:
        self.zf, self.source = zf, source
        folders: dict[str, dict[str, str]] = {}
        for info in zf.infolist():
            parts = info.filename.split("/")
            base = parts[-1]
            if (info.is_dir() or not base.lower().endswith(".csv") or base.startswith(".")
                    or "__MACOSX" in parts):
                continue
            folders.setdefault("/".join(parts[:-1]), {})[base.lower()] = info.filename
        wanted = {name.lower() for name in ACCEL_FILES}
        candidates = sorted(f for f, members in folders.items() if wanted & members.keys())
        if not candidates:
            found = sorted(m for members in folders.values() for m in members.values())
            raise RecordingError(
                f"{source}: no motion sensor file ({', '.join(ACCEL_FILES)}) in the zip; "
                f"found {', '.join(found) if found else 'no CSV files'}")
        if len(candidates) > 1:
            raise RecordingError(f"{source}: several recordings in one zip (folders "
                                 f"{', '.join(repr(c) for c in candidates)}); export one per zip")
        self.folder = candidates[0]
        self.members = folders[self.folder]

    def member(self, name: str) -> str | None:
        return self.members.get(name.lower())

    def has(self, name: str) -> bool:
        return name.lower() in self.members

    def read(self, name: str, *, whole_lines: bool = True) -> CsvTable:
        member = self.member(name)
        assert member is not None
        return CsvTable(self.zf, self.source, member, whole_lines=whole_lines)

