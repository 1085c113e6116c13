"""Replay of real phone recordings: a Sensor Logger zip export as the app's uploads.

`load_recording` reads the zip export of the Sensor Logger app (one CSV file per sensor,
possibly inside one sub-folder of the zip) into a `Recording`; `recording_batches` turns
it into the 10 s readings and 5-minute batches the GreenGains app would upload, as a
`BatchBlock` (see `simulator.sensors.batch` for the block's own invariants).

Export facts this module relies on, with their sources (awesome-sensor-logger, files
UNITS.md, CROSSPLATFORM.md, COORDINATES.md and README.md of tszheichoi/awesome-sensor-logger):

- `time` is UTC epoch nanoseconds; `seconds_elapsed` counts from the Start tap and may be
  negative (buffered samples). Only `time` is used; columns are found by name, in any order.
- Accelerometer.csv is acceleration WITHOUT gravity, m/s^2, on both platforms;
  TotalAcceleration.csv (Android only) is the raw accelerometer WITH gravity; Gravity.csv
  is gravity, m/s^2. Standard gravity is 9.80665 m/s^2.
- AccelerometerUncalibrated.csv includes gravity and is in g on iOS, m/s^2 on Android.
- iOS acceleration and gravity have the opposite sign of Android's on all three axes (a
  phone flat on a table reads gravity -z on iOS, +z on Android). The "Standardise Units &
  Frames" setting (Metadata.csv column `standardisation`) makes iOS exports use Android's
  signs and m/s^2. Gyroscope (rad/s) has the same sign on both platforms.
- Barometer.csv `pressure` is mbar, i.e. hPa, on the phone. Light.csv `lux` exists on
  Android only. Location.csv `latitude`/`longitude` are degrees and `horizontalAccuracy`
  is metres, negative meaning invalid (older Android exports call it `accuracy`).
  Battery.csv `batteryLevel` is a fraction 0..1, `batteryState` one of unknown,
  unplugged, charging, full.
- Metadata.csv (not in every export) has one row; its `platform` is iOS or Android.
  Without it the platform is inferred: an Android-only file (TotalAcceleration, Light,
  WiFi, BatteryTemp) means Android; AccelerometerUncalibrated in g (median magnitude below
  half a g in m/s^2) means iOS; otherwise it stays unknown and values are taken as is.

Invariants of a `Recording`:

- every series has non-decreasing `time_ns`; rows earlier than a row before them are stale
  re-deliveries and are dropped (the export's documented duplicate artefact), so time going
  backwards is not an error;
- `accel` is acceleration including gravity, m/s^2, in Android's frame (what Android's
  TYPE_ACCELEROMETER reports): TotalAcceleration.csv if present, else Accelerometer.csv
  plus Gravity.csv (each accelerometer row plus the latest gravity row at or before it),
  else AccelerometerUncalibrated.csv (unit from the platform; if that is unknown, g when
  its median magnitude is below half a g). Accelerometer.csv without Gravity.csv is an
  error, because it is documented to exclude gravity; only if its own median magnitude is
  within 25 % of g (an export that evidently includes gravity) is it used as it is;
- `start_ns`/`end_ns` are the first and last accelerometer sample: the replayed phone
  exists while it has motion data. Other sensors' samples outside that span still count as
  "delivered before" a tick.

Invariants of `recording_batches` (simulated time s maps to recording time
``start_ns + (s - start_ms) * speed``):

- ticks are at ``start_ms + k * 10 s`` while the mapped time is at most `end_ns`; batch w
  holds ticks 30w..30w+29 and spans ``start_ms + w * 5 min`` to 5 min later; the last batch
  may be partial but never empty;
- a reading holds, for each sensor, the latest sample at or before its mapped tick (no
  interpolation, no averaging, as the app samples listeners' last values); NaN (JSON null)
  where that sensor has delivered nothing yet;
- a missing sensor is a phone without it: no barometer -> `has_pressure` False; no light
  sensor (every iOS export) -> light NaN, written as null; no gyroscope -> gyro NaN;
  no Location.csv, or no fix yet at the batch's last tick -> the fallback coordinates with
  accuracy NaN; no Battery.csv -> 100 % and not charging, the choice that changes nothing
  else in the payload. Before the first battery row the first row is used (a phone always
  knows its battery level);
- location and battery of a batch are the latest at or before the batch's last tick;
  `is_charging` is True for batteryState charging or full (plugged in; Android's own
  idiom is ``status == CHARGING || status == FULL``); the geohash has precision 6.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from simulator.errors import RecordingError, UsageError
from simulator.instants import BATCH_INTERVAL_S, MS_PER_S, READINGS_PER_BATCH, SAMPLE_INTERVAL_S
from simulator.seeds import check_seed
from simulator.sensors import geohash, ids
from simulator.sensors.batch import STANDARD_GRAVITY, BatchBlock

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

NS_PER_S = 1_000_000_000
GEOHASH_PRECISION = 6
DEFAULT_BATTERY_PERCENT = 100

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
_ANDROID_ONLY = (TOTAL_ACCELERATION, LIGHT, "WiFi.csv", "BatteryTemp.csv")
_CHARGING_STATES = frozenset({"charging", "full"})


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


@dataclass(frozen=True, eq=False)
class Recording:
    """A Sensor Logger export, read and converted; invariants in the module docstring.

    Value columns: `accel` and `gyro` (x, y, z) in m/s^2 and rad/s, Android frame;
    `pressure` (hPa) and `light` (lux) one column; `location` (latitude, longitude,
    accuracy m, NaN if unknown); `battery` (level 0..1, charging 0/1). A sensor the export
    lacks is None.
    """

    source: str
    folder: str  # folder inside the zip holding the CSV files, "" for the root
    files: tuple[str, ...]  # every CSV file of that folder, as named in the zip
    platform: str  # "android", "ios" or "unknown"
    platform_from: str  # "Metadata.csv", "files", "AccelerometerUncalibrated.csv" or "none"
    standardised: bool  # "Standardise Units & Frames" was on (iOS already in Android frame)
    accel_from: str  # which files `accel` was built from
    accel: Series
    gyro: Series | None
    pressure: Series | None
    light: Series | None
    location: Series | None
    battery: Series | None
    start_ns: int
    end_ns: int
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def sensors(self) -> frozenset[str]:
        """Names of the sensors present: accel, gyro, pressure, light, location, battery."""
        present = {"accel": self.accel, "gyro": self.gyro, "pressure": self.pressure,
                   "light": self.light, "location": self.location, "battery": self.battery}
        return frozenset(name for name, series in present.items() if series is not None)

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last accelerometer sample."""
        return (self.end_ns - self.start_ns) / NS_PER_S


