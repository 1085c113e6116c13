"""Replay of real phone recordings: a Sensor Logger zip export as the app's uploads.

`load_recording` reads the zip export of the Sensor Logger app (one CSV file per sensor,
possibly inside one sub-folder of the zip) into a `Recording`
(`simulator.sensors.recording_export`, which states the export facts it relies on and
the invariants of a `Recording`); `recording_batches` turns it into the 10 s readings and
5-minute batches the GreenGains app would upload, as a `BatchBlock` (see
`simulator.sensors.batch` for the block's own invariants).

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

import math

import numpy as np
import numpy.typing as npt

from simulator.errors import UsageError
from simulator.instants import BATCH_INTERVAL_S, MS_PER_S, READINGS_PER_BATCH, SAMPLE_INTERVAL_S
from simulator.seeds import check_seed
from simulator.sensors import geohash, ids
from simulator.sensors.batch import BatchBlock
from simulator.sensors.recording_export import Recording as Recording
from simulator.sensors.recording_export import load_recording as load_recording
from simulator.sensors.recording_files import F64, I64, NS_PER_S
from simulator.sensors.recording_files import Series as Series

GEOHASH_PRECISION = 6
DEFAULT_BATTERY_PERCENT = 100
MAX_TICKS = 10_000_000  # readings of one replay (about three years of 10 s ticks)


def recording_batches(rec: Recording, *, start_ms: int, speed: float = 1.0, seed: int = 0,
                      phone: int = 0, fallback_lat: float = 52.52,
                      fallback_lon: float = 13.405) -> BatchBlock:
    """The batches phone `phone` uploads while replaying `rec` from simulated `start_ms` on.

    `speed` is recording seconds per simulated second (2 replays twice as fast); it must
    be a finite number > 0. Identifiers come from `simulator.sensors.ids` with
    (seed, phone). Semantics and invariants are in the module docstring.
    """
    seed = _checked_seed(speed, seed, phone, start_ms)
    mapped = _tick_times(rec, float(speed))
    n = int(mapped.shape[0])
    interval_ms = SAMPLE_INTERVAL_S * MS_PER_S
    t_ms = int(start_ms) + np.arange(n, dtype=np.int64) * interval_ms
    b = -(-n // READINGS_PER_BATCH)
    seq = np.arange(b, dtype=np.int64)
    offsets = np.minimum(np.arange(b + 1, dtype=np.int64) * READINGS_PER_BATCH, n)
    period_start = int(start_ms) + seq * (BATCH_INTERVAL_S * MS_PER_S)
    last_tick = mapped[offsets[1:] - 1]
    lat, lon, accuracy = _fixes(rec.location, last_tick, fallback_lat, fallback_lon)
    battery_level, is_charging = _batteries(rec.battery, last_tick)

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
        light=_per_reading(rec.light, mapped, 1)[:, 0].copy(),
        accel=_per_reading(rec.accel, mapped, 3),
        gyro=_per_reading(rec.gyro, mapped, 3),
        pressure=_per_reading(rec.pressure, mapped, 1)[:, 0].copy(),
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


def _checked_seed(speed: float, seed: int, phone: int, start_ms: int) -> int:
    """The seed as `check_seed` returns it, once the arguments of `recording_batches` are
    known to be usable (a `UsageError` names the first that is not, in argument order
    speed, seed, phone, start_ms)."""
    numeric = isinstance(speed, int | float | np.integer | np.floating)
    if isinstance(speed, bool) or not numeric or not (math.isfinite(speed) and speed > 0):
        raise UsageError(f"replay speed must be a finite number > 0, got {speed!r}")
    seed = check_seed(seed)
    if isinstance(phone, bool) or not isinstance(phone, int | np.integer) or phone < 0:
        raise UsageError(f"phone index must be a non-negative integer, got {phone!r}")
    if isinstance(start_ms, bool) or not isinstance(start_ms, int | np.integer):
        raise UsageError(f"start_ms must be integer epoch milliseconds, got {start_ms!r}")
    return seed


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


def _per_reading(series: Series | None, mapped: I64, width: int) -> npt.NDArray[np.float32]:
    """(ticks, width) float32: the sensor's latest sample at or before each mapped tick;
    NaN before its first sample, and everywhere for a sensor the phone lacks."""
    if series is None:
        return np.full((mapped.shape[0], width), np.nan, dtype=np.float32)
    return series.at(mapped).astype(np.float32)


def _fixes(location: Series | None, last_tick: I64, fallback_lat: float,
           fallback_lon: float) -> tuple[F64, F64, npt.NDArray[np.float32]]:
    """Latitude, longitude and accuracy (float32) of each batch: the latest fix at or
    before its last tick; the fallback coordinates with accuracy NaN where there is none
    (no Location.csv, or no fix yet)."""
    b = last_tick.shape[0]
    lat = np.full(b, float(fallback_lat))
    lon = np.full(b, float(fallback_lon))
    accuracy = np.full(b, np.nan, dtype=np.float32)
    if location is not None:
        fix = location.at(last_tick)
        have = ~np.isnan(fix[:, 0])
        lat[have], lon[have] = fix[have, 0], fix[have, 1]
        accuracy[have] = fix[have, 2]
    return lat, lon, accuracy


def _batteries(battery: Series | None, last_tick: I64
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Battery percent (0..100) and charging flag of each batch: the latest battery row at
    or before its last tick (the first row before it: a phone always knows its level);
    100 % and not charging without Battery.csv (or with no usable row in it)."""
    b = last_tick.shape[0]
    battery_level = np.full(b, DEFAULT_BATTERY_PERCENT, dtype=np.int64)
    is_charging = np.zeros(b, dtype=np.bool_)
    if battery is not None and len(battery):
        row = battery.values[np.maximum(battery.latest_index(last_tick), 0)]
        battery_level = np.clip(np.rint(row[:, 0] * 100), 0, 100).astype(np.int64)
        is_charging = row[:, 1] > 0.5
    return battery_level, is_charging
