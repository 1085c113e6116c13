"""The locust side of a load test: `PhoneUser` (one phone on `FastHttpUser`) and the
event listeners that make a cluster of them one fleet. `loadtests/locustfile.py` imports
this module; nothing else may (importing locust patches the standard library for gevent).

- Options: `options.add_options` on locust's parser; the master's values reach workers
  with every spawn message, so a worker needs none of its own.
- Stack: with no `--host`, the master (or a single process) starts the bundled backend
  on embedded PostgreSQL, as `ggsim run` does, and stops it when locust quits.
- Time: at test start the master puts the backend on the scenario's simulated time
  (`POST /_sim/clock`); every process reads the backend's instant once and runs its
  phones on it, so phones and backend agree on any machine.
- Phones: each new user asks the master for a phone (`allocator`); its batches and
  decisions are `worker.WorkerPhones`' and `phone.LoadPhone`'s; its SQL runs on a
  private in-memory SQLite database built from the app's schema (no file, no lock
  another connection could hold, so no blocking busy wait on the gevent loop), or with
  `--phone-sqlite file` on a real file, each statement on a native thread.
- End: the master asks each worker for its ledgers (custom messages), reconciles them
  with the backend's tables (`ledgers.ClusterLedger`) in a native thread, judges the
  gates, writes the summary and sets the exit code in `quitting`.

Invariant: every wait a phone makes is a gevent sleep; nothing here blocks the loop
longer than one SQLite statement on memory (batches are generated on a native thread).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from gevent.event import AsyncResult
from gevent.lock import BoundedSemaphore
from gevent.threadpool import ThreadPool
from locust import FastHttpUser, constant, events, task
from locust import log as locust_log
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from simulator.drivers.blocking import connect, connect_as_app, execute, run
from simulator.drivers.network import run_blocking
from simulator.errors import FleetFull, NetworkError, UsageError
from simulator.fleet import stack as stacks
from simulator.fleet.clock import SimClock
from simulator.fleet.connections import APP_BUSY_TIMEOUT_S
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.timeline import Timeline
from simulator.instants import parse_instant
from simulator.loadtest.allocator import PhoneAllocator
from simulator.loadtest.answers import answer
from simulator.loadtest.gates import Gates, Measured, judge
from simulator.loadtest.ledgers import ClusterLedger, Piece, pieces
from simulator.loadtest.options import LoadSettings, add_options, settings
from simulator.loadtest.phone import LoadPhone
from simulator.loadtest.summary import write_summary
from simulator.loadtest.worker import WorkerPhones, identity
from simulator.phone import app
from simulator.phone.effects import Http, HttpResponse, NetOperation
from simulator.phone.profiles import profile as lookup_profile

log = logging.getLogger("ggsim.locust")
GRANT_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 60.0  # workers' in-flight operations end and their ledgers arrive
IDLE_SLICE_S = 1.0  # the longest sleep of a phone: a stop is seen within it


@dataclass
class ProcessState:
    """What one locust process holds (master, worker, or a single process as both)."""

    environment: Any = None
    settings: LoadSettings | None = None
    stack: stacks.Stack | None = None
    database_url: str = ""
    allocator: PhoneAllocator | None = None  # the master's
    ledger: ClusterLedger = field(default_factory=ClusterLedger)  # the master's merge
    phones: WorkerPhones | None = None  # the worker's
    clock: SimClock | None = None
    template: sqlite3.Connection | None = None  # a fresh app database, copied per phone
    phone_dir: Path | None = None  # the phones' files (--phone-sqlite file)
    own_phone_dir: bool = False  # a temporary one, removed at the end
    grants: dict[str, AsyncResult] = field(default_factory=dict)
    closing: bool = False
    busy: int = 0
    started_wall: float = 0.0
    exit_code: int | None = None
    runs: int = 0  # tests started in this process (the master's count): one is served

    @property
    def is_master(self) -> bool:
        return isinstance(self.environment.runner, MasterRunner)

    @property
    def is_worker(self) -> bool:
        return isinstance(self.environment.runner, WorkerRunner)

    def worker_name(self) -> str:
        runner = self.environment.runner
        return str(runner.client_id) if self.is_worker else "local"


STATE = ProcessState()
SETUP = BoundedSemaphore()
# a phone's batches are generated on one native thread (the generator's caches are not
# shared between threads): a first hour takes ~50 ms, which on the loop would stall every
# user's requests and inflate their measured latency
GENERATION = ThreadPool(1)
SQL_THREADS = ThreadPool(8)  # phones' statements on files (--phone-sqlite file)


# -- options and set-up ----------------------------------------------------------------

def _options(parser: Any) -> None:
    add_options(parser)


def _init(environment: Any, **_: Any) -> None:
    STATE.environment = environment
    runner = environment.runner
    if runner is None:
        return
    if not STATE.is_worker:
        STATE.settings = settings(environment.parsed_options)
        if not environment.host:
            STATE.stack = stacks.embedded(STATE.settings.scenario, None)
            environment.host = STATE.stack.url
            log.info("ggsim: bundled backend at %s on embedded PostgreSQL", environment.host)
        runner.register_message("ggsim_phone_request", _on_phone_request)
        runner.register_message("ggsim_phone_release", _on_phone_release)
        runner.register_message("ggsim_ledger", _on_ledger)
    if not STATE.is_master:
        runner.register_message("ggsim_phone_grant", _on_phone_grant)
        runner.register_message("ggsim_flush", _on_flush)


SECOND_RUN = ("this locust process has run its test, and the backend keeps that run's "
              "devices, batches and simulated clock: a second test would not start from "
              "a clean fleet. Restart locust (with a fresh backend, or another --seed) for "
              "another run; the first run's summary stands")


def _test_start(environment: Any, **_: Any) -> None:
    if STATE.is_worker:
        return
    STATE.runs += 1
    if STATE.runs > 1:  # the web UI's "new test" after a stop
        log.error("ggsim: %s", SECOND_RUN)
        gevent.spawn_later(0.5, environment.runner.stop)
        return
    chosen = STATE.settings = settings(environment.parsed_options)
    STATE.database_url = chosen.database_url or (
        STATE.stack.database_url or "" if STATE.stack else "")
    STATE.allocator = PhoneAllocator(chosen.fleet_phones)
    STATE.ledger = ClusterLedger()
    STATE.started_wall = time.time()
    _set_backend_clock(environment.host, parse_instant(chosen.scenario.start),
                       chosen.scenario.speed)


def _set_backend_clock(host: str, origin_ms: int, speed: float) -> None:
    """Put the backend on simulated time; a backend without simulation control (one
    someone else runs) keeps its own clock, which only works at speed 1."""
    answer = stacks.set_backend_clock(host, origin_ms, speed)
    if answer.status_code == 200:
        return
    if speed != 1.0:
        raise UsageError(f"the backend at {host} does not take simulated time (POST "
                         f"/_sim/clock: HTTP {answer.status_code}); --speed {speed} needs "
                         "the bundled one (ggsim serve --sim-control), or use --speed 1")


# -- the master's book of phones -------------------------------------------------------

def _on_phone_request(environment: Any, msg: Any, **_: Any) -> None:
    worker, token = msg.node_id, msg.data["token"]
    environment.runner.send_message("ggsim_phone_grant", _grant(worker, token),
                                    client_id=worker)


def _grant(worker: str, token: str) -> dict[str, Any]:
    if STATE.runs > 1:
        return {"token": token, "error": SECOND_RUN}
    assert STATE.allocator is not None, "a phone was asked for before the test started"
    try:
        index = STATE.allocator.acquire(worker)
    except FleetFull as exc:
        return {"token": token, "error": str(exc)}
    return {"token": token, "index": index, "secret": STATE.allocator.secret(index)}


def _on_phone_release(environment: Any, msg: Any, **_: Any) -> None:
    if STATE.allocator is not None:
        STATE.allocator.release(int(msg.data["index"]), msg.node_id, msg.data.get("secret"))


def _on_phone_grant(environment: Any, msg: Any, **_: Any) -> None:
    waiting = STATE.grants.pop(msg.data["token"], None)
    if waiting is not None:
        waiting.set(msg.data)


def _ask_for_phone() -> dict[str, Any]:
    """A phone for a new user: from the master, or from this process's own book."""
    token = uuid.uuid4().hex
    if not STATE.is_worker:
        return _grant("local", token)
    waiting = STATE.grants[token] = AsyncResult()
    STATE.environment.runner.send_message("ggsim_phone_request", {"token": token})
    return dict(waiting.get(timeout=GRANT_TIMEOUT_S))