# ---------------------------------------------------------------------------------------
# CSV files inside the zip


def _where(source: str, member: str, line: int | None = None) -> str:
    return f"{source}: {member}" + ("" if line is None else f", line {line}")


class _Csv:
    """One parsed CSV member: header, data rows and the 1-based line number of each row."""

    def __init__(self, zf: zipfile.ZipFile, source: str, member: str, *,
                 whole_lines: bool = True) -> None:
        self.source, self.member = source, member
        try:
            raw = zf.read(member)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise RecordingError(f"{_where(source, member)}: cannot read from the zip: {exc}"
                                 ) from exc
        if not raw.strip():
            raise RecordingError(f"{_where(source, member)}: empty file (no header line)")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise RecordingError(f"{_where(source, member, line)}: not UTF-8 text") from exc
        if whole_lines and not text.endswith("\n"):
            # The app appends rows while recording; a last line without its newline is a
            # partial write (app killed, disk full), so its last field may be cut short.
            line = text.count("\n") + 1
            raise RecordingError(f"{_where(source, member, line)}: truncated last line "
                                 "(no line end; the recording was cut off mid-write)")
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows: list[list[str]] = []
        lines: list[int] = []
        try:
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise RecordingError(f"{_where(source, member, reader.line_num)}: {exc}") from exc
        self.header = [name.strip() for name in rows[0]]
        if not any(self.header):
            raise RecordingError(f"{_where(source, member, 1)}: empty header line")
        self.rows, self.lines = rows[1:], lines[1:]
        width = len(self.header)
        for row, line in zip(self.rows, self.lines, strict=True):
            if len(row) != width:
                found = f"{len(row)} fields" if row else "an empty line"
                raise RecordingError(f"{_where(source, member, line)}: {found}, "
                                     f"expected {width} fields as in the header")

    def __len__(self) -> int:
        return len(self.rows)

    def has(self, name: str) -> bool:
        return name in self.header

    def index(self, name: str) -> int:
        if name not in self.header:
            raise RecordingError(f"{_where(self.source, self.member, 1)}: missing column "
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
                    f"{_where(self.source, self.member, self.lines[i])}: column 'time': "
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
                    f"{_where(self.source, self.member, self.lines[i])}: column {name!r}: "
                    f"{cell!r} is not a number") from None
        return values

    def line_of(self, row: int) -> int:
        return self.lines[row]


