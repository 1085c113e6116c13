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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from simulator.errors import UsageError
from simulator.seeds import Stream, check_seed, uniform_hash
from simulator.sensors import geohash, ids, models
from simulator.sensors.batch import BatchBlock, concat
from simulator.sensors.city import BERLIN, CITIES, City
from simulator.sensors.imperfections import Imperfections
from simulator.sensors.personas import DEFAULT_MIX, PERSONAS, rhythm_tables
from simulator.sensors.plan import DayPlan, plan_day
from simulator.sensors.samples import (
    BATCH_MS,
    BLOCK_MS,
    F64,
    I64,
    SAMPLES_PER_BLOCK,
    Doing,
    HourGrid,
    add_glitches,
    draws,
    lookup,
    multiplicity,
    read_sensors,
    reading_times,
)
from simulator.sensors.sky import Sky
from simulator.sensors.traits import Traits, draw_traits
from simulator.sensors.windows import BATTERY_STEP_MIN, batteries, fixes, kept_windows

MAX_CHUNKS = 256  # sets of phones whose day plans are kept (a fleet run uses one per piece)
SEQ_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z: seq counts windows from here
BATTERY_LOOKBACK_DAYS = 3


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
        self._chunks: dict[bytes, _Chunk] = {}  # by the phones' indices, oldest first
        self.max_chunks = MAX_CHUNKS

    # -- public API -----------------------------------------------------------------

    def block(self, phones: range | Sequence[int], hour: int) -> BatchBlock:
        """Batches of `phones` (a range of the fleet's indices, or any ascending set of
        them: a load-test worker holds scattered phones) whose true window starts in UTC
        hour `hour` and in the configured interval, ordered by (true window start,
        phone). The phones generated together keep their day plans for the next hours,
        so asking for the same set hour after hour is the cheap way."""
        idx = np.asarray(phones, dtype=np.int64)
        if idx.ndim != 1 or not idx.size or idx[0] < 0 or idx[-1] >= self.config.phones or (
                idx.size > 1 and not bool(np.all(np.diff(idx) > 0))):
            raise UsageError(f"phones {_shown(phones)} are not an ascending set of the "
                             f"fleet's {self.config.phones} phones")
        chunk = self._chunk(idx)
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

    def _chunk(self, phones: range | I64) -> _Chunk:
        idx = (np.arange(phones.start, phones.stop, dtype=np.int64)
               if isinstance(phones, range) else phones)
        key = idx.tobytes()
        if key not in self._chunks:
            while len(self._chunks) >= self.max_chunks:  # the least recently asked for goes
                del self._chunks[next(iter(self._chunks))]
            traits = draw_traits(self.config.seed, idx, self.config.city, self.persona_names,
                                 self.persona_weights, self.config.barometer_share,
                                 ground_m=self.sky.ground_m)
            self._chunks[key] = _Chunk(traits, ids.device_ids(self.config.seed, idx),
                                       ids.user_ids(self.config.seed, idx))
        else:
            self._chunks[key] = self._chunks.pop(key)  # now the most recent
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
        seg = lookup(plan.start_min, np.broadcast_to(grid, (plan.start_min.shape[0],
                                                              grid.size)))
        rows = np.arange(seg.shape[0])[:, None]
        act = plan.activity[rows, seg]
        pose = models.pose_of(act, plan.pose_u[rows, seg])
        rate = models.battery_rate_pct_h(act, pose, plan.running[rows, seg])
        return models.integrate_battery(start, rate, plan.charging[rows, seg],
                                        BATTERY_STEP_MIN / 60.0)

    def _generate(self, chunk: _Chunk, hour: int) -> BatchBlock:
        """The batches of `chunk`'s phones whose true window starts in UTC hour `hour` and
        in the configured interval, in phone-major, window order: the hour's samples from
        the day plan (two days' joined when the hour crosses local midnight), the sensors'
        readings with their imperfections, then the windows kept as batches."""
        cfg, tr = self.config, chunk.traits
        grid = HourGrid.of(tr.phase_ms, hour, cfg.city.utc_offset_h)
        plan, battery = self._day(chunk, grid.day0)
        if grid.day1 != grid.day0:
            plan, battery = _join_days(plan, battery, *self._day(chunk, grid.day1))
        doing = Doing(plan, grid.minute)
        z, ev = draws(cfg.seed, tr.phone, hour)
        zs, zb = z[:, :SAMPLES_PER_BLOCK], z[:, SAMPLES_PER_BLOCK:]
        readings = read_sensors(cfg.city, self.sky, tr, grid, doing, zs)
        imp = cfg.imperfections
        add_glitches(readings, ev, imp)
        killed = self._killed(tr.phone, grid.minute, grid.day0, grid.day1)
        kept = kept_windows(multiplicity(killed, ev, imp), grid.win_start, cfg.start_ms,
                            cfg.end_ms, ev[..., 5], imp.reorder_probability)
        t_ms = reading_times(grid, tr, imp, zs[..., 8])
        seq = (kept.starts - tr.phase_ms[kept.row] - SEQ_EPOCH_MS) // BATCH_MS
        lat, lon, accuracy = fixes(cfg.city, doing, kept, zb)
        level, charging = batteries(battery, doing, kept)
        reading = kept.reading
        return BatchBlock(
            phone=tr.phone[kept.row],
            seq=seq,
            device_id=chunk.device_id[kept.row],
            user_id=chunk.user_id[kept.row],
            batch_id=ids.batch_ids(cfg.seed, tr.phone[kept.row], seq),
            order_ms=kept.starts,
            period_start_ms=kept.starts + tr.clock_skew_ms[kept.row],
            period_end_ms=kept.starts + tr.clock_skew_ms[kept.row] + BATCH_MS,
            offsets=kept.offsets,
            t_ms=t_ms.ravel()[reading],
            light=readings.light.ravel()[reading],
            accel=readings.accel.reshape(-1, 3)[reading],
            gyro=readings.gyro.reshape(-1, 3)[reading],
            pressure=readings.pressure.ravel()[reading],
            has_pressure=tr.has_barometer[kept.row],
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


def _shown(phones: range | Sequence[int]) -> str:
    """A set of phones in an error message, shortened."""
    if isinstance(phones, range):
        return str(phones)
    items = list(phones)
    return str(items) if len(items) <= 6 else f"[{items[0]}, {items[1]}, ..., {items[-1]}]"
