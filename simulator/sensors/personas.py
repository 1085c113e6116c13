"""Personas: who carries the phone, and the rhythm their days follow.

A persona is a daily rhythm (which stationary activity is scheduled at each local time,
on weekdays and weekends) plus how strongly people deviate from it. The day-plan model
(`simulator.sensors.plan`) is a time-inhomogeneous semi-Markov chain over the stationary
activities: the next activity is drawn with weights that favour the scheduled one, and
dwell times are log-normal (`scipy.stats.lognorm`) around the time left until the rhythm
changes. Travel between places is inserted as walking and vehicle legs.

Rhythms are illustrative of time-use surveys (Eurostat HETUS 2010: employed adults sleep
about 8 h, work about 8 h on weekdays, spend 1-2 h travelling and about 1 h outdoors on
leisure), not fitted to any one data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt


class Activity(IntEnum):
    """What the phone's owner is doing; the first four are stationary."""

    SLEEP = 0
    HOME = 1
    WORK = 2
    OUTDOOR = 3
    WALK = 4
    VEHICLE = 5


INDOOR = (Activity.SLEEP, Activity.HOME, Activity.WORK)
MOVING = (Activity.WALK, Activity.OUTDOOR, Activity.VEHICLE)  # GPS on, phone in motion

_S, _H, _W, _O = Activity.SLEEP, Activity.HOME, Activity.WORK, Activity.OUTDOOR
Rhythm = tuple[tuple[float, Activity], ...]  # (local hour it starts, activity), from 0 h


@dataclass(frozen=True)
class Persona:
    """A kind of phone owner.

    `weekday`/`weekend`: the rhythm, as (start hour, activity) from midnight;
    `by_day` overrides it for given days of the week (0 = Monday). Invariant: each day
    starts in the activity the previous day's rhythm ends in (tested).
    `excursion_weight[a]`: weight of unscheduled activity a when the next one is drawn
    (the scheduled one weighs 1). `excursion_min[a]`: median minutes of an unscheduled
    stay. `dwell_sigma`: log-normal shape of dwell times (0.25 = about +-25 %).
    `home_work_km`: median distance from home to work. `walk_max_km`: longest trip
    walked (or run) rather than ridden. `running_probability`: share of outdoor stays
    that are a run. `charge_overnight_probability`: chance the phone charges during sleep.
    """

    name: str
    weekday: Rhythm
    weekend: Rhythm
    excursion_weight: tuple[float, float, float, float]
    excursion_min: tuple[float, float, float, float]
    dwell_sigma: float
    home_work_km: float
    walk_max_km: float
    running_probability: float
    charge_overnight_probability: float
    by_day: tuple[tuple[int, Rhythm], ...] = ()

    def rhythm(self, day_of_week: int) -> Rhythm:
        """The rhythm of a day of the week (0 = Monday)."""
        for day, rhythm in self.by_day:
            if day == day_of_week:
                return rhythm
        return self.weekend if day_of_week >= 5 else self.weekday


_WEEKEND_COMMON: Rhythm = ((0, _S), (8.5, _H), (11.0, _O), (13.0, _H), (16.0, _O), (18.0, _H),
                           (23.5, _S))

PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in (
        Persona("commuter",
                weekday=((0, _S), (6.5, _H), (7.4, _W), (12.5, _O), (13.0, _W), (17.5, _H),
                         (23.0, _S)),
                weekend=_WEEKEND_COMMON,
                excursion_weight=(0.0, 0.15, 0.0, 0.15), excursion_min=(30, 45, 60, 30),
                dwell_sigma=0.25, home_work_km=12.0, walk_max_km=1.2,
                running_probability=0.05, charge_overnight_probability=0.85),
        Persona("office",
                weekday=((0, _S), (7.0, _H), (8.5, _W), (17.5, _H), (19.0, _O), (19.75, _H),
                         (23.25, _S)),
                weekend=_WEEKEND_COMMON,
                excursion_weight=(0.0, 0.1, 0.0, 0.1), excursion_min=(30, 40, 60, 25),
                dwell_sigma=0.2, home_work_km=4.0, walk_max_km=1.5,
                running_probability=0.05, charge_overnight_probability=0.9),
        Persona("night_shift",
                weekday=((0, _W), (6.25, _H), (7.5, _S), (14.5, _H), (17.0, _O), (18.0, _H),
                         (21.5, _W)),
                # shifts run Sunday to Thursday nights
                weekend=((0, _S), (9.0, _H), (12.0, _O), (14.0, _H), (17.0, _O), (19.0, _H),
                         (23.75, _S)),
                excursion_weight=(0.0, 0.1, 0.0, 0.1), excursion_min=(60, 40, 60, 30),
                dwell_sigma=0.2, home_work_km=7.0, walk_max_km=1.2,
                running_probability=0.05, charge_overnight_probability=0.5,
                by_day=((4, ((0, _W), (6.25, _H), (7.5, _S), (14.5, _H), (17.0, _O),
                             (18.0, _H), (23.5, _S))),
                        (6, ((0, _S), (9.5, _H), (12.0, _O), (14.0, _H), (17.0, _O),
                             (18.0, _H), (21.5, _W))))),
        Persona("outdoor_active",
                weekday=((0, _S), (6.0, _O), (7.0, _H), (8.0, _O), (12.0, _H), (13.0, _O),
                         (17.5, _H), (19.0, _O), (20.0, _H), (22.5, _S)),
                weekend=((0, _S), (7.0, _O), (9.0, _H), (10.5, _O), (14.0, _H), (16.0, _O),
                         (19.0, _H), (23.0, _S)),
                excursion_weight=(0.0, 0.15, 0.0, 0.3), excursion_min=(30, 40, 60, 45),
                dwell_sigma=0.3, home_work_km=3.0, walk_max_km=3.0,
                running_probability=0.35, charge_overnight_probability=0.8),
        Persona("stay_at_home",
                weekday=((0, _S), (7.5, _H), (10.5, _O), (11.5, _H), (16.0, _O), (17.0, _H),
                         (22.5, _S)),
                weekend=((0, _S), (8.0, _H), (11.0, _O), (12.5, _H), (16.0, _O), (17.0, _H),
                         (23.0, _S)),
                excursion_weight=(0.05, 0.0, 0.0, 0.1), excursion_min=(45, 30, 30, 35),
                dwell_sigma=0.3, home_work_km=1.0, walk_max_km=2.0,
                running_probability=0.05, charge_overnight_probability=0.9),
    )
}

PERSONA_NAMES: tuple[str, ...] = tuple(PERSONAS)
DEFAULT_MIX: dict[str, float] = {
    "commuter": 0.35, "office": 0.25, "night_shift": 0.1, "outdoor_active": 0.1,
    "stay_at_home": 0.2,
}

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class RhythmTables:
    """Per-minute lookups over (persona, day of week, minute of day).

    `scheduled[p, d, m]`: the scheduled activity at minute m of weekday d (0 = Monday).
    `until_change[p, d, m]`: minutes from m until the schedule next differs, looking into
    the next day's rhythm (capped at two days).
    """

    scheduled: npt.NDArray[np.int8]
    until_change: npt.NDArray[np.float32]


def rhythm_tables(names: tuple[str, ...] = PERSONA_NAMES) -> RhythmTables:
    """Build the lookup tables for the personas `names`, in that order."""
    scheduled = np.zeros((len(names), 7, MINUTES_PER_DAY), dtype=np.int8)
    for p, name in enumerate(names):
        persona = PERSONAS[name]
        for d in range(7):
            for start, activity in persona.rhythm(d):
                scheduled[p, d, round(start * 60):] = activity
    until = np.zeros(scheduled.shape, dtype=np.float32)
    minutes = np.arange(MINUTES_PER_DAY)
    for p in range(len(names)):
        for d in range(7):
            row = np.concatenate([scheduled[p, d], scheduled[p, (d + 1) % 7]])
            change = np.concatenate([np.flatnonzero(row[1:] != row[:-1]) + 1,
                                     [2 * MINUTES_PER_DAY]])
            until[p, d] = change[np.searchsorted(change, minutes, side="right")] - minutes
    return RhythmTables(scheduled, until)