def _in_order(time_ns: I64, values: F64, keep: npt.NDArray[np.bool_] | None = None
              ) -> tuple[I64, F64]:
    """Drop rows earlier than a row before them (stale re-deliveries), and rows not in `keep`."""
    fresh = np.ones(time_ns.shape[0], dtype=np.bool_)
    if time_ns.size:
        fresh = time_ns >= np.maximum.accumulate(time_ns)
    if keep is not None:
        fresh &= keep
    return time_ns[fresh], values[fresh]


class _Export:
    """The CSV members of one recording folder, looked up by file name (case-insensitive)."""

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

    def read(self, name: str, *, whole_lines: bool = True) -> _Csv:
        member = self.member(name)
        assert member is not None
        return _Csv(self.zf, self.source, member, whole_lines=whole_lines)

    def xyz(self, name: str) -> Series:
        table = self.read(name)
        values = np.stack([table.floats(axis) for axis in ("x", "y", "z")], axis=1)
        time_ns, values = _in_order(table.times(), values)
        return Series(table.member, time_ns, values)


# ---------------------------------------------------------------------------------------
# Sensors


def _metadata(export: _Export) -> dict[str, str]:
    if not export.has(METADATA):
        return {}
    # Written once at export time, not appended while recording: no truncation check.
    table = export.read(METADATA, whole_lines=False)
    if not table.rows:
        return {}
    return {name: value.strip() for name, value in zip(table.header, table.rows[0],
                                                       strict=True)}


def _median_magnitude(values: F64) -> float:
    norms = np.sqrt((values * values).sum(axis=1))
    norms = norms[~np.isnan(norms)]
    return float(np.median(norms)) if norms.size else math.nan


def _platform(export: _Export, metadata: Mapping[str, str]) -> tuple[str, str]:
    """(platform, what it was read or inferred from); see the module docstring."""
    stated = metadata.get("platform", "").lower()
    if stated in ("ios", "android"):
        return stated, METADATA
    if any(export.has(name) for name in _ANDROID_ONLY):
        return "android", "files"
    if export.has(ACCELEROMETER_UNCALIBRATED):
        magnitude = _median_magnitude(export.xyz(ACCELEROMETER_UNCALIBRATED).values)
        if magnitude < STANDARD_GRAVITY / 2:
            return "ios", ACCELEROMETER_UNCALIBRATED
    return "unknown", "none"


def _accel(export: _Export, platform: str, standardised: bool) -> tuple[Series, str]:
    """Acceleration with gravity in Android's frame, and the files it was built from."""
    ios_frame = platform == "ios" and not standardised
    if export.has(TOTAL_ACCELERATION):
        series, built_from = export.xyz(TOTAL_ACCELERATION), TOTAL_ACCELERATION
        values = series.values
    elif export.has(ACCELEROMETER):
        series = export.xyz(ACCELEROMETER)
        if export.has(GRAVITY):
            gravity = export.xyz(GRAVITY)
            values = series.values + gravity.at(series.time_ns)
            built_from = f"{ACCELEROMETER} + {GRAVITY}"
        else:
            magnitude = _median_magnitude(series.values)
            if len(series) and not abs(magnitude - STANDARD_GRAVITY) < 0.25 * STANDARD_GRAVITY:
                raise RecordingError(
                    f"{_where(export.source, series.file)}: holds acceleration without "
                    f"gravity (Sensor Logger UNITS.md; median magnitude {magnitude:.2f} "
                    f"m/s^2) and the export has no {GRAVITY} or {TOTAL_ACCELERATION} to "
                    "add it; re-export with the Gravity sensor enabled")
            values, built_from = series.values, ACCELEROMETER
    else:
        series = export.xyz(ACCELEROMETER_UNCALIBRATED)
        if platform == "unknown":
            in_g = _median_magnitude(series.values) < STANDARD_GRAVITY / 2
        else:
            in_g = ios_frame  # g on iOS unless standardised, m/s^2 on Android (UNITS.md)
        values = series.values * STANDARD_GRAVITY if in_g else series.values
        built_from = ACCELEROMETER_UNCALIBRATED
    if len(series) == 0:
        raise RecordingError(f"{_where(export.source, series.file)}: no samples")
    if ios_frame:
        values = -values
    return Series(series.file, series.time_ns.copy(), np.ascontiguousarray(values)), built_from


