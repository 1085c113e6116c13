"""A load-test worker process's phones: their batches, hour by hour, and the ledgers they
write.

Batches come from one `FleetGenerator` per process, for *cohorts* of phones: the phones
that joined within `COHORT_WINDOW_S` of each other (at most `COHORT_PHONES`) are
generated together, an hour at a time, and keep their day plans together. Alone, a
phone costs about 50 ms for its first hour and 1-3 ms for each hour after (a new day's
plan included); in a cohort of a hundred, about 3 ms and 0.2 ms. Phone i's batches are
the bytes `ggsim generate` writes for it, whichever cohort it is in (the generator's
invariant).

Invariants: a phone is built once per holding (`join`); a cohort's phones are fixed
when its first hour is generated (`sealed`), and each of its hours is generated once;
batches are loaded up to an hour past the phone's clock; every phone ever joined stays
in `every_phone()` until the end (its queue is part of the final ledger).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from simulator.fleet.ledger import FleetLedger
from simulator.fleet.loader import Batch, batches
from simulator.fleet.scenario import Scenario
from simulator.fleet.schedule import RuntimeDraws
from simulator.fleet.timeline import Timeline
from simulator.instants import HOUR_MS, parse_instant
from simulator.loadtest.phone import LoadPhone, Perform
from simulator.phone.profiles import profile as lookup_profile
from simulator.phone.uploader import Credentials
from simulator.sensors.generator import FleetConfig, FleetGenerator
from simulator.sensors.ids import device_ids, user_ids
from simulator.sensors.imperfections import Imperfections

MAX_COHORT_PLANS = 10_000  # cohorts whose day plans a process keeps
COHORT_PHONES = 500  # phones generated together at most
COHORT_WINDOW_S = 1.0  # phones joining within this many wall seconds share a cohort


def identity(seed: int, index: int) -> tuple[str, str]:
    """Phone `index`'s device id and user id (the generator's, so its envelopes match)."""
    idx = np.array([index], dtype=np.int64)
    return device_ids(seed, idx)[0].decode(), user_ids(seed, idx)[0].decode()


@dataclass
class Cohort:
    """Phones generated together (see the module docstring)."""

    opened_wall_s: float
    phones: list[int] = field(default_factory=list)
    sealed: bool = False
    hours: dict[int, dict[int, list[Batch]]] = field(default_factory=dict)  # not yet taken
    left: set[int] = field(default_factory=set)  # phones gone: still generated, not kept

    def take(self, generator: FleetGenerator, phone: int, hour: int, start_ms: int,
             end_ms: int) -> list[Batch]:
        """`phone`'s batches of `hour`, generating the hour for the cohort if it is the
        first to ask (which seals the cohort)."""
        if not self.sealed:
            self.sealed = True
            self.phones.sort()
        if hour not in self.hours:
            by_phone: dict[int, list[Batch]] = {p: [] for p in self.phones
                                                if p not in self.left}
            for batch in batches(generator.block(self.phones, hour), start_ms, end_ms):
                if batch.phone in by_phone:
                    by_phone[batch.phone].append(batch)
            self.hours[hour] = by_phone
        taken = self.hours[hour].pop(phone, [])
        if not self.hours[hour]:
            del self.hours[hour]  # every phone has its batches of that hour
        return taken

    def leave(self, phone: int) -> None:
        """`phone` stopped: the hours it will never take are not kept for it."""
        self.left.add(phone)
        for hour in list(self.hours):
            self.hours[hour].pop(phone, None)
            if not self.hours[hour]:
                del self.hours[hour]


@dataclass
class WorkerPhones:
    """The phones of one worker process (see the module docstring)."""

    scenario: Scenario
    fleet_phones: int  # the fleet the phones are drawn from: indices below it
    aligned: bool = False  # phones send on the 5-minute boundaries (`LoadPhone.aligned`)
    start_ms: int = field(init=False)
    end_ms: int = field(init=False)
    generator: FleetGenerator = field(init=False)
    ledger: FleetLedger = field(init=False)
    draws: RuntimeDraws = field(init=False)
    phones: dict[int, LoadPhone] = field(default_factory=dict)
    retired: list[LoadPhone] = field(default_factory=list)  # held before, given back
    loaded_to: dict[int, int] = field(default_factory=dict)  # phone -> hours loaded up to
    cohort_of: dict[int, Cohort] = field(default_factory=dict)
    _open: Cohort | None = None

    def __post_init__(self) -> None:
        s = self.scenario
        self.start_ms = parse_instant(s.start)
        self.end_ms = self.start_ms + int(s.duration_s * 1000)
        config = FleetConfig(seed=s.seed, phones=self.fleet_phones, start_ms=self.start_ms,
                             hours=s.duration_s / 3600,
                             imperfections=Imperfections() if s.fleet.imperfections
                             else Imperfections.none())
        if s.fleet.personas:
            config = dataclasses.replace(config, persona_mix=s.fleet.personas)
        self.generator = FleetGenerator(config)
        self.generator.max_chunks = MAX_COHORT_PLANS
        self.ledger = FleetLedger(Timeline(self.start_ms))
        self.draws = RuntimeDraws(s.seed, 0.0)

    def join(self, index: int, secret: str, perform: Perform, now_ms: int,
             wall_s: float) -> LoadPhone:
        """Phone `index`, held by a user from simulated `now_ms` (wall clock `wall_s`), in
        the open cohort; its batches come with `top_up`."""
        device_id, user_id = identity(self.scenario.seed, index)
        phone = LoadPhone(index, device_id, user_id, Credentials(device_id, secret),
                          lookup_profile(self.scenario.profile), self.draws, self.ledger,
                          perform)
        if index in self.phones:  # this process held it before: that holding is over
            self.retire(index)
        cohort = self._open
        if (cohort is None or cohort.sealed or len(cohort.phones) >= COHORT_PHONES
                or wall_s - cohort.opened_wall_s > COHORT_WINDOW_S):
            cohort = self._open = Cohort(wall_s)
        cohort.phones.append(index)
        self.cohort_of[index] = cohort
        self.phones[index] = phone
        self.loaded_to[index] = max(now_ms, self.start_ms) // HOUR_MS
        phone.joined_ms, phone.aligned = now_ms, self.aligned
        phone.plan_claim(now_ms)
        return phone

    def cohort_wait_s(self, phone: LoadPhone, wall_s: float) -> float:
        """How long the phone should wait for others to join its cohort before its first
        hour is generated (0 once the cohort is sealed or its window is over)."""
        cohort = self.cohort_of[phone.index]
        if cohort.sealed:
            return 0.0
        return max(0.0, cohort.opened_wall_s + COHORT_WINDOW_S - wall_s)

    def retire(self, index: int) -> None:
        """The holding of phone `index` is over (its user stopped, or it is held anew)."""
        phone = self.phones.pop(index, None)
        if phone is not None:
            self.retired.append(phone)
            self.cohort_of[index].leave(index)

    def needs_top_up(self, phone: LoadPhone, now_ms: int) -> bool:
        """Whether `top_up` has an hour to load."""
        return self.loaded_to[phone.index] <= self._last_hour(now_ms)

    def loaded_until_ms(self, phone: LoadPhone) -> int:
        """The end of the last hour whose batches the phone has."""
        return self.loaded_to[phone.index] * HOUR_MS

    def load_point_ms(self, phone: LoadPhone, now_ms: int) -> int:
        """Where the phone stands in its batches, for `top_up` to load an hour past: its
        next batch's due instant when it has one (a phone behind the clock, on a saturated
        worker, loads the hour it sends next, not every hour it missed); with none, the
        clock's `now_ms`, or the end of what it has if that is earlier (it sent all it had
        and is behind). Never its claim or its retry worker: a claim is up to a day ahead,
        and loading up to it kept hours of batches per phone (1,080 KiB resident a phone,
        374 KiB loading an hour past, bench_locust.py)."""
        if phone.pending:
            return phone.pending[0].due_ms
        return min(now_ms, self.loaded_until_ms(phone))

    def needs_generation(self, phone: LoadPhone, now_ms: int) -> bool:
        """Whether `top_up` would generate (the slow part, for a thread) rather than take
        what its cohort has generated already."""
        cohort = self.cohort_of[phone.index]
        return any(hour not in cohort.hours for hour in
                   range(self.loaded_to[phone.index], self._last_hour(now_ms) + 1))

    def _last_hour(self, now_ms: int) -> int:
        return min(now_ms + HOUR_MS, self.end_ms - 1) // HOUR_MS

    def top_up(self, phone: LoadPhone, now_ms: int) -> None:
        """Load the phone's batches up to an hour past `now_ms` (and the scenario's end),
        those due from its joining on."""
        last_hour = self._last_hour(now_ms)
        cohort = self.cohort_of[phone.index]
        while self.loaded_to[phone.index] <= last_hour:
            hour = self.loaded_to[phone.index]
            phone.add(cohort.take(self.generator, phone.index, hour, self.start_ms,
                                  self.end_ms), phone.joined_ms)
            self.loaded_to[phone.index] = hour + 1

    def every_phone(self) -> list[LoadPhone]:
        """Every phone this process ran, the given-back holdings too (their queues are
        part of the final ledger)."""
        return [*self.retired, *self.phones.values()]

    def over(self, now_ms: int) -> bool:
        """Whether the scenario's simulated time is over."""
        return now_ms >= self.end_ms