def _give_back(index: int, secret: str) -> None:
    if STATE.is_worker:
        STATE.environment.runner.send_message("ggsim_phone_release",
                                              {"index": index, "secret": secret})
    elif STATE.allocator is not None:
        STATE.allocator.release(index, "local", secret)


# -- the worker's phones ---------------------------------------------------------------

def _worker_phones(host: str) -> WorkerPhones:
    """This process's phones and clock, made at its first user (a worker gets its options
    with the first spawn message)."""
    with SETUP:  # the first user builds them (reading the backend yields); others wait
        if STATE.phones is None:
            chosen = STATE.settings if not STATE.is_worker else settings(
                STATE.environment.parsed_options)
            assert chosen is not None
            clock = _backend_clock(host, chosen.scenario.speed)
            STATE.settings, STATE.clock = chosen, clock
            STATE.template = _fresh_database(chosen)
            if chosen.phone_sqlite == "file":
                STATE.own_phone_dir = not chosen.phone_dir
                STATE.phone_dir = Path(chosen.phone_dir or tempfile.mkdtemp(
                    prefix="ggsim-locust-phones-"))
                STATE.phone_dir.mkdir(parents=True, exist_ok=True)
            STATE.phones = WorkerPhones(chosen.scenario, chosen.fleet_phones,
                                        chosen.aligned)
    return STATE.phones


