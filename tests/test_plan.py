"""Day plans (`simulator.sensors.plan`): structure, rhythms and dwell times.

Each test ties an assertion to a figure of `simulator.sensors.plan` or
`simulator.sensors.personas` (rhythms, excursion weights, speeds). Plans of a few hundred
phones per persona are drawn from fixed seeds, so every test is deterministic; the bounds
are wide enough to hold for any seed and tight enough to catch a broken rhythm.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from simulator.sensors.city import BERLIN
from simulator.sensors.personas import PERSONA_NAMES, PERSONAS, Activity, rhythm_tables
from simulator.sensors.plan import (
    OUTDOOR_SPOT_M,
    RUN_SPEED_MPS,
    VEHICLE_SPEED_MPS,
    WALK_SPEED_MPS,
    DayPlan,
    plan_day,
)
from simulator.sensors.traits import Traits, draw_traits

SEED = 11
PHONES_PER_PERSONA = 300
WEDNESDAY = (dt.date(2024, 6, 19) - dt.date(1970, 1, 1)).days
SATURDAY = WEDNESDAY + 3
SUNDAY = WEDNESDAY + 4


def test_calendar_days_used_here_are_what_the_fleet_thinks() -> None:
    # fleet.py: weekday = (day + 3) % 7, Monday = 0 (1970-01-01 was a Thursday)
    assert (WEDNESDAY + 3) % 7 == 2
    assert (SATURDAY + 3) % 7 == 5
    assert (SUNDAY + 3) % 7 == 6


@cache
def persona_traits(persona: str) -> Traits:
    """Traits of PHONES_PER_PERSONA phones that all follow `persona`."""
    weights = np.array([1.0 if name == persona else 0.0 for name in PERSONA_NAMES])
    traits = draw_traits(SEED, np.arange(PHONES_PER_PERSONA, dtype=np.int64), BERLIN,
                         PERSONA_NAMES, weights)
    assert (traits.persona == PERSONA_NAMES.index(persona)).all()
    return traits


@cache
def persona_plan(persona: str, day: int) -> DayPlan:
    return plan_day(SEED, persona_traits(persona), rhythm_tables(PERSONA_NAMES), PERSONA_NAMES,
                    day)


@cache
def mixed_plan(day: int) -> tuple[Traits, DayPlan]:
    """A default-mix fleet of 600 phones."""
    weights = np.array([0.35, 0.25, 0.1, 0.1, 0.2])
    assert tuple(PERSONA_NAMES) == ("commuter", "office", "night_shift", "outdoor_active",
                                    "stay_at_home")
    traits = draw_traits(SEED, np.arange(600, dtype=np.int64), BERLIN, PERSONA_NAMES, weights)
    plan = plan_day(SEED, traits, rhythm_tables(PERSONA_NAMES), PERSONA_NAMES, day)
    return traits, plan


def segment_at(plan: DayPlan, minute: float) -> npt.NDArray[np.int64]:
    """Index of each row's segment in effect at `minute` (row by row, independently of
    the fleet's vectorised lookup)."""
    return np.array([np.searchsorted(row, minute, side="right") - 1
                     for row in plan.start_min], dtype=np.int64)


def activity_at(plan: DayPlan, hour: float) -> npt.NDArray[np.int8]:
    seg = segment_at(plan, hour * 60.0)
    return plan.activity[np.arange(len(seg)), seg]


def durations_min(plan: DayPlan) -> npt.NDArray[np.float64]:
    """Minutes each segment lasts within the day (0 for unused and zero-length slots)."""
    start = np.minimum(plan.start_min, 1440.0)
    end = np.concatenate([start[:, 1:], np.full((start.shape[0], 1), 1440.0)], axis=1)
    return end - start


def share(mask: npt.NDArray[np.bool_]) -> float:
    return float(np.mean(mask))


# -- structure ----------------------------------------------------------------------------

