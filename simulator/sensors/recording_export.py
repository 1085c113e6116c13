"""Reading a Sensor Logger zip export into a `Recording`: which files hold what, in which
units and frames, on which platform. `load_recording` is the entry point; the zip and
CSV parsing itself is `simulator.sensors.recording_files`, the replay of a `Recording`
as uploads `simulator.sensors.recording`.

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
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.errors import RecordingError
from simulator.sensors.batch import STANDARD_GRAVITY
from simulator.sensors.recording_files import (
    ACCELEROMETER,
    ACCELEROMETER_UNCALIBRATED,
    BAROMETER,
    BATTERY,
    F64,
    GRAVITY,
    GYROSCOPE,
    GYROSCOPE_UNCALIBRATED,
    LIGHT,
    LOCATION,
    METADATA,
    NS_PER_S,
    TOTAL_ACCELERATION,
    ExportFolder,
    SensorFiles,
    Series,
    in_order,
    where,
    xyz,
)

_ANDROID_ONLY = (TOTAL_ACCELERATION, LIGHT, "WiFi.csv", "BatteryTemp.csv")
_CHARGING_STATES = frozenset({"charging", "full"})


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



def _metadata(export: SensorFiles) -> dict[str, str]:
    if not export.has(METADATA):
        return {}
    # Written once at export time, not appended while recording: no truncation check.
    table = export.read(METADATA, whole_lines=False)
    if not len(table):
        return {}
    return {name: value.strip() for name, value in zip(table.header, table.row(0),
                                                       strict=True)}


def _median_magnitude(values: F64) -> float:
    norms = np.sqrt((values * values).sum(axis=1))
    norms = norms[~np.isnan(norms)]
    return float(np.median(norms)) if norms.size else math.nan


def _platform(export: SensorFiles, metadata: Mapping[str, str]) -> tuple[str, str]:
    """(platform, what it was read or inferred from); see the module docstring."""
    stated = metadata.get("platform", "").lower()
    if stated in ("ios", "android"):
        return stated, METADATA
    if any(export.has(name) for name in _ANDROID_ONLY):
        return "android", "files"
    if export.has(ACCELEROMETER_UNCALIBRATED):
        magnitude = _median_magnitude(xyz(export, ACCELEROMETER_UNCALIBRATED).values)
        if magnitude < STANDARD_GRAVITY / 2:
            return "ios", ACCELEROMETER_UNCALIBRATED
    return "unknown", "none"


def _accel(export: SensorFiles, platform: str, standardised: bool) -> tuple[Series, str]:
    """Acceleration with gravity in Android's frame, and the files it was built from."""
    ios_frame = platform == "ios" and not standardised
    if export.has(TOTAL_ACCELERATION):
        series, built_from = xyz(export, TOTAL_ACCELERATION), TOTAL_ACCELERATION
        values = series.values
    elif export.has(ACCELEROMETER):
        series = xyz(export, ACCELEROMETER)
        if export.has(GRAVITY):
            gravity = xyz(export, GRAVITY)
            values = series.values + gravity.at(series.time_ns)
            built_from = f"{ACCELEROMETER} + {GRAVITY}"
        else:
            magnitude = _median_magnitude(series.values)
            if len(series) and not abs(magnitude - STANDARD_GRAVITY) < 0.25 * STANDARD_GRAVITY:
                raise RecordingError(
                    f"{where(export.source, series.file)}: holds acceleration without "
                    f"gravity (Sensor Logger UNITS.md; median magnitude {magnitude:.2f} "
                    f"m/s^2) and the export has no {GRAVITY} or {TOTAL_ACCELERATION} to "
                    "add it; re-export with the Gravity sensor enabled")
            values, built_from = series.values, ACCELEROMETER
    else:
        series = xyz(export, ACCELEROMETER_UNCALIBRATED)
        if platform == "unknown":
            in_g = _median_magnitude(series.values) < STANDARD_GRAVITY / 2
        else:
            in_g = ios_frame  # g on iOS unless standardised, m/s^2 on Android (UNITS.md)
        values = series.values * STANDARD_GRAVITY if in_g else series.values
        built_from = ACCELEROMETER_UNCALIBRATED
    if len(series) == 0:
        raise RecordingError(f"{where(export.source, series.file)}: no samples")
    if ios_frame:
        values = -values
    return Series(series.file, series.time_ns.copy(), np.ascontiguousarray(values)), built_from


def _column(export: SensorFiles, name: str, column: str) -> Series | None:
    if not export.has(name):
        return None
    table = export.read(name)
    time_ns, values = in_order(table.times(), table.floats(column)[:, None])
    return Series(table.member, time_ns, values)


def _location(export: SensorFiles) -> Series | None:
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
            raise RecordingError(f"{where(export.source, table.member, table.line_of(bad[0]))}"
                                 f": {name} {values[bad[0]]} is outside ±{limit:g} degrees")
    fix = ~(np.isnan(lat) | np.isnan(lon))  # a row without coordinates is not a fix
    time_ns, values = in_order(table.times(), np.stack([lat, lon, accuracy], axis=1), fix)
    return Series(table.member, time_ns, values)


def _battery(export: SensorFiles) -> Series | None:
    if not export.has(BATTERY):
        return None
    table = export.read(BATTERY)
    level = table.floats("batteryLevel")
    too_high = np.flatnonzero(level > 1.0)
    if too_high.size:
        raise RecordingError(
            f"{where(export.source, table.member, table.line_of(too_high[0]))}: batteryLevel "
            f"{level[too_high[0]]} is not a fraction 0..1 (Sensor Logger UNITS.md)")
    states = table.text("batteryState") if table.has("batteryState") else [""] * len(table)
    charging = np.array([s.lower() in _CHARGING_STATES for s in states], dtype=np.float64)
    known = level >= 0  # iOS reports -1 when the level is unknown; NaN compares False too
    time_ns, values = in_order(table.times(), np.stack([level, charging], axis=1), known)
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
        return recording_from(ExportFolder(zf, source))


def recording_from(export: SensorFiles) -> Recording:
    """The `Recording` of a recording's sensor files, from a zip (`load_recording`) or a
    live push stream: one conversion, so both give the same samples from the same cells."""
    metadata = _metadata(export)
    platform, platform_from = _platform(export, metadata)
    standardised = metadata.get("standardisation", "").lower() == "true"
    accel, accel_from = _accel(export, platform, standardised)
    gyro_file = GYROSCOPE if export.has(GYROSCOPE) else GYROSCOPE_UNCALIBRATED
    return Recording(
        source=export.source,
        folder=export.folder,
        files=tuple(sorted(export.members.values())),
        platform=platform,
        platform_from=platform_from,
        standardised=standardised,
        accel_from=accel_from,
        accel=accel,
        gyro=xyz(export, gyro_file) if export.has(gyro_file) else None,
        pressure=_column(export, BAROMETER, "pressure"),
        light=_column(export, LIGHT, "lux"),
        location=_location(export),
        battery=_battery(export),
        start_ns=int(accel.time_ns[0]),
        end_ns=int(accel.time_ns[-1]),
        metadata=metadata,
    )