def _backend_clock(host: str, speed: float) -> SimClock:
    """The backend's simulated instant, read once, running at `speed` from here (half the
    round trip added: the answer is that old when it arrives)."""
    import httpx

    sent = time.monotonic()
    answer = httpx.get(f"{host.rstrip('/')}/healthz", timeout=10)
    answer.raise_for_status()
    half_trip_ms = (time.monotonic() - sent) * 500 * speed
    return SimClock(int(answer.json()["now_ms"] + half_trip_ms), speed)


def _fresh_database(chosen: LoadSettings) -> sqlite3.Connection:
    """An app database as a fresh install leaves it, in memory: each phone gets a copy."""
    conn = connect(":memory:")
    for operation in app.fresh_install(lookup_profile(chosen.scenario.profile),
                                       parse_instant(chosen.scenario.start)):
        run(conn, operation)
    return conn


def _on_flush(environment: Any, msg: Any, **_: Any) -> None:
    """The master asks for this worker's ledgers: stop the phones, send them in pieces."""
    for piece in _close_phones(STATE.worker_name()):
        environment.runner.send_message("ggsim_ledger", piece)


def _close_phones(worker: str) -> list[Piece]:
    """No new operation starts; those running end (bounded); then each phone's overdue
    batches are not sent and its queue is read; the ledgers as message pieces."""
    STATE.closing = True
    deadline = time.monotonic() + FLUSH_TIMEOUT_S / 2
    while STATE.busy and time.monotonic() < deadline:
        gevent.sleep(0.05)
    phones = STATE.phones
    if phones is None or STATE.clock is None:  # no user ever started here: one empty piece
        return list(pieces(worker, FleetLedger(Timeline(0)), (), ()))
    now = STATE.clock.now_ms()
    every = phones.every_phone()
    queued: list[str] = []
    for phone in every:
        phone.close(now)
        queued += phone.queued()
    return list(pieces(worker, phones.ledger, queued, {p.index for p in every}))