@pytest.mark.parametrize("day", [WEDNESDAY, SATURDAY])
def test_segments_are_in_time_order_and_activity_codes_valid(day: int) -> None:
    _, plan = mixed_plan(day)
    assert (np.diff(plan.start_min, axis=1) >= 0).all()
    assert (plan.start_min[:, 0] == 0).all()  # every day starts at local midnight
    assert set(np.unique(plan.activity).tolist()) <= {int(a) for a in Activity}
    assert plan.activity.min() >= 0 and plan.activity.max() <= 5
    # rows end with the segment that spans midnight (the rest of a trip under way may
    # follow); later slots are pushed past the day
    used = plan.start_min < 1440.0
    last = used.sum(axis=1) - 1
    after = ~used & (plan.start_min < 1e9)
    assert np.isin(plan.activity[after], (Activity.WALK, Activity.VEHICLE)).all()
    assert (plan.start_min[~used & ~after] == 1e9).all()
    dur = durations_min(plan)
    assert np.allclose(dur.sum(axis=1), 1440.0)
    assert (dur[np.arange(len(last)), last] > 0).all()


def test_day_starts_in_the_persona_s_midnight_activity() -> None:
    traits, plan = mixed_plan(WEDNESDAY)
    expected = np.array([PERSONAS[PERSONA_NAMES[p]].weekday[0][1] for p in traits.persona])
    assert (activity_at(plan, 0.0) == expected).all()
    at_work = expected == Activity.WORK
    seg = segment_at(plan, 0.0)
    xy = plan.from_xy[np.arange(len(seg)), seg]
    assert np.allclose(xy[at_work], traits.work_xy[at_work])
    assert np.allclose(xy[~at_work], traits.home_xy[~at_work])


def test_plan_of_a_phone_does_not_depend_on_the_others() -> None:
    # plan.py invariant: the plan of (phone, day) is a pure function of (seed, phone, day,
    # traits)
    _, plan = mixed_plan(WEDNESDAY)
    idx = np.array([5, 77, 301], dtype=np.int64)
    sub = draw_traits(SEED, idx, BERLIN, PERSONA_NAMES, np.array([0.35, 0.25, 0.1, 0.1, 0.2]))
    alone = plan_day(SEED, sub, rhythm_tables(PERSONA_NAMES), PERSONA_NAMES, WEDNESDAY)
    assert np.array_equal(alone.start_min, plan.start_min[idx])
    assert np.array_equal(alone.activity, plan.activity[idx])
    assert np.array_equal(alone.to_xy, plan.to_xy[idx])


def test_trips_connect_places() -> None:
    """Each real segment starts where the previous one ended: a walk or ride leaves from the
    previous stay's position, and a stay begins where the trip arrived."""
    _, plan = mixed_plan(WEDNESDAY)
    dur = durations_min(plan)
    checked = 0
    for row in range(plan.start_min.shape[0]):
        real = np.flatnonzero(dur[row] > 0)
        assert real.size >= 1
        gap = np.hypot(*(plan.from_xy[row, real[1:]] - plan.to_xy[row, real[:-1]]).T)
        assert gap.max(initial=0.0) < 1e-6, row
        moving = np.isin(plan.activity[row, real[1:]], (Activity.WALK, Activity.VEHICLE))
        stay_before = ~np.isin(plan.activity[row, real[:-1]], (Activity.WALK, Activity.VEHICLE))
        # a stay never moves; travel always does
        stays = real[~np.isin(plan.activity[row, real], (Activity.WALK, Activity.VEHICLE))]
        assert np.allclose(plan.from_xy[row, stays], plan.to_xy[row, stays])
        checked += int((moving & stay_before).sum())
    assert checked > 1000  # plenty of trips leave a stay


