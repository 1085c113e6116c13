"""A live push stream's samples kept as the sensor files of a Sensor Logger zip export.

`LiveFiles` is a `SensorFiles` (`simulator.sensors.recording_files`): the recording
importer's own conversion (`recording_export.recording_from`) reads it while the stream is
still coming in, and `zip_bytes` writes the same cells as a zip that `load_recording` reads
back to the same `Recording`.

Invariants:

- a file's columns are `time`, `seconds_elapsed`, then its value columns in the order they
  were first seen; a sample without one of them has an empty cell there (the importer reads
  an empty numeric cell as NaN, as it reads a value the app did not report);
- a cell's text is what `zip_bytes` writes: a float as its shortest round-trip repr (so
  `float(text)` is the float the phone sent), an int as digits, a bool as true/false, null
  as empty; `floats` and `times` return exactly what the importer parses from that text;
- `seconds_elapsed` counts from the first sample added (Sensor Logger counts from the Start
  tap, which a live stream does not report); nothing reads it;
- `zip_bytes` is a function of the samples added, in order, and the metadata: entries in
  name order with a fixed date, so the same stream gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Mapping

import numpy as np

from simulator.errors import RecordingError
from simulator.sensors.push import Cell, Sample
from simulator.sensors.recording_files import F64, I64, METADATA, NS_PER_S, where

ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def cell_text(value: Cell) -> str:
    """The CSV text of one value (module invariants)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class LiveTable:
    """One sensor file of a live stream, column by column (a `SensorTable`)."""

    def __init__(self, source: str, member: str, columns: list[str]) -> None:
        self.source, self.member = source, member
        self.header = ["time", "seconds_elapsed", *columns] if member != METADATA else columns
        self._time: list[int] = []
        self._cells: dict[str, list[Cell]] = {name: [] for name in self.header}
        self._floats: dict[str, list[float]] = {}  # rows converted so far, by column

    def __len__(self) -> int:
        return len(self._cells[self.header[0]])

    def add(self, time_ns: int, elapsed_s: float, values: Mapping[str, Cell]) -> None:
        """Append one row; a new column is added with empty cells for the rows before."""
        for name in values:
            if name not in self._cells:
                self.header.append(name)
                self._cells[name] = [None] * len(self)
        self._time.append(time_ns)
        self._cells["time"].append(time_ns)
        self._cells["seconds_elapsed"].append(elapsed_s)
        for name in self.header[2:]:
            self._cells[name].append(values.get(name))

    def add_row(self, values: Mapping[str, str]) -> None:
        """Append a row of text cells to a table without times (Metadata.csv)."""
        for name in self.header:
            self._cells[name].append(values.get(name, ""))

    def has(self, name: str) -> bool:
        return name in self._cells

    def row(self, i: int) -> list[str]:
        return [cell_text(self._cells[name][i]) for name in self.header]

    def text(self, name: str) -> list[str]:
        return [cell_text(value).strip() for value in self._column(name)]

    def times(self) -> I64:
        return np.array(self._time, dtype=np.int64)

    def floats(self, name: str) -> F64:
        """The column as float64, NaN for an empty cell; what the importer parses from the
        written text, since float(repr(x)) == x and float(str(n)) == float(n). Rows are
        converted once (a seal reads every row so far, again and again)."""
        column = self._column(name)
        parsed = self._floats.setdefault(name, [])
        for i in range(len(parsed), len(column)):
            value = column[i]
            if value is None:
                parsed.append(math.nan)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                parsed.append(float(value))
            else:
                raise RecordingError(f"{where(self.source, self.member, self.line_of(i))}: "
                                     f"column {name!r}: {value!r} is not a number")
        return np.array(parsed, dtype=np.float64)

    def line_of(self, row: int) -> int:
        return row + 2  # the header is line 1 of the written file

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        columns = [self._cells[name] for name in self.header]
        writer.writerows([cell_text(v) for v in row] for row in zip(*columns, strict=True))
        return out.getvalue()

    def _column(self, name: str) -> list[Cell]:
        if name not in self._cells:
            raise RecordingError(f"{where(self.source, self.member, 1)}: missing column "
                                 f"{name!r} (header has {', '.join(self.header)})")
        return self._cells[name]


class LiveFiles:
    """The sensor files of one live session (a `SensorFiles`); module invariants."""

    folder = ""

    def __init__(self, source: str, metadata: Mapping[str, str]) -> None:
        self.source = source
        self._tables: dict[str, LiveTable] = {}
        self._origin_ns: int | None = None
        if metadata:
            table = LiveTable(source, METADATA, list(metadata))
            table.add_row(metadata)
            self._tables[METADATA.lower()] = table

    @property
    def members(self) -> Mapping[str, str]:
        return {key: table.member for key, table in self._tables.items()}

    def has(self, name: str) -> bool:
        return name.lower() in self._tables

    def read(self, name: str, *, whole_lines: bool = True) -> LiveTable:
        return self._tables[name.lower()]

    def rows(self, name: str) -> int:
        """Rows of file `name` so far (0 for a file not seen)."""
        table = self._tables.get(name.lower())
        return len(table) if table is not None else 0

    def add(self, sample: Sample) -> None:
        """Append one sample to its file (created at its first sample)."""
        if self._origin_ns is None:
            self._origin_ns = sample.time_ns
        table = self._tables.get(sample.file.lower())
        if table is None:
            table = LiveTable(self.source, sample.file, list(sample.values))
            self._tables[sample.file.lower()] = table
        table.add(sample.time_ns, (sample.time_ns - self._origin_ns) / NS_PER_S, sample.values)

    def zip_bytes(self, extra: Mapping[str, bytes] | None = None) -> bytes:
        """The files as a Sensor Logger–style zip (CSV files at the root), plus `extra`
        members (not CSV, so the importer does not read them)."""
        members = {table.member: table.csv_text().encode() for table in self._tables.values()}
        members.update(extra or {})
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, members[name])
        return out.getvalue()