# -- the user ----------------------------------------------------------------------------

class PhoneUser(FastHttpUser):
    """One phone of the fleet (see the module docstring). Its task waits until the phone
    has something due and does it; when the scenario's simulated time is over, it stops."""

    wait_time = constant(0)  # the phone's own cadence decides when it acts
    network_timeout = 30.0
    connection_timeout = 30.0

    def on_start(self) -> None:
        assert self.host, "locust sets the host before users start"
        phones = _worker_phones(self.host)
        grant = _ask_for_phone()
        if "error" in grant:
            if grant["error"] != SECOND_RUN:  # that one the master logs once
                log.error("ggsim: %s", grant["error"])
            raise StopUser()
        self.index = int(grant["index"])
        assert STATE.template is not None and STATE.clock is not None
        self.conn = self._database(self.index)
        secret = grant.get("secret") or self._register()
        self.phone: LoadPhone = phones.join(self.index, secret, self._perform,
                                            STATE.clock.now_ms(), time.monotonic())

    def _database(self, index: int) -> sqlite3.Connection:
        """The phone's database: a copy of a fresh install's, in memory or in its file
        (opened as the app's Flutter side opens it: its journal mode, its busy timeout)."""
        assert STATE.template is not None
        if STATE.phone_dir is None:
            conn = connect(":memory:")
            STATE.template.backup(conn)
            return conn
        path = STATE.phone_dir / f"phone-{index:06d}.db"
        if not path.exists():
            conn = connect(path)
            STATE.template.backup(conn)
            conn.close()
        profile = lookup_profile(self._settings().scenario.profile)
        return connect_as_app(path, profile.flutter_journal_mode, APP_BUSY_TIMEOUT_S)

    def on_stop(self) -> None:
        phone = getattr(self, "phone", None)
        if phone is not None and STATE.clock is not None and STATE.phones is not None:
            phone.close(STATE.clock.now_ms())  # what came due and was not sent stays so
            STATE.phones.retire(self.index)
            _give_back(self.index, phone.creds.secret)

    def _register(self) -> str:
        device_id, user_id = identity(self._settings().scenario.seed, self.index)
        response = self.client.post("/devices", json={"device_id": device_id,
                                                      "user_id": user_id}, name="/devices")
        if response.status_code == 409:
            raise UsageError(f"device {device_id} is already registered: this backend has "
                             "run this seed before; use a fresh database or another --seed")
        if response.status_code != 201:
            raise UsageError(f"registering {device_id}: HTTP {response.status_code}")
        return str(response.json()["secret"])

    def _settings(self) -> LoadSettings:
        assert STATE.settings is not None
        return STATE.settings

    @task
    def live(self) -> None:
        phones, clock = STATE.phones, STATE.clock
        assert phones is not None and clock is not None
        wait = phones.cohort_wait_s(self.phone, time.monotonic())
        if wait > 0:  # others are joining: their first hours are generated together
            gevent.sleep(wait)
            return
        self._top_up(phones.load_point_ms(self.phone, clock.now_ms()))
        due = self.phone.due_ms()
        if STATE.closing or due is None or phones.over(due):
            raise StopUser()
        delay = clock.wall_delay_s(due)
        if delay > 0:
            gevent.sleep(min(delay, IDLE_SLICE_S))
            return
        STATE.busy += 1
        try:
            self.phone.step(due)
        finally:
            STATE.busy -= 1

    def _top_up(self, now_ms: int) -> None:
        phones = STATE.phones
        assert phones is not None
        if not phones.needs_top_up(self.phone, now_ms):
            return
        if phones.needs_generation(self.phone, now_ms):
            GENERATION.apply(phones.top_up, (self.phone, now_ms))
        else:  # its cohort has the hours: only taking them, on the loop
            phones.top_up(self.phone, now_ms)

    def _perform(self, operation: NetOperation[Any]) -> Any:
        if STATE.phone_dir is None:  # memory: nothing can hold a lock, no wait to fear
            return run_blocking(self.conn, self._respond, operation)
        return run_blocking(self.conn, self._respond, operation, sql=_sql_off_the_loop)

    def _respond(self, request: Http) -> HttpResponse | NetworkError:
        return answer(self.client, request)


