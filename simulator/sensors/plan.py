"""Day plans: each phone's day as a sequence of activity segments (semi-Markov).

Model: a time-inhomogeneous semi-Markov chain over the stationary activities (sleep,
home, work, outdoor), vectorised over phones. At each decision the next activity is drawn
with weight 1 for the persona's scheduled activity at that time and the persona's
`excursion_weight` for the others (the current one excluded; sleep only from home).
Dwell times are log-normal (`scipy.stats.lognorm`, shape `dwell_sigma`) with median the
time left until the rhythm changes, or the persona's excursion median for an
unscheduled activity. Moving between places inserts travel legs: a walk, or a walk to a
stop, a vehicle ride and a walk (mean vehicle speed 7 m/s door to door, walking 1.35 m/s:
Bohannon 1997 comfortable gait speed 1.3-1.5 m/s).

Invariant: the plan of (phone, local day) is a pure function of (seed, phone, day,
traits); it starts at local midnight in the persona's midnight activity and is cut at
the next midnight. Randomness comes from `generator(seed, Stream.DAY_PLAN, phone, day)`
as a fixed block of uniforms, so plans do not depend on which other phones are planned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from simulator.seeds import Stream, per_phone_uniforms, uniform_hash
from simulator.sensors.personas import PERSONAS, Activity, RhythmTables
from simulator.sensors.traits import Traits

MAX_STEPS = 20  # stationary stays per day; rhythms have at most 10, excursions add a few
LEGS = 4  # per step: walk, vehicle, walk, then the stationary stay
N_U = 8
WALK_SPEED_MPS = 1.35
RUN_SPEED_MPS = 2.8
VEHICLE_SPEED_MPS = 7.0
STOP_WALK_MIN = 5.0
EARLY_MIN = 90.0  # an activity begun this close to its scheduled start is on schedule
BEDTIME_MIN = 15.0  # home past one's bedtime: soon asleep
DEVIATION_MIN = 90.0  # scale of how far a day strays from the rhythm
OUTDOOR_SPOT_M = (300.0, 1200.0)  # a park or errand this far from where one was

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DayPlan:
    """Segments of P phones' local day; arrays are (P, S), S = MAX_STEPS * LEGS.

    `start_min` is minutes after local midnight, non-decreasing along each row (legs of
    zero length are allowed and never selected); rows end with the segment that spans
    midnight. Positions are metres from the city centre; a segment moves linearly from
    `from_xy` to `to_xy`. `floor` and `ground_m` give the altitude of indoor stays.
    """

    start_min: F64
    end_min: F64  # true end (a stay or leg that runs past midnight ends after 1440)
    activity: npt.NDArray[np.int8]
    from_xy: F64  # (P, S, 2)
    to_xy: F64
    floor: npt.NDArray[np.int64]
    ground_m: F64
    running: npt.NDArray[np.bool_]
    pose_u: F64  # a uniform per segment for the phone's pose (on table, pocket, hand)
    level_u: F64  # a uniform per segment for indoor light level and similar
    charging: npt.NDArray[np.bool_]
    day_u: F64  # (P, N_U) uniforms for day-level draws (the battery level at midnight)


def day_of_week(day: int) -> int:
    """0 = Monday for local day `day` counted from 1970-01-01 (a Thursday)."""
    return (day + 3) % 7


def plan_day(seed: int, traits: Traits, tables: RhythmTables, persona_names: tuple[str, ...],
             day: int) -> DayPlan:
    """Plan local day `day` (days since the epoch, local) for every phone in `traits`."""
    # one extra row of day-level draws (the battery level at midnight)
    u = per_phone_uniforms(seed, Stream.DAY_PLAN, traits.phone, (MAX_STEPS + 1, N_U), day)
    dow = day_of_week(day)
    # Charging overnight is a property of the night, shared by the two days it touches.
    charge_p = traits.charge_overnight_probability
    charges_night = (uniform_hash(seed, Stream.NIGHT, traits.phone, day) < charge_p,
                     uniform_hash(seed, Stream.NIGHT, traits.phone, day + 1) < charge_p)
    planner = _Planner(traits, _Persona.of(traits, persona_names),
                       tables.scheduled[traits.persona, dow],
                       tables.until_change[traits.persona, dow], charges_night)
    for k in range(MAX_STEPS):
        planner.step(k, u[:, k])
    return planner.segments.plan(u[:, MAX_STEPS])


@dataclass(frozen=True)
class _Persona:
    """The persona figures of each phone (row): per activity (P, 4) the excursion weight
    and the excursion median dwell (minutes); the dwell shape, the longest walk (metres)
    and the chance of running, (P,)."""

    ex_weight: F64
    ex_min: F64
    sigma: F64
    walk_max_m: F64
    run_p: F64

    @classmethod
    def of(cls, traits: Traits, persona_names: tuple[str, ...]) -> _Persona:
        personas = [PERSONAS[name] for name in persona_names]
        return cls(
            ex_weight=np.array([p.excursion_weight for p in personas])[traits.persona],
            ex_min=np.array([p.excursion_min for p in personas])[traits.persona],
            sigma=np.array([p.dwell_sigma for p in personas])[traits.persona],
            walk_max_m=np.array([p.walk_max_km for p in personas])[traits.persona] * 1000.0,
            run_p=np.array([p.running_probability for p in personas])[traits.persona],
        )


class _Segments:
    """The (P, S) arrays of a day plan being written, S = MAX_STEPS * LEGS.

    Step k writes its stationary stay in slot k * LEGS + 3 and the legs of the trip to the
    next stay in slots (k + 1) * LEGS .. + 2. Step 0 has no trip before it: its legs are
    zero-length at minute 0. A slot never written (the day ended first) starts at inf and
    ends at 1e9; `plan` moves those starts to 1e9, past the day, so rows stay
    non-decreasing.
    """

    def __init__(self, n: int) -> None:
        size = MAX_STEPS * LEGS
        self.start = np.full((n, size), np.inf)
        self.start[:, : LEGS - 1] = 0.0  # no trip before the midnight stay: zero-length legs
        self.end = np.full((n, size), 1e9)
        self.end[:, : LEGS - 1] = 0.0
        self.act = np.zeros((n, size), dtype=np.int8)
        self.from_xy = np.zeros((n, size, 2))
        self.to_xy = np.zeros((n, size, 2))
        self.floor = np.zeros((n, size), dtype=np.int64)
        self.ground = np.zeros((n, size))
        self.running = np.zeros((n, size), dtype=bool)
        self.pose_u = np.zeros((n, size))
        self.level_u = np.zeros((n, size))
        self.charging = np.zeros((n, size), dtype=bool)

    def plan(self, day_u: F64) -> DayPlan:
        """The finished plan; `day_u` are the day-level uniforms."""
        # Slots after the day's end: push them past the day (rows stay non-decreasing).
        start = np.where(np.isinf(self.start), 1e9, self.start)
        return DayPlan(start, self.end, self.act, self.from_xy, self.to_xy, self.floor,
                       self.ground, self.running, self.pose_u, self.level_u, self.charging,
                       day_u)


Leg = tuple[Activity, F64, F64, F64]  # activity, minutes, from (P, 2), to (P, 2)


class _Planner:
    """The semi-Markov walk through one local day, for P phones at once, writing `segments`.

    State per phone: `t`, the minute the current stay begins; `cur`, its activity; `pos`,
    where it is (metres from the centre); `done`, whether the day is over (a stay or trip
    reached minute 1440; slots written after that are unused ones). The day begins at
    midnight in the persona's scheduled activity, at work if that is work, else at home.
    Step k reads only its own row of uniforms, so the plan does not depend on how many
    steps other phones need.
    """

    def __init__(self, traits: Traits, persona: _Persona, sched: npt.NDArray[np.int8],
                 until: npt.NDArray[np.float32],
                 charges_night: tuple[npt.NDArray[np.bool_], ...]) -> None:
        n = len(traits.phone)
        self.traits, self.persona = traits, persona
        self.sched, self.until = sched, until  # (P, 1440): scheduled activity, minutes left
        self.charges_night = charges_night  # the night the day begins in, the one it ends in
        self.segments = _Segments(n)
        self.rows = np.arange(n)
        self.t = np.zeros(n)
        self.cur = sched[:, 0].astype(np.int64)
        self.pos = np.where((self.cur == Activity.WORK)[:, None], traits.work_xy,
                            traits.home_xy)
        self.done = np.zeros(n, dtype=bool)

    def step(self, k: int, uk: F64) -> None:
        """Step k with its uniforms `uk` (P, N_U): the stay in `cur` (its legs were
        written by step k - 1), then the next activity, where it is, and the trip there
        (unless k is the last step). Uniform columns: 0 dwell, 1 running, 2 pose,
        3 light level, 4 charging at work, 5 next activity, 6 and 7 an outdoor spot."""
        slot = k * LEGS + 3
        end = self.t + self._dwell(uk[:, 0])
        self._write_stay(slot, end, uk)
        self.t = end
        self.done |= self.t >= 1440
        nxt = self._next_activity(uk[:, 5])
        dest = self._destination(nxt, uk[:, 6], uk[:, 7])
        if k + 1 < MAX_STEPS:
            fast = self.segments.running[:, slot] | (nxt == Activity.OUTDOOR) & (
                uk[:, 1] < self.persona.run_p)
            legs = _legs(self.pos, dest, self.persona.walk_max_m, fast)
            self.t = self._write_trip((k + 1) * LEGS, legs, fast, uk)
            self.done |= self.t >= 1440
        self.pos = dest
        self.cur = nxt

    def _dwell(self, u: F64) -> F64:
        """Minutes the stay in `cur` from `t` lasts: log-normal with median the time left
        until the rhythm changes (at least 10) when on schedule; when begun within
        EARLY_MIN before its scheduled start, that time plus the scheduled block; else the
        persona's excursion median; BEDTIME_MIN when home past bedtime. The shape shrinks
        for long medians, so the spread stays within about DEVIATION_MIN."""
        rows, cur, sched, until = self.rows, self.cur, self.sched, self.until
        minute = np.minimum(self.t, 1439).astype(np.int64)
        now_until = until[rows, minute]
        change = np.minimum(minute + now_until, 1439).astype(np.int64)
        on_schedule = sched[rows, minute] == cur
        # up shortly before the rhythm says so (woke before the alarm, left work early)
        early = ~on_schedule & (sched[rows, change] == cur) & (now_until <= EARLY_MIN)
        median = np.where(on_schedule, np.maximum(now_until, 10.0),
                          np.where(early, now_until + until[rows, change],
                                   self.persona.ex_min[rows, cur]))
        bedtime = (cur == Activity.HOME) & (sched[rows, minute] == Activity.SLEEP) & ~early
        median = np.where(bedtime, BEDTIME_MIN, median)
        # People keep to a rhythm within tens of minutes, not within a fixed percentage
        # of a long stay: the shape shrinks for long scheduled stays (spread <= ~1 h).
        shape = self.persona.sigma * np.minimum(1.0, DEVIATION_MIN / median)
        dwell: F64 = stats.lognorm.ppf(np.clip(u, 1e-9, 1 - 1e-9), s=shape, scale=median)
        return dwell

    def _write_stay(self, slot: int, end: F64, uk: F64) -> None:
        """The stay in `cur` at `pos` from `t` to `end` (unused for phones `done`). Indoors
        at the work or home floor and ground (outdoors: floor 0 and home's ground); running
        only outdoors, with the persona's chance; charging while asleep on a charging
        night, or at work with chance 0.15."""
        seg, traits, cur = self.segments, self.traits, self.cur
        seg.start[:, slot] = np.where(self.done, np.inf, self.t)
        seg.act[:, slot] = cur
        seg.from_xy[:, slot] = self.pos
        seg.to_xy[:, slot] = self.pos
        at_work = cur == Activity.WORK
        seg.floor[:, slot] = np.where(at_work, traits.work_floor,
                                      np.where(cur == Activity.OUTDOOR, 0, traits.home_floor))
        seg.ground[:, slot] = np.where(at_work, traits.work_ground_m, traits.home_ground_m)
        seg.running[:, slot] = (cur == Activity.OUTDOOR) & (uk[:, 1] < self.persona.run_p)
        seg.pose_u[:, slot] = uk[:, 2]
        seg.level_u[:, slot] = uk[:, 3]
        tonight = np.where(self.t < 720, self.charges_night[0], self.charges_night[1])
        seg.charging[:, slot] = (cur == Activity.SLEEP) & tonight | (at_work & (uk[:, 4] < 0.15))
        seg.end[:, slot] = np.where(self.done, 1e9, end)

    def _next_activity(self, u: F64) -> npt.NDArray[np.int64]:
        """The next stationary activity after `cur`, drawn by inverse CDF with `u`: weight
        1 for the activity scheduled at `t` (or, when that is still `cur`, the one the
        rhythm changes to next), the persona's excursion weight for the others, 0 for
        `cur` itself and for sleep except from home; home when nothing else is left."""
        rows, cur, sched = self.rows, self.cur, self.sched
        nminute = np.minimum(self.t, 1439).astype(np.int64)
        scheduled = sched[rows, nminute].astype(np.int64)
        # Left before the rhythm changed: what comes next is the next scheduled activity.
        ahead = np.minimum(nminute + self.until[rows, nminute], 1439).astype(np.int64)
        scheduled = np.where(scheduled == cur, sched[rows, ahead], scheduled)
        weights = self.persona.ex_weight.copy()
        weights[rows, scheduled] = 1.0
        weights[rows, cur] = 0.0
        weights[cur != Activity.HOME, Activity.SLEEP] = 0.0
        fallback = weights.sum(axis=1) == 0
        weights[fallback, Activity.HOME] = 1.0
        cum = np.cumsum(weights, axis=1)
        pick = (u * cum[:, -1])[:, None] < cum
        nxt: npt.NDArray[np.int64] = np.argmax(pick, axis=1)
        return nxt

    def _destination(self, nxt: npt.NDArray[np.int64], u_angle: F64, u_dist: F64) -> F64:
        """Where `nxt` happens: at work, at home (home and sleep), or outdoors at a spot
        OUTDOOR_SPOT_M away from `pos`, in a direction and distance drawn uniformly."""
        angle = 2 * np.pi * u_angle
        dist = OUTDOOR_SPOT_M[0] + (OUTDOOR_SPOT_M[1] - OUTDOOR_SPOT_M[0]) * u_dist
        spot = self.pos + np.stack([dist * np.cos(angle), dist * np.sin(angle)], axis=1)
        return np.where((nxt == Activity.WORK)[:, None], self.traits.work_xy,
                        np.where((nxt == Activity.OUTDOOR)[:, None], spot, self.traits.home_xy))

    def _write_trip(self, base: int, legs: tuple[Leg, ...], fast: npt.NDArray[np.bool_],
                    uk: F64) -> F64:
        """The legs in slots base.., one after the other from `t` (unused for phones
        `done`); walks are running where `fast`. Returns the minute the last one ends."""
        seg = self.segments
        leg_start = self.t
        for leg, (kind, length, a, b) in enumerate(legs):
            seg.start[:, base + leg] = np.where(self.done, np.inf, leg_start)
            seg.end[:, base + leg] = np.where(self.done, 1e9, leg_start + length)
            seg.act[:, base + leg] = kind
            seg.from_xy[:, base + leg] = a
            seg.to_xy[:, base + leg] = b
            seg.running[:, base + leg] = fast & (kind == Activity.WALK)
            seg.pose_u[:, base + leg] = uk[:, 2]
            seg.level_u[:, base + leg] = uk[:, 3]
            leg_start = leg_start + length
        return leg_start


def _legs(pos: F64, dest: F64, walk_max_m: F64, fast: npt.NDArray[np.bool_]
          ) -> tuple[Leg, Leg, Leg]:
    """The trip from `pos` to `dest` as three legs, walk, vehicle, walk. Up to
    `walk_max_m` (straight distance) it is one walk (running speed where `fast`) and the
    other two are zero-length at `dest`; further, STOP_WALK_MIN to a stop (at most 30 %
    of the way), a ride at VEHICLE_SPEED_MPS over the whole distance, and STOP_WALK_MIN
    from the stop to `dest`."""
    trip_m = np.hypot(*(dest - pos).T)
    walk_only = trip_m <= walk_max_m
    walk_speed = np.where(fast, RUN_SPEED_MPS, WALK_SPEED_MPS)
    walk1 = np.where(walk_only, trip_m / walk_speed / 60.0, STOP_WALK_MIN)
    ride = np.where(walk_only, 0.0, trip_m / VEHICLE_SPEED_MPS / 60.0)
    walk2 = np.where(walk_only, 0.0, STOP_WALK_MIN)
    frac1 = np.where(walk_only, 1.0,
                     np.minimum(walk1 * 60 * walk_speed / np.maximum(trip_m, 1.0), 0.3))
    frac2 = np.where(walk_only, 1.0, 1.0 - frac1)
    p1 = pos + (dest - pos) * frac1[:, None]
    p2 = pos + (dest - pos) * frac2[:, None]
    return ((Activity.WALK, walk1, pos, p1), (Activity.VEHICLE, ride, p1, p2),
            (Activity.WALK, walk2, p2, dest))
