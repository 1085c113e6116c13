"""The fleet runner: phones living a scenario against a real stack, on simulated time.
It wires the parts, each of one job: the event queue (`events`), the loader of the
generated batches (`loader`, with the tracking sessions of `sessions`), the phones'
operations (`phone`), the open-model loop (`dispatcher`), the seed-fixed plans and
runtime draws (`schedule`), the ledgers (`ledger`) and the verdict (`verdict`).

Invariants: the run is bounded (the scenario's duration plus a settle period, and every
request has a timeout); every generated batch ends in the ledgers; the same scenario and
seed give the same batches, the same fault draws and the same trace header.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from simulator.checks.ledgers import Example, Generated
from simulator.drivers.blocking import file_bytes
from simulator.drivers.network import AiohttpTransport, Transport
from simulator.errors import StackError, UsageError
from simulator.faults.network import NetworkFaults
from simulator.faults.phone import PhoneFaults
from simulator.fleet.clock import SimClock
from simulator.fleet.dispatcher import Dispatcher
from simulator.fleet.events import (
    AppStart,
    BackendRestart,
    ClaimDue,
    Event,
    EventQueue,
    LiveEnd,
    PhoneReboot,
    StormDue,
)
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.live_phone import LivePhone, LiveSetup
from simulator.fleet.loader import Loader
from simulator.fleet.phone import Phone, PhoneLife
from simulator.fleet.result import SETTLE_S, RunResult, judge
from simulator.fleet.scenario import DatabaseRestart, Restart, Scenario
from simulator.fleet.schedule import RuntimeDraws, claim_times, storm_times
from simulator.fleet.soak import MemorySamples, judge_soak, sample_memory
from simulator.fleet.stack import Stack
from simulator.fleet.timeline import Timeline
from simulator.fleet.trace import Trace
from simulator.fleet.verdict import build_verdict
from simulator.instants import parse_instant
from simulator.leftovers import make_owned_dir, sweep
from simulator.phone import app
from simulator.phone.effects import Http, HttpResponse
from simulator.phone.profiles import FixProfile, profile
from simulator.phone.uploader import Credentials
from simulator.sensors.generator import FleetConfig, FleetGenerator
from simulator.sensors.imperfections import Imperfections

PHONE_DIR_PREFIX = "ggsim-fleet-"
REGISTER_BATCH = 200  # registrations in flight at once


def default_phone_dir() -> str | None:
    """Where phone files go by default: a RAM file system (/dev/shm) when there is one,
    else the system's temporary directory (None).

    Why: every commit of a phone's file fsyncs, and the host's disk is not the phone's
    flash, so its fsync time (0.8 ms here) models nothing and only slows the load
    generator: 208 vs 312 full-phone uploads/s on this machine. What the simulation
    checks does not depend on it: an app kill or a SIGKILL loses no committed write
    whether or not it reached the disk (the page cache survives the process)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class _Measured:
    """The innermost transport: the real request, timed."""

    def __init__(self, inner: Transport, clock: SimClock, timeline: Timeline) -> None:
        self.inner, self.clock, self.timeline = inner, clock, timeline
        self.count = 0
        self.in_flight = 0  # requests sent and not yet answered

    async def __call__(self, request: Http) -> HttpResponse:
        start = time.perf_counter()
        self.count += 1
        self.in_flight += 1
        try:
            response = await self.inner(request)  # a NetworkError is not a latency sample
        finally:
            self.in_flight -= 1
        self.timeline.request(self.clock.now_ms(), request.path,
                              (time.perf_counter() - start) * 1000)
        return response


async def _until_requests_in_flight(measured: _Measured, limit_s: float = 2.0) -> None:
    """Wait (at most `limit_s` wall seconds) until some request is in flight: a SIGKILL
    fault is the server dying mid-request, which an idle moment would not test."""
    deadline = time.monotonic() + limit_s
    while measured.in_flight == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.0005)