def _sql_off_the_loop(conn: sqlite3.Connection, cursor: Any, effect: Any) -> None:
    """One statement on a native thread: a busy wait on a file another connection locks
    (up to the app's busy timeout) blocks that thread, not the gevent loop and with it
    every user and the worker's heartbeat."""
    SQL_THREADS.apply(execute, (conn, cursor, effect))


# -- the end -----------------------------------------------------------------------------

def _on_ledger(environment: Any, msg: Any, **_: Any) -> None:
    STATE.ledger.add(msg.data)


def _test_stop(environment: Any, **_: Any) -> None:
    if STATE.is_worker or STATE.settings is None or STATE.runs > 1:
        return
    if STATE.is_master:
        workers = [c.id for c in environment.runner.clients.all]
        for worker in workers:
            environment.runner.send_message("ggsim_flush", None, client_id=worker)
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while not STATE.ledger.complete(workers) and time.monotonic() < deadline:
            gevent.sleep(0.1)
        if not STATE.ledger.complete(workers):
            log.error("ggsim: not every worker sent its ledgers in %.0f s", FLUSH_TIMEOUT_S)
    else:
        for piece in _close_phones("local"):
            STATE.ledger.add(piece)
    _judge(environment)


def _judge(environment: Any) -> None:
    """Reconcile, judge the gates, write the summary; the exit code waits for quitting."""
    chosen = STATE.settings
    assert chosen is not None
    verdict = None
    if STATE.database_url:
        verdict = gevent.get_hub().threadpool.apply(asyncio.run, (STATE.ledger.verdict(
            STATE.database_url, chosen.scenario.schema),))
    total, upload = environment.stats.total, environment.stats.get("/upload", "POST")
    wall_s = max(time.time() - STATE.started_wall, 1e-9)
    p50, p95, p99 = (upload.get_response_time_percentile(q) if upload.num_requests
                     else None for q in (0.5, 0.95, 0.99))
    measured = Measured(total.num_requests, total.num_failures, total.num_requests / wall_s,
                        p50, p95, p99, max(upload.num_reqs_per_sec.values(), default=0))
    shape = environment.shape_class
    ramp = getattr(shape, "steps", None) is not None
    # a ramp is meant to break: its latency and error limits are the knee's; what must
    # hold however hard it is pushed is exactly once
    gates = Gates(None, None, None, None, None, None) if ramp else chosen.gates
    checks = judge(gates, measured, verdict)
    runs = STATE.ledger.phone_runs()
    summary = write_summary(chosen, verdict, checks, measured, wall_s,
                            users=len(runs), phones_by_worker=STATE.ledger.phones_by_worker,
                            phone_runs=runs, ramp=(shape.steps, shape.knee) if ramp else None,
                            diurnal=getattr(shape, "hours", None))
    STATE.exit_code = 0 if all(c.passed for c in checks) else 1
    log.info("ggsim: %s", summary)


def _quitting(environment: Any, **_: Any) -> None:
    if STATE.exit_code is not None and not STATE.is_worker:
        runner = environment.runner
        own = 2 if locust_log.unhandled_greenlet_exception else (
            1 if runner.errors or runner.exceptions else 0)  # what locust would have said
        environment.process_exit_code = max(STATE.exit_code, own)
    if STATE.stack is not None:
        STATE.stack.stop()
        STATE.stack = None
    if STATE.own_phone_dir and STATE.phone_dir is not None:
        shutil.rmtree(STATE.phone_dir, ignore_errors=True)


# listeners registered here, not by decorator: locust's decorators are untyped
events.init_command_line_parser.add_listener(_options)
events.init.add_listener(_init)
events.test_start.add_listener(_test_start)
events.test_stop.add_listener(_test_stop)
events.quitting.add_listener(_quitting)
