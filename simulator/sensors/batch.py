"""Columnar 5-minute batches: the one structure every producer hands to the encoder.

A `BatchBlock` holds B upload batches and their N readings in all, as arrays (readings
are ragged: batch i owns readings `offsets[i]:offsets[i+1]`). Synthetic fleets
(`simulator.sensors.generator`) and recording replay (`simulator.sensors.recording`) both
produce it; `simulator.sensors.encode` turns it into review §4.2 upload envelopes.

Invariants (checked by `validate`):
- every batch has at least one reading (a phone with nothing to send sends nothing);
- `offsets` starts at 0, never decreases and ends at N;
- `t_ms` is the phone's own clock (skewed, jittered); `order_ms` is true simulated time of
  the batch window start and is what output is sorted by;
- a NaN reading value is a sensor glitch (written as JSON null); a phone without a
  barometer has `has_pressure` False and its pressure values are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import InvariantError

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Bytes = npt.NDArray[np.bytes_]

STANDARD_GRAVITY = 9.80665  # m/s^2, ISO 80000-3; Android SensorManager.STANDARD_GRAVITY


@dataclass(frozen=True)
class BatchBlock:
    """B batches with N readings in all; see the module docstring for invariants."""

    phone: I64
    seq: I64
    device_id: Bytes
    user_id: Bytes
    batch_id: Bytes
    order_ms: I64
    period_start_ms: I64
    period_end_ms: I64
    offsets: I64
    t_ms: I64
    light: F32
    accel: F32  # (N, 3)
    gyro: F32  # (N, 3)
    pressure: F32
    has_pressure: Bool
    lat: F64
    lon: F64
    accuracy_m: F32
    geohash: Bytes
    battery_level: I64
    is_charging: Bool

    @property
    def size(self) -> int:
        """Number of batches B."""
        return int(self.phone.shape[0])

    @property
    def counts(self) -> I64:
        """Readings per batch."""
        return np.diff(self.offsets)

    def validate(self) -> None:
        """Raise `InvariantError` (a `ValueError`) naming the first broken invariant."""
        b, n = self.size, int(self.t_ms.shape[0])
        per_batch = ("phone", "seq", "device_id", "user_id", "batch_id", "order_ms",
                     "period_start_ms", "period_end_ms", "has_pressure", "lat", "lon",
                     "accuracy_m", "geohash", "battery_level", "is_charging")
        for name in per_batch:
            if getattr(self, name).shape[0] != b:
                raise InvariantError(
                    f"{name} has {getattr(self, name).shape[0]} rows, expected {b}")
        for name in ("light", "accel", "gyro", "pressure"):
            if getattr(self, name).shape[0] != n:
                raise InvariantError(
                    f"{name} has {getattr(self, name).shape[0]} rows, expected {n}")
        if self.offsets.shape != (b + 1,) or self.offsets[0] != 0 or self.offsets[-1] != n:
            raise InvariantError("offsets must have B+1 entries from 0 to N")
        if b and int(self.counts.min()) < 1:
            raise InvariantError("every batch needs at least one reading")

    def take(self, index: npt.NDArray[np.intp]) -> BatchBlock:
        """The batches at `index`, in that order (readings follow their batch)."""
        counts = self.counts[index]
        starts = self.offsets[:-1][index]
        offsets = offsets_from_counts(counts)
        reading_index = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
        per_reading = {"t_ms", "light", "accel", "gyro", "pressure"}
        values: dict[str, Any] = {}
        for f in fields(self):
            arr = getattr(self, f.name)
            if f.name == "offsets":
                values[f.name] = offsets
            elif f.name in per_reading:
                values[f.name] = arr[reading_index]
            else:
                values[f.name] = arr[index]
        return BatchBlock(**values)


def offsets_from_counts(counts: I64) -> I64:
    """[0, c0, c0 + c1, ...]: where each batch's readings start, plus the total."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def concat(blocks: list[BatchBlock]) -> BatchBlock:
    """One block holding the batches of `blocks`, in order."""
    values: dict[str, Any] = {}
    for f in fields(BatchBlock):
        if f.name == "offsets":
            values[f.name] = offsets_from_counts(np.concatenate([blk.counts for blk in blocks]))
        else:
            values[f.name] = np.concatenate([getattr(blk, f.name) for blk in blocks])
    return BatchBlock(**values)


@dataclass(frozen=True)
class Summary:
    """The review §4.2 `summary` of each batch, computed from the readings it holds.

    NaN (null) readings are left out of light and pressure statistics; a batch whose light
    readings are all NaN has NaN avg/min/max. `accel_rms` is the RMS of the dynamic part
    of acceleration, |a| - g (m/s^2); `gyro_rms` is
    the RMS of |omega| (rad/s). The review's example (accel_rms 0.98 beside readings of
    magnitude 9.8) fits neither m/s^2 nor g units exactly; see docs/payload.md.
    """

    count: I64
    light_avg: F64
    light_min: F64
    light_max: F64
    accel_rms: F64
    gyro_rms: F64
    pressure_avg: F64
    pressure_min: F64
    pressure_max: F64


def _nan_stats(values: F64, offsets: I64) -> tuple[F64, F64, F64]:
    """Per-batch mean, min and max ignoring NaN; NaN where a batch has no valid value."""
    starts = offsets[:-1]
    valid = ~np.isnan(values)
    n_valid = np.add.reduceat(valid.astype(np.int64), starts)
    total = np.add.reduceat(np.where(valid, values, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(n_valid > 0, total / np.maximum(n_valid, 1), np.nan)
    low = np.fmin.reduceat(values, starts)
    high = np.fmax.reduceat(values, starts)
    return avg, low, high


def _rms(values: F64, offsets: I64) -> F64:
    """Per-batch root mean square ignoring NaN (NaN if no valid value)."""
    avg, _, _ = _nan_stats(values * values, offsets)
    return np.sqrt(avg)


def summarize(block: BatchBlock) -> Summary:
    """Compute every batch's summary from its readings (vectorised over the block)."""
    offsets = block.offsets
    light_avg, light_min, light_max = _nan_stats(block.light.astype(np.float64), offsets)
    accel = block.accel.astype(np.float64)
    dynamic = np.sqrt(np.einsum("ij,ij->i", accel, accel)) - STANDARD_GRAVITY
    gyro = block.gyro.astype(np.float64)
    p_avg, p_min, p_max = _nan_stats(block.pressure.astype(np.float64), offsets)
    no_p = ~block.has_pressure
    for arr in (p_avg, p_min, p_max):
        arr[no_p] = np.nan
    return Summary(
        count=block.counts,
        light_avg=light_avg,
        light_min=light_min,
        light_max=light_max,
        accel_rms=_rms(dynamic, offsets),
        gyro_rms=_rms(np.sqrt(np.einsum("ij,ij->i", gyro, gyro)), offsets),
        pressure_avg=p_avg,
        pressure_min=p_min,
        pressure_max=p_max,
    )
