"""A load-test worker process's phones: their batches, hour by hour, and the ledgers they
write.

Batches come from one `FleetGenerator` per process, phone by phone (`block([i], hour)`):
a phone alone costs about 50 ms for its first hour (its day plans) and about 1 ms for
each hour after, so a process of a thousand phones spends about a second of CPU per
simulated hour. Phone i's batches are the bytes `ggsim generate` writes for it.

Invariants: a phone is built once per holding (`join`); its batches are loaded an hour
ahead of its clock, so `due_ms()` is never None while the scenario lasts; every phone
ever joined stays in `phones` until the end (its queue is part of the final ledger).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from simulator.fleet.ledger import FleetLedger
from simulator.fleet.loader import batches
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

MAX_PHONE_PLANS = 100_000  # phones whose day plans a process keeps (each a few kB)


def identity(seed: int, index: int) -> tuple[str, str]:
    """Phone `index`'s device id and user id (the generator's, so its envelopes match)."""
    idx = np.array([index], dtype=np.int64)
    return device_ids(seed, idx)[0].decode(), user_ids(seed, idx)[0].decode()


@dataclass
class WorkerPhones:
    """The phones of one worker process (see the module docstring)."""

    scenario: Scenario
    fleet_phones: int  # the fleet the phones are drawn from: indices below it
    start_ms: int = field(init=False)
    end_ms: int = field(init=False)
    generator: FleetGenerator = field(init=False)
    ledger: FleetLedger = field(init=False)
    draws: RuntimeDraws = field(init=False)
    phones: dict[int, LoadPhone] = field(default_factory=dict)
    retired: list[LoadPhone] = field(default_factory=list)  # held before, given back
    loaded_to: dict[int, int] = field(default_factory=dict)  # phone -> hours loaded up to

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
        self.generator.max_chunks = MAX_PHONE_PLANS
        self.ledger = FleetLedger(Timeline(self.start_ms))
        self.draws = RuntimeDraws(s.seed, 0.0)

    def join(self, index: int, secret: str, perform: Perform, now_ms: int) -> LoadPhone:
        """Phone `index`, held by a user from simulated `now_ms`, with its first batches."""
        device_id, user_id = identity(self.scenario.seed, index)
        phone = LoadPhone(index, device_id, user_id, Credentials(device_id, secret),
                          lookup_profile(self.scenario.profile), self.draws, self.ledger,
                          perform)
        if index in self.phones:  # this process held it before: that holding is over
            self.retired.append(self.phones[index])
        self.phones[index] = phone
        self.loaded_to[index] = max(now_ms, self.start_ms) // HOUR_MS
        self.top_up(phone, now_ms)
        phone.plan_claim(now_ms)
        return phone

    def top_up(self, phone: LoadPhone, now_ms: int) -> None:
        """Load the phone's batches up to an hour past `now_ms` (and the scenario's end)."""
        last_hour = (min(now_ms + HOUR_MS, self.end_ms - 1)) // HOUR_MS
        while self.loaded_to[phone.index] <= last_hour:
            hour = self.loaded_to[phone.index]
            phone.add(batches(self.generator.block([phone.index], hour), self.start_ms,
                              self.end_ms), now_ms)
            self.loaded_to[phone.index] = hour + 1

    def every_phone(self) -> list[LoadPhone]:
        """Every phone this process ran, the given-back holdings too (their queues are
        part of the final ledger)."""
        return [*self.retired, *self.phones.values()]

    def over(self, now_ms: int) -> bool:
        """Whether the scenario's simulated time is over."""
        return now_ms >= self.end_ms
