"""The samples of one UTC hour block for a chunk of phones, vectorised over phones: when
each sample is taken, what its phone is doing then, the seeded draws, what the sensors
read, and what the app's imperfections do to the readings. `simulator.sensors.windows`
turns them into batches; `FleetGenerator._generate` strings the steps together.

Arrays are (P, SAMPLES_PER_BLOCK) per sample (row = the chunk's phone, column = sample
of the hour, window-major: window w holds columns 30w..30w+29) unless stated; a "flat"
sample index is row * SAMPLES_PER_BLOCK + column.

Invariants: every value of a phone is a function of (seed, phone, hour) and its day
plan alone, never of the other phones of the chunk: the draws come from
`generator(seed, Stream.SAMPLES, phone, hour)` per phone, and the segment lookup is exact
whatever the row (`lookup`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from simulator.instants import (
    BATCH_INTERVAL_S,
    BATCHES_PER_BLOCK,
    BLOCK_S,
    DAY_MS,
    MS_PER_S,
    READINGS_PER_BATCH,
    SAMPLE_INTERVAL_S,
)
from simulator.seeds import Stream, generator
from simulator.sensors import models
from simulator.sensors.city import City
from simulator.sensors.imperfections import Imperfections
from simulator.sensors.personas import INDOOR, MOVING, Activity
from simulator.sensors.plan import DayPlan
from simulator.sensors.sky import Sky, sun_elevation_deg
from simulator.sensors.traits import Traits

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BLOCK_MS = BLOCK_S * MS_PER_S
BATCH_MS = BATCH_INTERVAL_S * MS_PER_S
SAMPLE_MS = SAMPLE_INTERVAL_S * MS_PER_S
SAMPLES_PER_BLOCK = BATCHES_PER_BLOCK * READINGS_PER_BATCH
N_NORMALS = 9  # per sample: light, accel x3, gyro x3, pressure, timestamp jitter
N_UNIFORMS = 6  # per sample: missing, stuck, NaN light, NaN gyro, duplicate, reorder
_T = TypeVar("_T", bound=np.generic)


@dataclass(frozen=True)
class HourGrid:
    """When the samples of UTC hour `hour` are taken.

    Each phone's 12 windows begin at `phase + k * 5 min`, the first at or after the hour's
    start, and hold 30 samples 10 s apart: `win_start` (P, 12) and `sample_ms` are true
    epoch ms. `minute` is local minutes after midnight of local day `day0`; `day1` is the
    local day of the hour's last sample (`day0` or the day after, then `minute` goes past
    1440). The days depend on the hour alone, not on the chunk's phases, so a phone's plan
    never depends on which phones share its chunk.
    """

    win_start: I64
    sample_ms: I64
    minute: F64
    day0: int
    day1: int

    @classmethod
    def of(cls, phase_ms: I64, hour: int, utc_offset_h: int) -> HourGrid:
        n = len(phase_ms)
        hour_ms = hour * BLOCK_MS
        first = -((phase_ms - hour_ms) // BATCH_MS)  # first window index in the hour
        window = first[:, None] + np.arange(BATCHES_PER_BLOCK)[None, :]
        win_start = phase_ms[:, None] + window * BATCH_MS  # (P, 12) true ms
        sample_ms = (win_start[:, :, None] + SAMPLE_MS * np.arange(READINGS_PER_BATCH)
                     ).reshape(n, SAMPLES_PER_BLOCK)
        offset_ms = utc_offset_h * BLOCK_MS
        local = sample_ms + offset_ms
        day0 = (hour_ms + offset_ms) // DAY_MS
        day1 = (hour_ms + offset_ms + BLOCK_MS + BATCH_MS - 1) // DAY_MS
        minute = (local - day0 * DAY_MS) / 60_000.0
        return cls(win_start, sample_ms, minute, day0, day1)


class Doing:
    """What each sample's phone is doing: the plan's segment in effect at the sample's
    minute (`seg`), and that segment's activity, pose, pose and light-level uniforms and
    running flag (the pose is drawn per segment, then gathered per sample)."""

    def __init__(self, plan: DayPlan, minute: F64) -> None:
        n = minute.shape[0]
        self.plan, self.minute = plan, minute
        self.seg = lookup(plan.start_min, minute)
        self.rows = np.arange(n)[:, None]
        self.act = plan.activity[self.rows, self.seg]
        self.pose_u = plan.pose_u[self.rows, self.seg]
        self.level_u = plan.level_u[self.rows, self.seg]
        self.running = plan.running[self.rows, self.seg]
        self.pose = models.pose_of(plan.activity, plan.pose_u)[self.rows, self.seg]
        self._flat_seg = self.seg.ravel()
        self._flat_row = np.repeat(np.arange(n), SAMPLES_PER_BLOCK)
        self._flat_minute = minute.ravel()

    def at(self, values: npt.NDArray[_T]) -> npt.NDArray[_T]:
        """A (P, segments) array of the plan, per sample."""
        return values[self.rows, self.seg]

    def position(self, samples: npt.NDArray[np.intp]) -> F64:
        """(x, y) at the given flat sample indices, moving linearly along the segment;
        positions are needed only outdoors (terrain) and at window ends (GPS), so only
        those are computed."""
        plan = self.plan
        r, s = self._flat_row[samples], self._flat_seg[samples]
        begin = plan.start_min[r, s]
        span = np.maximum(plan.end_min[r, s] - begin, 1e-9)
        frac = np.clip((self._flat_minute[samples] - begin) / span, 0.0, 1.0)[:, None]
        return np.asarray(plan.from_xy[r, s] + (plan.to_xy[r, s] - plan.from_xy[r, s]) * frac)


def draws(seed: int, phones: I64, hour: int) -> tuple[F32, F32]:
    """Each phone's draws for the hour from its own `Stream.SAMPLES` generator: normals
    (P, SAMPLES_PER_BLOCK + 12, N_NORMALS), per sample then per window (the GPS fix), and
    uniforms (P, SAMPLES_PER_BLOCK, N_UNIFORMS) for the imperfection events."""
    n = len(phones)
    # Normals cost ~10 ns each here, uniforms ~2 ns: events are drawn as uniforms.
    z = np.empty((n, SAMPLES_PER_BLOCK + BATCHES_PER_BLOCK, N_NORMALS), dtype=np.float32)
    ev = np.empty((n, SAMPLES_PER_BLOCK, N_UNIFORMS), dtype=np.float32)
    for row, phone in enumerate(phones.tolist()):
        rng = generator(seed, Stream.SAMPLES, phone, hour)
        rng.standard_normal(z.shape[1:], dtype=np.float32, out=z[row])
        rng.random(ev.shape[1:], dtype=np.float32, out=ev[row])
    return z, ev


@dataclass
class Readings:
    """What the sensors read at each sample: light (lux), accel and gyro (P, samples, 3)
    quantised to the sensor's resolution, pressure (hPa); float32."""

    light: F32
    accel: F32
    gyro: F32
    pressure: F32