class FleetRun:
    """One run of a scenario against a stack. `life_type`: the phones' operations (a
    test may observe them by subclassing `PhoneLife`)."""

    life_type: type[PhoneLife] = PhoneLife

    def __init__(self, scenario: Scenario, stack: Stack, workdir: Path | None = None,
                 *, phone_dir: str | Path | None = None, max_in_flight: int = 2_000,
                 trace: Trace | None = None,
                 progress: Callable[[float, str], None] | None = None,
                 live: LiveSetup | None = None) -> None:
        """`workdir`: where the full phones' files go (kept); by default a temporary
        directory under `phone_dir` or `default_phone_dir()`, removed at the end.
        `live`: a real phone joins as the last phone (`fleet/live_phone.py`)."""
        self.scenario = scenario
        self.stack = stack
        self.profile: FixProfile = profile(scenario.profile)
        self.start_ms = parse_instant(scenario.start)
        self.end_ms = self.start_ms + int(scenario.duration_s * 1000)
        self._own_dir = workdir is None
        if workdir is None:
            parent = phone_dir or default_phone_dir()
            sweep(PHONE_DIR_PREFIX, parent)  # phone files of killed runs (RAM on /dev/shm)
            workdir = make_owned_dir(PHONE_DIR_PREFIX, parent)
        self.workdir = workdir
        self.max_in_flight = max_in_flight
        self.trace = trace
        self.progress = progress
        self.timeline = Timeline(self.start_ms)
        self.ledger = FleetLedger(self.timeline, trace)
        self.queue = EventQueue()
        self.draws = RuntimeDraws(scenario.seed, scenario.faults.app_kill_probability)
        self.phone_faults = PhoneFaults(scenario.seed, scenario.faults, self.start_ms,
                                        self.end_ms)
        self.phones: list[Phone] = []
        self.life: PhoneLife | None = None  # set once the phones exist
        self.dispatcher: Dispatcher | None = None
        self.backend_faults: Counter[str] = Counter()  # stops, kills, what the kills cut
        self.memory = MemorySamples()  # a soak's samples
        self.live = live
        self.live_phone: LivePhone | None = None

    @property
    def generated(self) -> list[Generated]:
        return self.ledger.generated

    @property
    def maintained(self) -> dict[str, int]:
        return self.ledger.maintained

    def schedule(self, at_ms: int, event: Event) -> None:
        self.queue.push(at_ms, event)

    def _fleet(self) -> FleetGenerator:
        s = self.scenario
        imperfections = Imperfections() if s.fleet.imperfections else Imperfections.none()
        config = FleetConfig(seed=s.seed, phones=s.fleet.phones, start_ms=self.start_ms,
                             hours=s.duration_s / 3600, imperfections=imperfections)
        if s.fleet.personas:
            config = dataclasses.replace(config, persona_mix=s.fleet.personas)
        return FleetGenerator(config)

    async def _register(self, phones: list[tuple[int, str, str]], raw: Transport) -> list[str]:
        async def one(device_id: str, user_id: str) -> str:
            response = await raw(Http("POST", "/devices", orjson.dumps(
                {"device_id": device_id, "user_id": user_id}),
                (("Content-Type", "application/json"),)))
            if response.status != 201:
                raise StackError(f"registering {device_id}: HTTP {response.status} "
                                   f"{response.body[:200]!r}")
            return str(orjson.loads(response.body)["secret"])
        secrets: list[str] = []
        for i in range(0, len(phones), REGISTER_BATCH):
            secrets += await asyncio.gather(*(one(d, u) for _, d, u in
                                              phones[i:i + REGISTER_BATCH]))
        return secrets

    def _make_phones(self, ids: list[tuple[int, str, str]], secrets: list[str],
                     faults: NetworkFaults, measured: _Measured) -> list[Phone]:
        """The fleet's phones; the full ones with a copy of a freshly started app's file.
        The run begins with each app's first start on a new install: its database work
        at start (performMaintenance with `auto_maintenance`) runs on the empty file,
        deletes nothing and is the same for every phone, so it is done once, here,
        instead of as an event per phone at the first instant."""
        s = self.scenario
        phones = [Phone(p, d, u, Credentials(d, secret), faults.for_phone(measured, p))
                  for (p, d, u), secret in zip(ids, secrets, strict=True)]
        fresh = file_bytes(app.fresh_install(self.profile, self.start_ms))
        full = phones[:s.full_phones] + (phones[s.fleet.phones:] if self.live else [])
        for phone in full:  # a copy each: no schema built per phone
            phone.db = self.workdir / f"phone-{phone.index:06d}.db"
            phone.db.write_bytes(fresh)
        return phones

    def _ids(self) -> list[tuple[int, str, str]]:
        s = self.scenario
        tag = f"{s.seed & 0xFFFFFFFFFFFFFFFF:016x}"
        count = s.fleet.phones + (1 if self.live else 0)  # the live phone comes last
        return [(p, f"sim-{tag}-p{p:06d}", f"user-{tag}-{p:06d}") for p in range(count)]

    def _plan(self, phones: list[Phone]) -> None:
        """The seed-fixed plan: reboots, storms, claims, backend restarts."""
        s = self.scenario
        full = phones[:s.full_phones]
        for phone in full:
            phone.reboots = self.phone_faults.reboots(phone.index)
            for reboot in phone.reboots:
                self.schedule(reboot.at_ms, PhoneReboot(phone))
                self.schedule(reboot.back_ms, AppStart(phone))
        indices = [p.index for p in full]
        for at, p, number in storm_times(self.draws, indices,
                                         s.faults.dual_writer_storms_per_hour,
                                         self.start_ms, self.end_ms):
            self.schedule(at, StormDue(phones[p], number))
        for at, p in claim_times(self.draws, indices, self.start_ms, self.end_ms):
            self.schedule(at, ClaimDue(phones[p]))
        if s.faults.database_restarts and not self.stack.owns_database:
            raise UsageError("faults.database_restarts needs the embedded PostgreSQL: run "
                             "without --target and --database-url (and DATABASE_URL)")
        outages: list[Restart | DatabaseRestart] = [*s.faults.restarts,
                                                     *s.faults.database_restarts]
        for fault in outages:
            self.schedule(self.start_ms + int(fault.at_s * 1000), BackendRestart(fault))

    async def run(self) -> RunResult:
        s = self.scenario
        raw = AiohttpTransport(self.stack.url, timeout_s=s.network.timeout_s,
                               max_connections=min(self.max_in_flight, 500))
        began = time.monotonic()
        try:
            generator = self._fleet()
            ids = self._ids()
            secrets = await self._register(ids, raw)
            self.clock = clock = SimClock(self.start_ms, s.speed)
            active_from = time.monotonic()
            self.stack.sync_clock(self.start_ms, s.speed)
            faults = NetworkFaults(s.seed, s.network, s.faults, clock, self.start_ms)
            measured = _Measured(raw, clock, self.timeline)
            phones = self.phones = self._make_phones(ids, secrets, faults, measured)
            self.life = life = self.life_type(
                self.profile, clock, self.draws, self.phone_faults, self.ledger,
                self.timeline, self.schedule, self.trace)
            self._plan(phones)
            loader = Loader(generator, phones[:s.fleet.phones], self.ledger, self.schedule,
                            self.start_ms, self.end_ms)
            live_end = self._join_live(phones[-1], clock)

            async def restart(event: BackendRestart) -> None:
                if isinstance(event.fault, DatabaseRestart):
                    self.backend_faults["database_restarts"] += 1
                    await self.stack.restart_database(clock.to_wall_s(event.fault.down_s))
                    return
                kill = event.fault.signal == "SIGKILL"
                self.backend_faults["backend_kills" if kill else "backend_stops"] += 1
                if kill:  # it lands while requests are in flight, and counts them
                    await _until_requests_in_flight(measured)
                    self.backend_faults["requests_in_flight_at_kills"] += measured.in_flight
                await self.stack.restart(clock.to_wall_s(event.fault.down_s), asyncio.sleep,
                                         clock.now_ms, s.speed, kill=kill)
            dispatcher = Dispatcher(self.queue, life, clock, loader, end_ms=self.end_ms,
                                    settle_end_ms=self.end_ms + int(SETTLE_S * 1000),
                                    max_in_flight=self.max_in_flight, restart=restart,
                                    progress=self.progress, live_end=live_end)
            self.dispatcher = dispatcher
            sampler = self._start_soak()
            await dispatcher.run()
            if dispatcher.in_flight:
                await asyncio.wait(dispatcher.in_flight, timeout=s.network.timeout_s * 3 + 30)
            dispatcher.cancel_all()
            if self.live_phone is not None:
                await self.live_phone.show()  # the last uploads' outcomes
            if sampler is not None:
                sampler.cancel()
            life.app_conns.close_all()  # the apps stop; their files are checked next
            verdict = await build_verdict(self.ledger, phones, self.profile,
                                          self.phone_faults, self.stack.database_url,
                                          self.stack.schema)
        finally:
            self._stop()
            await raw.aclose()
        wall = time.monotonic() - began
        sim_s = (clock.now_ms() - self.start_ms) / 1000
        errors = life.errors
        for error in errors[:1]:
            verdict.add("runner error", Example(None, None, error), len(errors))
        result = RunResult(s, verdict, self.timeline, measured.count,
                           {**vars(faults.counts), "app_kills": life.kills,
                            "storage_errors": life.storage_errors,
                            **self.backend_faults}, wall, sim_s,
                           verdict.anomalies.get("pot divergence", 0), {},
                           time.monotonic() - active_from)
        result.thresholds.update(judge(result))
        if self.live_phone is not None:
            result.live = self.live_phone.summary()
        if s.soak is not None:
            soaked, result.soak = judge_soak(self.memory, self.timeline, s.soak, s.speed)
            result.thresholds.update(soaked)
        return result

    def _join_live(self, phone: Phone, clock: SimClock
                   ) -> Callable[[Phone], Coroutine[Any, Any, None]] | None:
        """With a live phone: it starts listening, and its stream ends with the run."""
        if self.live is None:
            return None
        self.live_phone = LivePhone(phone, self.live, self.scenario.seed, clock, self.ledger,
                                    self.schedule, self.end_ms)
        self.live_phone.start()
        self.schedule(self.end_ms, LiveEnd(phone))
        return self.live_phone.end

    def _start_soak(self) -> asyncio.Task[None] | None:
        """With a `[soak]` section, sample the processes' memory while the fleet runs."""
        soak = self.scenario.soak
        if soak is None:
            return None
        server = self.stack.server
        return asyncio.ensure_future(sample_memory(
            self.memory, server.pid if server is not None else None, soak.sample_s))

    def _stop(self) -> None:
        """An ended or interrupted run: its phones stop, their files go (if ours)."""
        if self.dispatcher is not None:
            self.dispatcher.cancel_all()
        if self.live_phone is not None:
            self.live_phone.cancel()
        if self.life is not None:
            self.life.app_conns.close_all()
        if self._own_dir:  # first: an await after this is where a second interrupt lands
            shutil.rmtree(self.workdir, ignore_errors=True)
        gc.unfreeze()  # what the run froze can be collected again once it is dropped