def _column(export: _Export, name: str, column: str) -> Series | None:
    if not export.has(name):
        return None
    table = export.read(name)
    time_ns, values = _in_order(table.times(), table.floats(column)[:, None])
    return Series(table.member, time_ns, values)


def _location(export: _Export) -> Series | None:
    if not export.has(LOCATION):
        return None
    table = export.read(LOCATION)
    lat, lon = table.floats("latitude"), table.floats("longitude")
    accuracy_column = next((c for c in ("horizontalAccuracy", "accuracy") if table.has(c)), None)
    accuracy = (table.floats(accuracy_column) if accuracy_column
                else np.full(len(table), np.nan))
    accuracy[accuracy < 0] = np.nan  # negative means invalid (UNITS.md)
    for name, values, limit in (("latitude", lat, 90.0), ("longitude", lon, 180.0)):
        bad = np.flatnonzero(np.abs(values) > limit)
        if bad.size:
            raise RecordingError(f"{_where(export.source, table.member, table.line_of(bad[0]))}"
                                 f": {name} {values[bad[0]]} is outside ±{limit:g} degrees")
    fix = ~(np.isnan(lat) | np.isnan(lon))  # a row without coordinates is not a fix
    time_ns, values = _in_order(table.times(), np.stack([lat, lon, accuracy], axis=1), fix)
    return Series(table.member, time_ns, values)


def _battery(export: _Export) -> Series | None:
    if not export.has(BATTERY):
        return None
    table = export.read(BATTERY)
    level = table.floats("batteryLevel")
    too_high = np.flatnonzero(level > 1.0)
    if too_high.size:
        raise RecordingError(
            f"{_where(export.source, table.member, table.line_of(too_high[0]))}: batteryLevel "
            f"{level[too_high[0]]} is not a fraction 0..1 (Sensor Logger UNITS.md)")
    states = table.text("batteryState") if table.has("batteryState") else [""] * len(table)
    charging = np.array([s.lower() in _CHARGING_STATES for s in states], dtype=np.float64)
    known = level >= 0  # iOS reports -1 when the level is unknown; NaN compares False too
    time_ns, values = _in_order(table.times(), np.stack([level, charging], axis=1), known)
    return Series(table.member, time_ns, values)


def load_recording(path: str | Path) -> Recording:
    """Read a Sensor Logger zip export; `RecordingError` names file and line if it is broken."""
    source = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise RecordingError(f"{source}: not a zip archive (expected a Sensor Logger "
                             f"zip export): {exc}") from exc
    except OSError as exc:
        raise RecordingError(f"{source}: cannot open: {exc.strerror or exc}") from exc
    with zf:
        export = _Export(zf, source)
        metadata = _metadata(export)
        platform, platform_from = _platform(export, metadata)
        standardised = metadata.get("standardisation", "").lower() == "true"
        accel, accel_from = _accel(export, platform, standardised)
        gyro_file = GYROSCOPE if export.has(GYROSCOPE) else GYROSCOPE_UNCALIBRATED
        return Recording(
            source=source,
            folder=export.folder,
            files=tuple(sorted(export.members.values())),
            platform=platform,
            platform_from=platform_from,
            standardised=standardised,
            accel_from=accel_from,
            accel=accel,
            gyro=export.xyz(gyro_file) if export.has(gyro_file) else None,
            pressure=_column(export, BAROMETER, "pressure"),
            light=_column(export, LIGHT, "lux"),
            location=_location(export),
            battery=_battery(export),
            start_ns=int(accel.time_ns[0]),
            end_ns=int(accel.time_ns[-1]),
            metadata=metadata,
        )


# ---------------------------------------------------------------------------------------
# Replay

MAX_TICKS = 10_000_000  # readings of one replay (about three years of 10 s ticks)


