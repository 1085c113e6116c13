"""From one hour block's samples to its batches: which 5-minute windows become batches,
the readings each uploads in order, and each batch's location fix and battery, as
`FleetGenerator._generate` assembles them into a `BatchBlock`.

Batches are in phone-major, window order (the generator sorts them by time later). A
window is kept when it starts in the configured [start, end) and holds at least one
reading; its readings are its samples, each `multiplicity` times (0 lost, 2 duplicated),
with an occasional swap of neighbours inside the batch. Location and battery are those
at the window's last sample, whether or not that sample was uploaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.instants import BATCHES_PER_BLOCK, READINGS_PER_BATCH
from simulator.sensors.batch import offsets_from_counts
from simulator.sensors.city import City
from simulator.sensors.personas import INDOOR
from simulator.sensors.samples import (
    F32,
    F64,
    I64,
    N_NORMALS,
    SAMPLES_PER_BLOCK,
    Doing,
)

BATTERY_STEP_MIN = 5


@dataclass(frozen=True)
class Kept:
    """The windows that become batches, B of them. `keep` (P * 12) marks them among all
    windows (flat, phone-major); per batch: `row` (the phone's row in the chunk), `last`
    (the flat index of its last sample), `starts` (true window start, ms). `reading` is
    the flat sample index of every uploaded reading, batch after batch as `offsets`
    (B + 1) delimits them."""

    keep: npt.NDArray[np.bool_]
    row: I64
    last: I64
    starts: I64
    reading: I64
    offsets: I64


def kept_windows(multiplicity: I64, win_start: I64, start_ms: int, end_ms: int,
                 reorder_u: F32, reorder_probability: float) -> Kept:
    """Keep windows inside [start, end) that hold at least one reading; `reorder_u` are
    the per-sample uniforms (P, samples) of the reorder event."""
    n = multiplicity.shape[0]
    counts = multiplicity.reshape(n, BATCHES_PER_BLOCK, READINGS_PER_BATCH).sum(axis=2)
    keep = (counts > 0) & (win_start >= start_ms) & (win_start < end_ms)
    keep_flat = keep.ravel()
    mult = multiplicity.reshape(-1, READINGS_PER_BATCH)[keep_flat].ravel()
    sample_index = np.arange(n * SAMPLES_PER_BLOCK).reshape(
        -1, READINGS_PER_BATCH)[keep_flat].ravel()
    reading = np.repeat(sample_index, mult)
    offsets = offsets_from_counts(counts.ravel()[keep_flat])
    reading = reorder(reading, offsets, reorder_u.reshape(-1)[reading], reorder_probability)
    row = np.repeat(np.arange(n), BATCHES_PER_BLOCK)[keep_flat]
    last = (np.arange(n * BATCHES_PER_BLOCK) * READINGS_PER_BATCH
            + READINGS_PER_BATCH - 1)[keep_flat]
    starts = win_start.ravel()[keep_flat]
    return Kept(keep_flat, row, last, starts, reading, offsets)


def reorder(reading: I64, offsets: I64, u: F32, probability: float) -> I64:
    """Swap a reading with its successor in the same batch where `u < probability`."""
    if probability <= 0 or reading.size < 2:
        return reading
    flag = u < probability
    flag[-1] = False
    batch_end = np.zeros(reading.size, dtype=bool)
    batch_end[offsets[1:] - 1] = True
    flag &= ~batch_end
    flag[1:] &= ~flag[:-1]  # no overlapping swaps
    pos = np.flatnonzero(flag)
    out = reading.copy()
    out[pos], out[pos + 1] = reading[pos + 1], reading[pos]
    return out


def fixes(city: City, doing: Doing, kept: Kept, zb: F32) -> tuple[F64, F64, F64]:
    """Latitude, longitude and accuracy (m) of each batch's GPS fix: the true position at
    the window's last sample plus a normal error; the accuracy is log-normal around 20 m
    indoors and 5 m elsewhere. `zb` are the per-window normals (P, 12, N_NORMALS)."""
    gps = zb.reshape(-1, N_NORMALS)[kept.keep]  # zb is small: the copy is cheap
    flat_act = doing.act.ravel()[kept.last]
    accuracy = np.exp(np.where(np.isin(flat_act, INDOOR),
                               np.log(20.0) + 0.5 * gps[:, 0], np.log(5.0) + 0.35 * gps[:, 0]))
    true_xy = doing.position(kept.last)
    fix_xy = true_xy + (accuracy / 1.515)[:, None] * gps[:, 1:3]
    lat, lon = city.to_latlon(fix_xy[:, 0], fix_xy[:, 1])
    return lat, lon, accuracy


def batteries(battery: F64, doing: Doing, kept: Kept
              ) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Battery percent (rounded) and charging flag of each batch at its window's last
    sample, from the day's battery grid (one value per BATTERY_STEP_MIN, (P, steps)) and
    the segment then in effect."""
    end_minute = doing.minute.ravel()[kept.last]
    grid = np.minimum((end_minute // BATTERY_STEP_MIN).astype(np.int64),
                      battery.shape[1] - 1)
    level = np.round(battery[kept.row, grid]).astype(np.int64)
    charging = doing.plan.charging[kept.row, doing.seg.ravel()[kept.last]]
    return level, charging