def read_sensors(city: City, sky: Sky, traits: Traits, grid: HourGrid, doing: Doing,
                 zs: F32) -> Readings:
    """The sensors' readings, before imperfections; `zs` are the per-sample normals."""
    # The sky changes slowly: evaluate it at window edges, interpolate within.
    edges_s = (grid.win_start[:, :, None] + BATCH_MS * np.arange(2)) / 1000.0  # (P, 12, 2)
    light = _light(city, sky, traits, doing, edges_s, zs[..., 0])
    accel32, gyro32 = _motion(traits, doing, zs)
    pressure = _pressure(city, sky, traits, doing, edges_s, zs[..., 7])
    return Readings(light, accel32, gyro32, pressure)


def _light(city: City, sky: Sky, traits: Traits, doing: Doing, edges_s: F64, z: F32) -> F32:
    """Light: the scene (the sun's elevation and the clouds outdoors, the activity, pose and
    light level of the place) through the phone's light sensor."""
    edge_elevation = sun_elevation_deg(edges_s, city.lat, city.lon)
    elevation = within_windows(edge_elevation)
    outdoor = within_windows(models.outdoor_lux(edge_elevation, sky.cloud_cover(edges_s)))
    scene = models.scene_lux(doing.act, doing.pose, doing.level_u, outdoor, elevation)
    return models.sensor_lux(scene, traits.light_gain[:, None], traits.light_max_lux[:, None],
                             traits.light_resolution[:, None], z)


def _motion(traits: Traits, doing: Doing, zs: F32) -> tuple[F32, F32]:
    """Accelerometer (gravity in the pose's frame plus motion and sensor noise, through the
    phone's scale and bias) and gyroscope (bias plus motion and noise), quantised."""
    moving = np.isin(doing.act, MOVING)
    grav = models.gravity(doing.pose, doing.pose_u, doing.minute, moving)
    sig_a, sig_g = models.motion_sigma(doing.act, doing.pose, doing.running)
    accel_sd = np.sqrt(sig_a**2 + models.ACCEL_NOISE**2)[..., None]
    accel = (grav + accel_sd * zs[..., 1:4]) * traits.accel_scale[:, None, None] + \
        traits.accel_bias[:, None, :]
    gyro_sd = np.sqrt(sig_g**2 + models.GYRO_NOISE**2)[..., None]
    gyro = traits.gyro_bias[:, None, :] + gyro_sd * zs[..., 4:7]
    accel32 = models.quantise(accel, models.ACCEL_RESOLUTION)
    gyro32 = models.quantise(gyro, models.GYRO_RESOLUTION)
    return accel32, gyro32


