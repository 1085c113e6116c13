"""A fleet of simulated phones, generated in UTC hour blocks, vectorised over phones.

Invariants:
- A phone's stream is a pure function of (seed, phone index, time): phone i's batches
  are byte-identical whether it is generated alone, among 10,000 phones, in any phone
  chunking or any time window. Traits come from `Stream.PHONE_TRAITS`, the day plan from
  `Stream.DAY_PLAN` keyed by local day, per-sample noise and imperfections from
  `Stream.SAMPLES` keyed by absolute UTC hour, the weather from `Stream.CITY`.
- Each phone samples every 10 s and closes a batch every 5 minutes on its own grid:
  window k starts at `phase + k * 300 s` (epoch-aligned), so a UTC hour holds exactly 12
  windows of each phone. `seq` is the window index counted from 2020-01-01, so it too is
  a function of time; windows with no reading (the app was killed) are skipped and leave
  a gap the checkers know about from the seed.
- Output is in time order: true window start, then phone index.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from simulator.errors import UsageError
from simulator.instants import (
    BATCH_INTERVAL_S,
    BATCHES_PER_BLOCK,
    BLOCK_S,
    DAY_S,
    MS_PER_S,
    READINGS_PER_BATCH,
    SAMPLE_INTERVAL_S,
)
from simulator.seeds import Stream, check_seed, generator, uniform_hash
from simulator.sensors import geohash, ids, models
from simulator.sensors.batch import BatchBlock, concat, offsets_from_counts
from simulator.sensors.city import BERLIN, CITIES, City
from simulator.sensors.imperfections import Imperfections
from simulator.sensors.personas import (
    DEFAULT_MIX,
    INDOOR,
    MOVING,
    PERSONAS,
    Activity,
    rhythm_tables,
)
from simulator.sensors.plan import DayPlan, plan_day
from simulator.sensors.sky import Sky, sun_elevation_deg
from simulator.sensors.traits import Traits, draw_traits

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BLOCK_MS = BLOCK_S * MS_PER_S
BATCH_MS = BATCH_INTERVAL_S * MS_PER_S
SAMPLE_MS = SAMPLE_INTERVAL_S * MS_PER_S
DAY_MS = DAY_S * MS_PER_S
SAMPLES_PER_BLOCK = BATCHES_PER_BLOCK * READINGS_PER_BATCH
SEQ_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z: seq counts windows from here
BATTERY_STEP_MIN = 5
BATTERY_LOOKBACK_DAYS = 3
N_NORMALS = 9  # per sample: light, accel x3, gyro x3, pressure, timestamp jitter
N_UNIFORMS = 6  # per sample: missing, stuck, NaN light, NaN gyro, duplicate, reorder


@dataclass(frozen=True)
class FleetConfig:
    """What to generate: `phones` phones from `start_ms` for `hours` hours."""

    seed: int
    phones: int
    start_ms: int
    hours: float
    city: City = BERLIN
    persona_mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    barometer_share: float = 0.7
    imperfections: Imperfections = field(default_factory=Imperfections)

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.phones < 1:
            raise UsageError(f"--phones must be at least 1, got {self.phones}")
        if not self.hours > 0:
            raise UsageError(f"--hours must be positive, got {self.hours}")
        if self.start_ms < SEQ_EPOCH_MS:
            raise UsageError("--start must be 2020-01-01 or later (sequence numbers count "
                             "5-minute windows from then)")
        unknown = set(self.persona_mix) - set(PERSONAS)
        if unknown:
            raise UsageError(f"unknown persona(s) {sorted(unknown)}; known: {sorted(PERSONAS)}")
        if not self.persona_mix or min(self.persona_mix.values()) < 0 or sum(
                self.persona_mix.values()) <= 0:
            raise UsageError("persona mix weights must be >= 0 with a positive sum")
        if not 0 <= self.barometer_share <= 1:
            raise UsageError(f"barometer share must be in [0, 1], got {self.barometer_share}")

    @property
    def end_ms(self) -> int:
        """End of the generated interval (exclusive), in true time."""
        return self.start_ms + round(self.hours * BLOCK_MS)

    def phone_chunks(self, size: int) -> list[range]:
        """The fleet's phones in contiguous chunks of at most `size`."""
        return [range(s, min(s + size, self.phones)) for s in range(0, self.phones, size)]

    @property
    def hour_blocks(self) -> range:
        """Absolute UTC hour indices whose windows fall in [start, end)."""
        return range(self.start_ms // BLOCK_MS, -(-self.end_ms // BLOCK_MS))


@dataclass
class _Chunk:
    """Per-chunk state reused across hour blocks: traits, ids and recent day plans."""

    traits: Traits
    device_id: npt.NDArray[np.bytes_]
    user_id: npt.NDArray[np.bytes_]
    plans: OrderedDict[int, DayPlan] = field(default_factory=OrderedDict)
    batteries: OrderedDict[int, F64] = field(default_factory=OrderedDict)


class FleetGenerator:
    """Generates the fleet of `config`; see the module docstring for the invariants."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.persona_names = tuple(config.persona_mix)
        self.persona_weights = np.array([config.persona_mix[n] for n in self.persona_names])
        self.tables = rhythm_tables(self.persona_names)
        self.sky = Sky.seeded(config.seed, list(CITIES).index(config.city.name)
                              if config.city.name in CITIES else len(CITIES), config.city.lon)
        self._chunks: dict[tuple[int, int], _Chunk] = {}

    # -- public API -----------------------------------------------------------------

    def block(self, phones: range, hour: int) -> BatchBlock:
        """Batches of `phones` whose true window starts in UTC hour `hour` and in the
        configured interval, ordered by (true window start, phone)."""
        if phones.step != 1 or phones.start < 0 or phones.stop > self.config.phones:
            raise UsageError(f"phones {phones} are not a contiguous part of the fleet")
        chunk = self._chunk(phones)
        blk = self._generate(chunk, hour)
        order = np.lexsort((blk.phone, blk.order_ms))
        return blk.take(order)

    def iter_blocks(self, chunk_phones: int = 1000) -> Iterator[BatchBlock]:
        """The whole fleet, one hour block at a time, each in time order."""
        for hour in self.config.hour_blocks:
            parts = [self._generate(self._chunk(chunk), hour)
                     for chunk in self.config.phone_chunks(chunk_phones)]
            blk = concat(parts)
            yield blk.take(np.lexsort((blk.phone, blk.order_ms)))

    # -- internals ------------------------------------------------------------------

    def _chunk(self, phones: range) -> _Chunk:
        key = (phones.start, phones.stop)
        if key not in self._chunks:
            idx = np.arange(phones.start, phones.stop, dtype=np.int64)
            traits = draw_traits(self.config.seed, idx, self.config.city, self.persona_names,
                                 self.persona_weights, self.config.barometer_share,
                                 ground_m=self.sky.ground_m)
            self._chunks[key] = _Chunk(traits, ids.device_ids(self.config.seed, idx),
                                       ids.user_ids(self.config.seed, idx))
        return self._chunks[key]

    def _plan(self, chunk: _Chunk, day: int) -> DayPlan:
        """The plan of local day `day`, cached (the battery's look-back days and two more)."""
        if day not in chunk.plans:
            chunk.plans[day] = plan_day(self.config.seed, chunk.traits, self.tables,
                                        self.persona_names, day)
            while len(chunk.plans) > BATTERY_LOOKBACK_DAYS + 2:
                chunk.plans.popitem(last=False)
        return chunk.plans[day]

    def _day(self, chunk: _Chunk, day: int) -> tuple[DayPlan, F64]:
        """Plan and battery grid of local day `day`.

        The battery enters the day at the level the previous days leave it at: the
        days from `day - BATTERY_LOOKBACK_DAYS` on are integrated from a seeded level.
        So it is a pure function of the seed (any day can be generated on its own), and
        continuous at midnight for every phone that charged to full or ran flat in the
        lookback days, which overnight charging makes nearly all of them.
        """
        if day not in chunk.batteries:
            first = self._plan(chunk, day - BATTERY_LOOKBACK_DAYS)
            carried = 25.0 + 60.0 * first.day_u[:, 0]
            for before in range(day - BATTERY_LOOKBACK_DAYS, day):
                carried = self._battery(self._plan(chunk, before), carried)[:, -1]
            plan = self._plan(chunk, day)
            chunk.batteries[day] = self._battery(plan, carried)
            while len(chunk.batteries) > 3:
                chunk.batteries.popitem(last=False)
        return self._plan(chunk, day), chunk.batteries[day]

    def _battery(self, plan: DayPlan, start: F64) -> F64:
        grid = np.arange(0, 1440, BATTERY_STEP_MIN) + BATTERY_STEP_MIN / 2
        seg = _lookup(plan.start_min, np.broadcast_to(grid, (plan.start_min.shape[0],
                                                              grid.size)))
        rows = np.arange(seg.shape[0])[:, None]
        act = plan.activity[rows, seg]
        pose = models.pose_of(act, plan.pose_u[rows, seg])
        rate = models.battery_rate_pct_h(act, pose, plan.running[rows, seg])
        return models.integrate_battery(start, rate, plan.charging[rows, seg],
                                        BATTERY_STEP_MIN / 60.0)

    def _generate(self, chunk: _Chunk, hour: int) -> BatchBlock:
        cfg, tr = self.config, chunk.traits
        n = len(tr.phone)
        hour_ms = hour * BLOCK_MS
        first = -((tr.phase_ms - hour_ms) // BATCH_MS)  # first window index in the hour
        window = first[:, None] + np.arange(BATCHES_PER_BLOCK)[None, :]
        win_start = tr.phase_ms[:, None] + window * BATCH_MS  # (P, 12) true ms
        sample_ms = (win_start[:, :, None] + SAMPLE_MS * np.arange(READINGS_PER_BATCH)
                     ).reshape(n, SAMPLES_PER_BLOCK)
        offset_ms = cfg.city.utc_offset_h * BLOCK_MS
        local = sample_ms + offset_ms
        # Decided by the hour alone (not by this chunk's phases), so that a phone's plan
        # never depends on which phones share its chunk.
        day0 = (hour_ms + offset_ms) // DAY_MS
        day1 = (hour_ms + offset_ms + BLOCK_MS + BATCH_MS - 1) // DAY_MS
        plan, battery = self._day(chunk, day0)
        if day1 != day0:
            plan, battery = _join_days(plan, battery, *self._day(chunk, day1))
        minute = (local - day0 * DAY_MS) / 60_000.0

        seg = _lookup(plan.start_min, minute)
        rows = np.arange(n)[:, None]
        act = plan.activity[rows, seg]
        pose_u = plan.pose_u[rows, seg]
        level_u = plan.level_u[rows, seg]
        running = plan.running[rows, seg]
        pose = models.pose_of(plan.activity, plan.pose_u)[rows, seg]  # per segment, then gather

        flat_seg = seg.ravel()
        flat_row = np.repeat(np.arange(n), SAMPLES_PER_BLOCK)
        flat_minute = minute.ravel()

        def position(samples: npt.NDArray[np.intp]) -> F64:
            """(x, y) at the given flat sample indices; positions are needed only
            outdoors (terrain) and at window ends (GPS), so only those are computed."""
            r, s = flat_row[samples], flat_seg[samples]
            begin = plan.start_min[r, s]
            span = np.maximum(plan.end_min[r, s] - begin, 1e-9)
            frac = np.clip((flat_minute[samples] - begin) / span, 0.0, 1.0)[:, None]
            return np.asarray(plan.from_xy[r, s] + (plan.to_xy[r, s] - plan.from_xy[r, s]) * frac)

        # Normals cost ~10 ns each here, uniforms ~2 ns: events are drawn as uniforms.
        z = np.empty((n, SAMPLES_PER_BLOCK + BATCHES_PER_BLOCK, N_NORMALS), dtype=np.float32)
        ev = np.empty((n, SAMPLES_PER_BLOCK, N_UNIFORMS), dtype=np.float32)
        for row, phone in enumerate(tr.phone.tolist()):
            rng = generator(cfg.seed, Stream.SAMPLES, phone, hour)
            rng.standard_normal(z.shape[1:], dtype=np.float32, out=z[row])
            rng.random(ev.shape[1:], dtype=np.float32, out=ev[row])
        zs, zb = z[:, :SAMPLES_PER_BLOCK], z[:, SAMPLES_PER_BLOCK:]

        # Light
        # The sky changes slowly: evaluate it at window edges, interpolate within.
        edges_s = (win_start[:, :, None] + BATCH_MS * np.arange(2)) / 1000.0  # (P, 12, 2)
        edge_elevation = sun_elevation_deg(edges_s, cfg.city.lat, cfg.city.lon)
        elevation = _within_windows(edge_elevation)
        outdoor = _within_windows(models.outdoor_lux(edge_elevation,
                                                     self.sky.cloud_cover(edges_s)))
        scene = models.scene_lux(act, pose, level_u, outdoor, elevation)
        light = models.sensor_lux(scene, tr.light_gain[:, None], tr.light_max_lux[:, None],
                                  tr.light_resolution[:, None], zs[..., 0])
        # Motion
        moving = np.isin(act, MOVING)
        grav = models.gravity(pose, pose_u, minute, moving)
        sig_a, sig_g = models.motion_sigma(act, pose, running)
        accel_sd = np.sqrt(sig_a**2 + models.ACCEL_NOISE**2)[..., None]
        accel = (grav + accel_sd * zs[..., 1:4]) * tr.accel_scale[:, None, None] + \
            tr.accel_bias[:, None, :]
        gyro_sd = np.sqrt(sig_g**2 + models.GYRO_NOISE**2)[..., None]
        gyro = tr.gyro_bias[:, None, :] + gyro_sd * zs[..., 4:7]
        accel32 = models.quantise(accel, models.ACCEL_RESOLUTION)
        gyro32 = models.quantise(gyro, models.GYRO_RESOLUTION)
        # Pressure
        indoor = np.isin(act, INDOOR)
        altitude = cfg.city.elevation_m + plan.ground_m[rows, seg] + \
            plan.floor[rows, seg] * models.STOREY_M + 1.0
        outside = np.flatnonzero(~indoor.ravel())
        altitude.ravel()[outside] = cfg.city.elevation_m + self.sky.ground_m(
            position(outside)) + 1.2
        p_sd = np.where(act == Activity.VEHICLE, 0.05, 0.013)
        sea_level = _within_windows(self.sky.sea_level_pressure_hpa(edges_s))
        pressure = (models.pressure_hpa(sea_level, altitude)
                    + tr.pressure_offset_hpa[:, None] + p_sd * zs[..., 7]).astype(np.float32)

        # Imperfections
        imp = cfg.imperfections
        stuck = ev[..., 1] < imp.stuck_probability
        stuck[:, 0] = False
        light = np.where(stuck, np.roll(light, 1, axis=1), light)
        pressure = np.where(stuck, np.roll(pressure, 1, axis=1), pressure)
        light[ev[..., 2] < imp.nan_probability] = np.nan
        gyro32[ev[..., 3] < imp.nan_probability, 0] = np.nan
        killed = self._killed(tr.phone, minute, day0, day1)
        lost = _lost_with_kill(killed.reshape(n, BATCHES_PER_BLOCK, READINGS_PER_BATCH))
        present = ~(lost.reshape(n, -1) | (ev[..., 0] < imp.missing_probability))
        multiplicity = present.astype(np.int64) * (1 + (ev[..., 4] < imp.duplicate_probability))
        jitter = np.round(imp.jitter_ms * zs[..., 8].astype(np.float64)).astype(np.int64)
        t_ms = sample_ms + tr.clock_skew_ms[:, None] + jitter

        # Batches: keep windows inside [start, end) that hold at least one reading.
        counts = multiplicity.reshape(n, BATCHES_PER_BLOCK, READINGS_PER_BATCH).sum(axis=2)
        keep = (counts > 0) & (win_start >= cfg.start_ms) & (win_start < cfg.end_ms)
        keep_flat = keep.ravel()
        mult = multiplicity.reshape(-1, READINGS_PER_BATCH)[keep_flat].ravel()
        sample_index = np.arange(n * SAMPLES_PER_BLOCK).reshape(
            -1, READINGS_PER_BATCH)[keep_flat].ravel()
        reading = np.repeat(sample_index, mult)
        offsets = offsets_from_counts(counts.ravel()[keep_flat])
        reading = _reorder(reading, offsets, ev[..., 5].reshape(-1)[reading],
                           imp.reorder_probability)

        phone_of_batch = np.repeat(np.arange(n), BATCHES_PER_BLOCK)[keep_flat]
        batch_of_sample_last = (np.arange(n * BATCHES_PER_BLOCK) * READINGS_PER_BATCH
                                + READINGS_PER_BATCH - 1)[keep_flat]
        starts = win_start.ravel()[keep_flat]
        seq = (starts - tr.phase_ms[phone_of_batch] - SEQ_EPOCH_MS) // BATCH_MS

        # Location and battery at the end of each window.
        last = batch_of_sample_last
        flat_act = act.ravel()[last]
        gps = zb.reshape(-1, N_NORMALS)[keep_flat]  # zb is small: the copy is cheap
        accuracy = np.exp(np.where(np.isin(flat_act, INDOOR),
                                   np.log(20.0) + 0.5 * gps[:, 0], np.log(5.0) + 0.35 * gps[:, 0]))
        true_xy = position(last)
        fix_xy = true_xy + (accuracy / 1.515)[:, None] * gps[:, 1:3]
        lat, lon = cfg.city.to_latlon(fix_xy[:, 0], fix_xy[:, 1])
        end_minute = minute.ravel()[last]
        grid = np.minimum((end_minute // BATTERY_STEP_MIN).astype(np.int64),
                          battery.shape[1] - 1)
        level = np.round(battery[phone_of_batch, grid]).astype(np.int64)
        charging = plan.charging[phone_of_batch, seg.ravel()[last]]

        return BatchBlock(
            phone=tr.phone[phone_of_batch],
            seq=seq,
            device_id=chunk.device_id[phone_of_batch],
            user_id=chunk.user_id[phone_of_batch],
            batch_id=ids.batch_ids(cfg.seed, tr.phone[phone_of_batch], seq),
            order_ms=starts,
            period_start_ms=starts + tr.clock_skew_ms[phone_of_batch],
            period_end_ms=starts + tr.clock_skew_ms[phone_of_batch] + BATCH_MS,
            offsets=offsets,
            t_ms=t_ms.ravel()[reading],
            light=light.ravel()[reading],
            accel=accel32.reshape(-1, 3)[reading],
            gyro=gyro32.reshape(-1, 3)[reading],
            pressure=pressure.ravel()[reading],
            has_pressure=tr.has_barometer[phone_of_batch],
            lat=lat,
            lon=lon,
            accuracy_m=accuracy.astype(np.float32),
            geohash=geohash.encode(lat, lon, 6),
            battery_level=level,
            is_charging=charging,
        )

    def _killed(self, phones: I64, minute: F64, day0: int, day1: int
                ) -> npt.NDArray[np.bool_]:
        """Samples taken while the app was killed: Poisson kills per phone and local day,
        uniform start, log-normal downtime; the day before counts too, so a kill late at
        night reaches past midnight. Drawn with `uniform_hash`, keyed by (phone, day, k)."""
        imp = self.config.imperfections
        seed = self.config.seed
        killed = np.zeros(minute.shape, dtype=bool)
        if imp.kills_per_day <= 0:
            return killed
        for day in range(day0 - 1, day1 + 1):
            base = 1440.0 * (day - day0)
            count = stats.poisson.ppf(uniform_hash(seed, Stream.KILLS, phones, day, 0),
                                      imp.kills_per_day)
            for k in range(int(count.max())):
                begin = base + 1440.0 * uniform_hash(seed, Stream.KILLS, phones, day, 2 * k + 1)
                u = np.clip(uniform_hash(seed, Stream.KILLS, phones, day, 2 * k + 2),
                            1e-9, 1 - 1e-9)
                end = begin + imp.kill_median_min * np.exp(special.ndtri(u))
                killed |= (count > k)[:, None] & (minute >= begin[:, None]) & (
                    minute < end[:, None])
        return killed


_FRACTION = np.arange(READINGS_PER_BATCH) / READINGS_PER_BATCH


def _within_windows(edges: F64) -> F64:
    """(P, windows, 2) values at window start and end -> (P, samples), linear inside."""
    start, end = edges[..., :1], edges[..., 1:]
    inside = start + (end - start) * _FRACTION
    return inside.reshape(edges.shape[0], -1)


_KEY_UNITS_PER_MIN = 1_000_000  # lookup keys in micro-minutes (60 us), as exact integers
_KEY_CAP_MIN = 4_000.0  # beyond two days: padding


def _lookup(start_min: F64, minute: F64) -> I64:
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


def _reorder(reading: I64, offsets: I64, u: npt.NDArray[np.float32],
             probability: float) -> I64:
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


def _join_days(plan_a: DayPlan, battery_a: F64, plan_b: DayPlan, battery_b: F64
               ) -> tuple[DayPlan, F64]:
    """Two consecutive local days as one plan (minutes of the second day + 1440)."""
    start_a = np.minimum(plan_a.start_min, 1440.0)
    joined = DayPlan(
        start_min=np.concatenate([start_a, plan_b.start_min + 1440.0], axis=1),
        end_min=np.concatenate([plan_a.end_min, plan_b.end_min + 1440.0], axis=1),
        activity=np.concatenate([plan_a.activity, plan_b.activity], axis=1),
        from_xy=np.concatenate([plan_a.from_xy, plan_b.from_xy], axis=1),
        to_xy=np.concatenate([plan_a.to_xy, plan_b.to_xy], axis=1),
        floor=np.concatenate([plan_a.floor, plan_b.floor], axis=1),
        ground_m=np.concatenate([plan_a.ground_m, plan_b.ground_m], axis=1),
        running=np.concatenate([plan_a.running, plan_b.running], axis=1),
        pose_u=np.concatenate([plan_a.pose_u, plan_b.pose_u], axis=1),
        level_u=np.concatenate([plan_a.level_u, plan_b.level_u], axis=1),
        charging=np.concatenate([plan_a.charging, plan_b.charging], axis=1),
        day_u=plan_a.day_u,  # day-level draws are read per day (_day), not from a join
    )
    return joined, np.concatenate([battery_a[:, :-1], battery_b], axis=1)
