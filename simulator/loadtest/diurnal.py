"""The diurnal load shape's curve: how many of a fleet's phones are online at each minute
of a simulated day.

In the simulator's phone model the app records and uploads every 5-minute window whether
its owner is awake or not (300 phones send 3,581-3,600 batches in every hour of a day:
the generator's own output), so a `ggsim run` day is flat. What varies over a day is who
is using a phone. The diurnal shape takes that as its assumption, stated here and in
docs/loadtest.md: a phone is online (its locust user runs) while its owner is awake, and
offline while they sleep, with `floor` of the fleet online at any hour (phones charging on
Wi-Fi overnight). The awake share is the persona mix's activity curve: the mix-weighted
share of personas whose rhythm does not schedule sleep at that local minute of that day
of the week (`personas.rhythm_tables`, the same tables the generator walks).

Invariants: a share is in [floor, 1]; `users` is between 1 and the fleet's phones and is
a pure function of (mix, city offset, floor, phones, simulated instant).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from simulator.errors import UsageError
from simulator.instants import DAY_MS, HOUR_MS
from simulator.sensors.city import BERLIN
from simulator.sensors.personas import DEFAULT_MIX, MINUTES_PER_DAY, Activity, rhythm_tables
from simulator.sensors.plan import day_of_week

MINUTE_MS = DAY_MS // MINUTES_PER_DAY


@dataclass(frozen=True)
class DiurnalCurve:
    """The share of a fleet online at each local minute of each day of the week."""

    shares: tuple[tuple[float, ...], ...]  # [day of week (0 = Monday)][local minute]
    utc_offset_h: int

    @classmethod
    def of_mix(cls, mix: Mapping[str, float], utc_offset_h: int,
               floor: float = 0.0) -> DiurnalCurve:
        """The awake share of persona `mix` (weights, any positive sum), never below
        `floor`."""
        _check_floor(floor)
        names = tuple(name for name, weight in mix.items() if weight > 0)
        if not names:
            raise UsageError("the persona mix has no persona with a positive weight")
        weights = np.array([mix[name] for name in names], dtype=np.float64)
        awake = rhythm_tables(names).scheduled != Activity.SLEEP  # (persona, day, minute)
        share = np.tensordot(weights / weights.sum(), awake.astype(np.float64), axes=1)
        share = np.maximum(share, floor)
        return cls(tuple(tuple(float(s) for s in day) for day in share), utc_offset_h)

    def share_at(self, at_ms: int) -> float:
        """The share online at simulated instant `at_ms` (UTC)."""
        local_ms = at_ms + self.utc_offset_h * HOUR_MS
        day = local_ms // DAY_MS
        minute = (local_ms % DAY_MS) // MINUTE_MS
        return self.shares[day_of_week(day)][minute]

    def users(self, phones: int, at_ms: int) -> int:
        """How many of `phones` are online at `at_ms` (at least one)."""
        return max(1, min(phones, round(phones * self.share_at(at_ms))))

    def hourly(self, phones: int, start_ms: int) -> list[int]:
        """Users at the start of each of the 24 hours from `start_ms` (the curve laid out
        for a report)."""
        return [self.users(phones, start_ms + h * HOUR_MS) for h in range(24)]


@dataclass(frozen=True)
class DiurnalPlan:
    """`phones` phones over `hours` simulated hours, never fewer than `floor` of them
    online; the persona `mix` and the city's UTC offset are the generator's (Berlin and
    the default mix unless the scenario names personas)."""

    phones: int = 10_000
    hours: int = 24
    floor: float = 0.0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    utc_offset_h: int = BERLIN.utc_offset_h

    def __post_init__(self) -> None:
        _check_floor(self.floor)
        if self.phones < 1 or self.hours < 1:
            raise UsageError(f"--diurnal-phones and --diurnal-hours must be at least 1, got "
                             f"{self.phones} and {self.hours}")

    def curve(self) -> DiurnalCurve:
        return DiurnalCurve.of_mix(self.mix, self.utc_offset_h, self.floor)

    def spawn_rate(self, speed: float) -> float:
        """Users started (or stopped) a wall second: up to the whole fleet in one
        simulated hour, so a step in the curve is followed within that hour."""
        return max(1.0, self.phones * speed / (HOUR_MS / 1000))


@dataclass(frozen=True)
class DiurnalHour:
    """One simulated hour of a diurnal run: the users the curve planned at its start and,
    measured at its end, the users running and the uploads sent in it (None until it
    ended)."""

    hour: int
    planned_users: int
    running_users: int | None = None
    uploads: int | None = None

    def ended(self, running_users: int, uploads: int) -> DiurnalHour:
        return dataclasses.replace(self, running_users=running_users, uploads=uploads)


def _check_floor(floor: float) -> None:
    if not 0.0 <= floor <= 1.0:
        raise UsageError(f"--diurnal-floor must be in [0, 1], got {floor}")


ASSUMPTION = ("a phone is online while its owner is awake (the persona mix's awake share at "
              "each local minute, never below the floor); uploads are flat in ggsim run's "
              "model, where every phone sends every window all day")
