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
    n = len(traits.phone)
    # one extra row of day-level draws (the battery level at midnight)
    u = per_phone_uniforms(seed, Stream.DAY_PLAN, traits.phone, (MAX_STEPS + 1, N_U), day)
    personas = [PERSONAS[name] for name in persona_names]
    ex_weight = np.array([p.excursion_weight for p in personas])[traits.persona]  # (P, 4)
    ex_min = np.array([p.excursion_min for p in personas])[traits.persona]
    sigma = np.array([p.dwell_sigma for p in personas])[traits.persona]
    walk_max_m = np.array([p.walk_max_km for p in personas])[traits.persona] * 1000.0
    run_p = np.array([p.running_probability for p in personas])[traits.persona]
    charge_p = traits.charge_overnight_probability
    dow = day_of_week(day)
    sched = tables.scheduled[traits.persona, dow]  # (P, 1440)
    until = tables.until_change[traits.persona, dow]
    # Charging overnight is a property of the night, shared by the two days it touches.
    charges_night = [uniform_hash(seed, Stream.NIGHT, traits.phone, night) < charge_p
                     for night in (day, day + 1)]

    size = MAX_STEPS * LEGS
    start = np.full((n, size), np.inf)
    start[:, : LEGS - 1] = 0.0  # no trip before the midnight stay: zero-length legs
    end = np.full((n, size), 1e9)
    end[:, : LEGS - 1] = 0.0
    act = np.zeros((n, size), dtype=np.int8)
    from_xy = np.zeros((n, size, 2))
    to_xy = np.zeros((n, size, 2))
    floor = np.zeros((n, size), dtype=np.int64)
    ground = np.zeros((n, size))
    running = np.zeros((n, size), dtype=bool)
    pose_u = np.zeros((n, size))
    level_u = np.zeros((n, size))
    charging = np.zeros((n, size), dtype=bool)

    rows = np.arange(n)
    t = np.zeros(n)
    cur = sched[:, 0].astype(np.int64)
    pos = np.where((cur == Activity.WORK)[:, None], traits.work_xy, traits.home_xy)
    done = np.zeros(n, dtype=bool)
    for k in range(MAX_STEPS):
        uk = u[:, k]
        minute = np.minimum(t, 1439).astype(np.int64)
        now_until = until[rows, minute]
        change = np.minimum(minute + now_until, 1439).astype(np.int64)
        on_schedule = sched[rows, minute] == cur
        # up shortly before the rhythm says so (woke before the alarm, left work early)
        early = ~on_schedule & (sched[rows, change] == cur) & (now_until <= EARLY_MIN)
        median = np.where(on_schedule, np.maximum(now_until, 10.0),
                          np.where(early, now_until + until[rows, change], ex_min[rows, cur]))
        bedtime = (cur == Activity.HOME) & (sched[rows, minute] == Activity.SLEEP) & ~early
        median = np.where(bedtime, BEDTIME_MIN, median)
        # People keep to a rhythm within tens of minutes, not within a fixed percentage
        # of a long stay: the shape shrinks for long scheduled stays (spread <= ~1 h).
        shape = sigma * np.minimum(1.0, DEVIATION_MIN / median)
        dwell = stats.lognorm.ppf(np.clip(uk[:, 0], 1e-9, 1 - 1e-9), s=shape, scale=median)
        # -- the stationary stay (legs were written by the previous step)
        slot = k * LEGS + 3
        start[:, slot] = np.where(done, np.inf, t)
        act[:, slot] = cur
        from_xy[:, slot] = pos
        to_xy[:, slot] = pos
        at_work = cur == Activity.WORK
        floor[:, slot] = np.where(at_work, traits.work_floor,
                                  np.where(cur == Activity.OUTDOOR, 0, traits.home_floor))
        ground[:, slot] = np.where(at_work, traits.work_ground_m, traits.home_ground_m)
        running[:, slot] = (cur == Activity.OUTDOOR) & (uk[:, 1] < run_p)
        pose_u[:, slot] = uk[:, 2]
        level_u[:, slot] = uk[:, 3]
        tonight = np.where(t < 720, charges_night[0], charges_night[1])
        charging[:, slot] = (cur == Activity.SLEEP) & tonight | (at_work & (uk[:, 4] < 0.15))
        t = t + dwell
        end[:, slot] = np.where(done, 1e9, t)
        done |= t >= 1440
        # -- choose the next stationary activity
        nminute = np.minimum(t, 1439).astype(np.int64)
        scheduled = sched[rows, nminute].astype(np.int64)
        # Left before the rhythm changed: what comes next is the next scheduled activity.
        ahead = np.minimum(nminute + until[rows, nminute], 1439).astype(np.int64)
        scheduled = np.where(scheduled == cur, sched[rows, ahead], scheduled)
        weights = ex_weight.copy()
        weights[rows, scheduled] = 1.0
        weights[rows, cur] = 0.0
        weights[cur != Activity.HOME, Activity.SLEEP] = 0.0
        fallback = weights.sum(axis=1) == 0
        weights[fallback, Activity.HOME] = 1.0
        cum = np.cumsum(weights, axis=1)
        pick = (uk[:, 5] * cum[:, -1])[:, None] < cum
        nxt = np.argmax(pick, axis=1)
        # -- where it happens, and the trip there
        angle = 2 * np.pi * uk[:, 6]
        dist = OUTDOOR_SPOT_M[0] + (OUTDOOR_SPOT_M[1] - OUTDOOR_SPOT_M[0]) * uk[:, 7]
        spot = pos + np.stack([dist * np.cos(angle), dist * np.sin(angle)], axis=1)
        dest = np.where((nxt == Activity.WORK)[:, None], traits.work_xy,
                        np.where((nxt == Activity.OUTDOOR)[:, None], spot, traits.home_xy))
        trip_m = np.hypot(*(dest - pos).T)
        walk_only = trip_m <= walk_max_m
        fast = running[:, slot] | (nxt == Activity.OUTDOOR) & (uk[:, 1] < run_p)
        walk_speed = np.where(fast, RUN_SPEED_MPS, WALK_SPEED_MPS)
        walk1 = np.where(walk_only, trip_m / walk_speed / 60.0, STOP_WALK_MIN)
        ride = np.where(walk_only, 0.0, trip_m / VEHICLE_SPEED_MPS / 60.0)
        walk2 = np.where(walk_only, 0.0, STOP_WALK_MIN)
        frac1 = np.where(walk_only, 1.0,
                         np.minimum(walk1 * 60 * walk_speed / np.maximum(trip_m, 1.0), 0.3))
        frac2 = np.where(walk_only, 1.0, 1.0 - frac1)
        p1 = pos + (dest - pos) * frac1[:, None]
        p2 = pos + (dest - pos) * frac2[:, None]
        if k + 1 < MAX_STEPS:
            base = (k + 1) * LEGS
            leg_start = t
            for leg, (kind, length, a, b) in enumerate((
                (Activity.WALK, walk1, pos, p1),
                (Activity.VEHICLE, ride, p1, p2),
                (Activity.WALK, walk2, p2, dest),
            )):
                start[:, base + leg] = np.where(done, np.inf, leg_start)
                end[:, base + leg] = np.where(done, 1e9, leg_start + length)
                act[:, base + leg] = kind
                from_xy[:, base + leg] = a
                to_xy[:, base + leg] = b
                running[:, base + leg] = fast & (kind == Activity.WALK)
                pose_u[:, base + leg] = uk[:, 2]
                level_u[:, base + leg] = uk[:, 3]
                leg_start = leg_start + length
            t = leg_start
            done |= t >= 1440
        pos = dest
        cur = nxt
    # Slots after the day's end: push them past the day (rows stay non-decreasing).
    start = np.where(np.isinf(start), 1e9, start)
    return DayPlan(start, end, act, from_xy, to_xy, floor, ground, running, pose_u, level_u,
                   charging, u[:, MAX_STEPS])