def test_stays_happen_at_their_places() -> None:
    traits, plan = mixed_plan(WEDNESDAY)
    dur = durations_min(plan)
    rows = np.broadcast_to(np.arange(plan.activity.shape[0])[:, None], plan.activity.shape)
    real = dur > 0
    for activity, place in ((Activity.WORK, traits.work_xy), (Activity.HOME, traits.home_xy),
                            (Activity.SLEEP, traits.home_xy)):
        sel = real & (plan.activity == activity)
        assert sel.sum() > 100
        assert np.allclose(plan.from_xy[sel], place[rows[sel]])
    # an outdoor stay is a park or errand 300-1200 m from where one was (plan.py)
    outdoor = np.argwhere(real & (plan.activity == Activity.OUTDOOR))
    outdoor = outdoor[outdoor[:, 1] >= 4]
    previous_stay = outdoor[:, 1] - 4  # walk, ride, walk are the three slots in between
    dist = np.hypot(*(plan.from_xy[outdoor[:, 0], outdoor[:, 1]]
                      - plan.from_xy[outdoor[:, 0], previous_stay]).T)
    assert outdoor.shape[0] > 300
    assert dist.min() >= OUTDOOR_SPOT_M[0] - 1e-6
    assert dist.max() <= OUTDOOR_SPOT_M[1] + 1e-6


def test_travel_speeds() -> None:
    """Walking 1.35 m/s (Bohannon 1997: comfortable gait 1.3-1.5 m/s), running 2.8 m/s;
    a ride never faster than the 7 m/s mean vehicle speed; walk-only trips are no longer
    than the persona's `walk_max_km`."""
    traits, plan = mixed_plan(WEDNESDAY)
    dur = durations_min(plan)
    whole = (dur > 0.5) & (plan.start_min + dur < 1440.0)  # legs not cut at midnight
    dist = np.hypot(*(plan.to_xy - plan.from_xy).transpose(2, 0, 1))
    speed = np.divide(dist, dur * 60.0, out=np.zeros_like(dist), where=dur > 0)
    walk = whole & (plan.activity == Activity.WALK)
    assert 1.3 <= np.median(speed[walk & ~plan.running]) <= 1.5
    assert np.allclose(speed[walk & ~plan.running], WALK_SPEED_MPS)
    ride = whole & (plan.activity == Activity.VEHICLE)
    assert ride.sum() > 100
    assert speed[ride].max() <= VEHICLE_SPEED_MPS + 1e-9
    assert 4.0 <= np.median(speed[ride]) <= VEHICLE_SPEED_MPS
    # a trip is walked only if short; rides happen only for longer trips
    walk_max_m = np.array([PERSONAS[PERSONA_NAMES[p]].walk_max_km for p in traits.persona]
                          ) * 1000.0
    rows = np.broadcast_to(np.arange(plan.activity.shape[0])[:, None], plan.activity.shape)
    slots = np.arange(plan.activity.shape[1])
    first_walk = whole & (plan.activity == Activity.WALK) & (slots % 4 == 0)
    no_ride = np.zeros_like(first_walk)
    no_ride[:, :-1] = dur[:, 1:] == 0
    walked = first_walk & no_ride
    assert walked.sum() > 100
    assert (dist[walked] <= walk_max_m[rows[walked]] + 1e-6).all()
    # a run to or from an outdoor spot is a walk-only trip at running pace
    ran = walked & plan.running
    assert ran.sum() > 10
    assert np.allclose(speed[ran], RUN_SPEED_MPS)


# -- rhythms ------------------------------------------------------------------------------

def test_commuters_on_a_weekday_sleep_at_night_and_work_late_morning() -> None:
    plan = persona_plan("commuter", WEDNESDAY)
    assert share(activity_at(plan, 3.0) == Activity.SLEEP) >= 0.95
    assert share(activity_at(plan, 11.0) == Activity.WORK) >= 0.9
    assert share(activity_at(plan, 21.0) == Activity.HOME) >= 0.8


def test_commuters_on_a_saturday_do_not_work() -> None:
    plan = persona_plan("commuter", SATURDAY)
    for hour in (9.0, 11.0, 15.0):
        assert share(activity_at(plan, hour) == Activity.WORK) <= 0.05
    assert share(activity_at(plan, 3.0) == Activity.SLEEP) >= 0.95
    # weekend rhythm: outdoors 11-13 h
    assert share(np.isin(activity_at(plan, 12.0), (Activity.OUTDOOR, Activity.WALK))) >= 0.3


def test_night_shift_works_at_night_and_sleeps_by_day() -> None:
    plan = persona_plan("night_shift", WEDNESDAY)
    assert share(activity_at(plan, 2.0) == Activity.WORK) >= 0.9
    assert share(activity_at(plan, 11.0) == Activity.SLEEP) >= 0.9
    assert share(activity_at(plan, 23.0) == Activity.WORK) >= 0.6
    assert share(activity_at(plan, 3.0) == Activity.SLEEP) <= 0.05