def _pressure(city: City, sky: Sky, traits: Traits, doing: Doing, edges_s: F64,
              z: F32) -> F32:
    """Barometer: the weather's sea-level pressure at the phone's altitude (indoors the
    floor of the building on its ground, outdoors the terrain where it is), plus the
    phone's offset and noise (larger in a vehicle)."""
    indoor = np.isin(doing.act, INDOOR)
    altitude = city.elevation_m + doing.at(doing.plan.ground_m) + \
        doing.at(doing.plan.floor) * models.STOREY_M + 1.0
    outside = np.flatnonzero(~indoor.ravel())
    altitude.ravel()[outside] = city.elevation_m + sky.ground_m(doing.position(outside)) + 1.2
    p_sd = np.where(doing.act == Activity.VEHICLE, 0.05, 0.013)
    sea_level = within_windows(sky.sea_level_pressure_hpa(edges_s))
    return (models.pressure_hpa(sea_level, altitude)
            + traits.pressure_offset_hpa[:, None] + p_sd * z).astype(np.float32)


def add_glitches(readings: Readings, ev: F32, imp: Imperfections) -> None:
    """Stuck readings (light and pressure repeat the sample before; never the hour's
    first) and NaN light and gyro x, where the event uniforms fall under the rates.
    Replaces light and pressure, and writes into gyro."""
    stuck = ev[..., 1] < imp.stuck_probability
    stuck[:, 0] = False
    readings.light = np.where(stuck, np.roll(readings.light, 1, axis=1), readings.light)
    readings.pressure = np.where(stuck, np.roll(readings.pressure, 1, axis=1),
                                 readings.pressure)
    readings.light[ev[..., 2] < imp.nan_probability] = np.nan
    readings.gyro[ev[..., 3] < imp.nan_probability, 0] = np.nan


def multiplicity(killed: npt.NDArray[np.bool_], ev: F32, imp: Imperfections) -> I64:
    """How many times each sample is uploaded: 0 if lost (missing, or taken while the app
    was killed or before a kill in the same window), 2 if duplicated, else 1."""
    n = killed.shape[0]
    lost = _lost_with_kill(killed.reshape(n, BATCHES_PER_BLOCK, READINGS_PER_BATCH))
    present = ~(lost.reshape(n, -1) | (ev[..., 0] < imp.missing_probability))
    counts: I64 = present.astype(np.int64) * (1 + (ev[..., 4] < imp.duplicate_probability))
    return counts


def reading_times(grid: HourGrid, traits: Traits, imp: Imperfections, z: F32) -> I64:
    """The phone's timestamp of each sample: true time plus its clock skew and a jitter
    (normal, `jitter_ms` wide, rounded to whole ms)."""
    jitter = np.round(imp.jitter_ms * z.astype(np.float64)).astype(np.int64)
    times: I64 = grid.sample_ms + traits.clock_skew_ms[:, None] + jitter
    return times


_FRACTION = np.arange(READINGS_PER_BATCH) / READINGS_PER_BATCH


def within_windows(edges: F64) -> F64:
    """(P, windows, 2) values at window start and end -> (P, samples), linear inside."""
    start, end = edges[..., :1], edges[..., 1:]
    inside = start + (end - start) * _FRACTION
    return inside.reshape(edges.shape[0], -1)


_KEY_UNITS_PER_MIN = 1_000_000  # lookup keys in micro-minutes (60 us), as exact integers
_KEY_CAP_MIN = 4_000.0  # beyond two days: padding


def lookup(start_min: F64, minute: F64) -> I64:
    """Index of the segment of each row in effect at each minute (rows searched apart).

    One sorted search over all rows at once, on integer keys: exact whatever the row, so
    a phone's lookup does not depend on its position in the chunk (float keys offset
    by row lose precision as the offset grows).
    """
    rows, width = start_min.shape
    span = np.int64(int(2 * _KEY_CAP_MIN * _KEY_UNITS_PER_MIN))
    row_key = span * np.arange(rows, dtype=np.int64)[:, None]

    def key(values: F64) -> I64:
        scaled = np.round(np.minimum(values, _KEY_CAP_MIN) * _KEY_UNITS_PER_MIN)
        return np.asarray(scaled.astype(np.int64) + row_key)

    found = np.searchsorted(key(start_min).ravel(), key(minute).ravel(), side="right") - 1
    local = found - width * np.repeat(np.arange(rows), minute.shape[1])
    return np.asarray(local.reshape(minute.shape).clip(0, width - 1), dtype=np.int64)


def _lost_with_kill(killed: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """(P, windows, readings): readings lost to a kill: those taken while killed and
    those before it in the same window (the in-memory batch dies with the process)."""
    after = np.flip(np.logical_or.accumulate(np.flip(killed, axis=-1), axis=-1), axis=-1)
    return after