def _tick_times(rec: Recording, speed: float) -> I64:
    """Recording time (ns) of every tick: start + k * 10 s * speed, while within the recording."""
    step_ns = SAMPLE_INTERVAL_S * NS_PER_S * speed
    n = int((rec.end_ns - rec.start_ns) // step_ns) + 2  # one spare against rounding
    if n > MAX_TICKS:
        raise UsageError(f"--speed {speed:g} replays this {rec.duration_s:.0f} s recording as "
                         f"{n:,} readings (more than {MAX_TICKS:,}); use a larger speed")
    mapped: I64 = rec.start_ns + np.rint(np.arange(n) * step_ns).astype(np.int64)
    within: I64 = mapped[mapped <= rec.end_ns]
    return within


def recording_batches(rec: Recording, *, start_ms: int, speed: float = 1.0, seed: int = 0,
                      phone: int = 0, fallback_lat: float = 52.52,
                      fallback_lon: float = 13.405) -> BatchBlock:
    """The batches phone `phone` uploads while replaying `rec` from simulated `start_ms` on.

    `speed` is recording seconds per simulated second (2 replays twice as fast); it must
    be a finite number > 0. Identifiers come from `simulator.sensors.ids` with
    (seed, phone). Semantics and invariants are in the module docstring.
    """
    numeric = isinstance(speed, int | float | np.integer | np.floating)
    if isinstance(speed, bool) or not numeric or not (math.isfinite(speed) and speed > 0):
        raise UsageError(f"replay speed must be a finite number > 0, got {speed!r}")
    seed = check_seed(seed)
    if isinstance(phone, bool) or not isinstance(phone, int | np.integer) or phone < 0:
        raise UsageError(f"phone index must be a non-negative integer, got {phone!r}")
    if isinstance(start_ms, bool) or not isinstance(start_ms, int | np.integer):
        raise UsageError(f"start_ms must be integer epoch milliseconds, got {start_ms!r}")

    mapped = _tick_times(rec, float(speed))
    n = int(mapped.shape[0])
    interval_ms = SAMPLE_INTERVAL_S * MS_PER_S
    t_ms = int(start_ms) + np.arange(n, dtype=np.int64) * interval_ms
    b = -(-n // READINGS_PER_BATCH)
    seq = np.arange(b, dtype=np.int64)
    offsets = np.minimum(np.arange(b + 1, dtype=np.int64) * READINGS_PER_BATCH, n)
    period_start = int(start_ms) + seq * (BATCH_INTERVAL_S * MS_PER_S)
    last_tick = mapped[offsets[1:] - 1]

    def per_reading(series: Series | None, width: int) -> npt.NDArray[np.float32]:
        if series is None:
            return np.full((n, width), np.nan, dtype=np.float32)
        return series.at(mapped).astype(np.float32)

    lat = np.full(b, float(fallback_lat))
    lon = np.full(b, float(fallback_lon))
    accuracy = np.full(b, np.nan, dtype=np.float32)
    if rec.location is not None:
        fix = rec.location.at(last_tick)
        have = ~np.isnan(fix[:, 0])
        lat[have], lon[have] = fix[have, 0], fix[have, 1]
        accuracy[have] = fix[have, 2]

    battery_level = np.full(b, DEFAULT_BATTERY_PERCENT, dtype=np.int64)
    is_charging = np.zeros(b, dtype=np.bool_)
    if rec.battery is not None and len(rec.battery):
        row = rec.battery.values[np.maximum(rec.battery.latest_index(last_tick), 0)]
        battery_level = np.clip(np.rint(row[:, 0] * 100), 0, 100).astype(np.int64)
        is_charging = row[:, 1] > 0.5

    phones = np.full(b, int(phone), dtype=np.int64)
    block = BatchBlock(
        phone=phones,
        seq=seq,
        device_id=ids.device_ids(seed, phones),
        user_id=ids.user_ids(seed, phones),
        batch_id=ids.batch_ids(seed, phones, seq),
        order_ms=period_start.copy(),
        period_start_ms=period_start,
        period_end_ms=period_start + BATCH_INTERVAL_S * MS_PER_S,
        offsets=offsets,
        t_ms=t_ms,
        light=per_reading(rec.light, 1)[:, 0].copy(),
        accel=per_reading(rec.accel, 3),
        gyro=per_reading(rec.gyro, 3),
        pressure=per_reading(rec.pressure, 1)[:, 0].copy(),
        has_pressure=np.full(b, rec.pressure is not None),
        lat=lat,
        lon=lon,
        accuracy_m=accuracy,
        geohash=geohash.encode(lat, lon, GEOHASH_PRECISION),
        battery_level=battery_level,
        is_charging=is_charging,
    )
    block.validate()
    return block