def test_stay_at_home_never_works() -> None:
    plan = persona_plan("stay_at_home", WEDNESDAY)
    assert not (plan.activity == Activity.WORK).any()


# -- dwell times --------------------------------------------------------------------------

def daily_hours(plan: DayPlan, activity: Activity) -> npt.NDArray[np.float64]:
    return np.asarray((durations_min(plan) * (plan.activity == activity)).sum(axis=1) / 60.0)


def test_commuter_weekday_time_use() -> None:
    """HETUS 2010 (personas.py): employed adults work about 8 h on weekdays, travel 1-2 h."""
    plan = persona_plan("commuter", WEDNESDAY)
    work = daily_hours(plan, Activity.WORK)
    assert 6.0 <= np.median(work) <= 11.0
    assert np.percentile(work, 10) >= 3.0
    assert np.percentile(work, 90) <= 11.0
    travel = daily_hours(plan, Activity.WALK) + daily_hours(plan, Activity.VEHICLE)
    assert 1.0 <= np.median(travel) <= 4.0
    total = sum(daily_hours(plan, a) for a in Activity)
    assert np.allclose(total, 24.0)


def test_office_worker_weekday_time_use() -> None:
    plan = persona_plan("office", WEDNESDAY)
    assert 7.0 <= np.median(daily_hours(plan, Activity.WORK)) <= 10.0
    assert 6.0 <= np.median(daily_hours(plan, Activity.SLEEP)) <= 9.5


def test_stays_end_within_tens_of_minutes_of_the_rhythm() -> None:
    """plan.py: dwell spread shrinks for long scheduled stays (spread <= about 1 h).
    Commuters (rhythm: asleep until 6:30) wake within about an hour of it."""
    plan = persona_plan("commuter", WEDNESDAY)
    dur = durations_min(plan)
    first_sleep_end = np.array([
        plan.start_min[r, np.flatnonzero(dur[r] > 0)[1]] for r in range(dur.shape[0])])
    assert abs(np.median(first_sleep_end) - 6.5 * 60) <= 30
    assert np.percentile(first_sleep_end, 5) >= 5.0 * 60
    assert np.percentile(first_sleep_end, 95) <= 7.5 * 60


def test_evening_at_home_is_followed_by_sleep() -> None:
    """The next activity is drawn with weight 1 for the scheduled one and 0.15 for each
    excursion (commuter), so after the evening at home sleep should follow in about
    1 / 1.15 = 87 % of days, not in half of them."""
    plan = persona_plan("commuter", WEDNESDAY)
    dur = durations_min(plan)
    followed_by_sleep = []
    for r in range(dur.shape[0]):
        real = np.flatnonzero(dur[r] > 0)
        stays = real[np.isin(plan.activity[r, real], (Activity.SLEEP, Activity.HOME,
                                                       Activity.WORK, Activity.OUTDOOR))]
        evening = [s for s in stays if plan.activity[r, s] == Activity.HOME
                   and plan.start_min[r, s] >= 17.0 * 60]
        if not evening:
            continue
        after = stays[stays > evening[0]]
        followed_by_sleep.append(after.size > 0 and plan.activity[r, after[0]] == Activity.SLEEP)
    assert len(followed_by_sleep) > 200
    assert np.mean(followed_by_sleep) >= 0.8


def test_night_shift_is_where_yesterday_ended() -> None:
    """A day starts where the previous day ended (plan.py: the day starts at midnight in
    the persona's midnight activity; this only works if the rhythms agree)."""
    for day in (SATURDAY, SUNDAY):
        before, after = persona_plan("night_shift", day), persona_plan("night_shift", day + 1)
        end = segment_at(before, 1439.9)
        rows = np.arange(end.size)
        where_before = before.to_xy[rows, end]
        where_after = after.from_xy[rows, segment_at(after, 0.0)]
        jump = np.hypot(*(where_after - where_before).T)
        assert np.median(jump) < 100.0, day
