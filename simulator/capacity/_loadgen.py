"""The load generator's machinery behind `throughput`: `ggsim serve` as a child process,
the fleet generator's envelopes re-signed for registered devices, an open-model sender
(`send_at`), and a step's numbers (`step_result`).

Invariants:
- `send_at` never waits for an answer before sending the next request: request i goes
  at offset i (or not at all, once its send window passed), each with its own timeout,
  and it returns at most one timeout (plus a second) after the last send; times are
  `time.perf_counter` seconds from the schedule's start (uvloop's loop clock has
  millisecond steps).
- `BackendProcess` is stopped however its block ends (SIGTERM, then SIGKILL after 20 s),
  and stops by itself when this process dies: its stdin is a pipe from here.
- A re-signed envelope carries the generator's payload bytes unchanged: only the
  envelope's device, user and batch id change, so the backend stores the same
  `batch_json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import numpy as np
import orjson
import psutil

from simulator.backend.migrations import namespace
from simulator.backend.server import stop_serve_process
from simulator.capacity.slo import StepResult, nearest_rank
from simulator.clock import format_instant
from simulator.errors import SimulatorError, UsageError
from simulator.phone.uploader import Credentials
from simulator.sensors import FleetConfig, FleetGenerator, encode_lines

SEED = 20_240_304
CONNECTIONS = 1_000  # the generator's connection pool (a proxy's upstream pool in front)
SETUP_CONCURRENCY = 16  # registration and warm-up: a closed loop, not measured
KEEPALIVE_S = 3.0  # below uvicorn's keep-alive timeout (5 s), see `new_session`


# -- the backend as its own process ---------------------------------------------------


@dataclass
class BackendProcess:
    """`ggsim serve` in a child process on 127.0.0.1 (any free port), its backend clock
    starting at `clock_start_ms`, no periodic jobs. A context manager: stopped (SIGTERM,
    then SIGKILL) however the block ends; its stdin is a pipe from this process, so it
    also stops when this process dies."""

    database_url: str
    clock_start_ms: int
    schema: str = "recommended"
    url: str = ""
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    _log: deque[str] = field(default_factory=lambda: deque(maxlen=40), repr=False)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise SimulatorError("the backend process is not running")
        return self._proc.pid

    def start(self, timeout_s: float = 60.0) -> BackendProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "serve", "--port", "0", "--schema",
             self.schema, "--database-url", self.database_url, "--clock-start",
             format_instant(self.clock_start_ms), "--jobs-interval", "0",
             "--stop-at-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            self.url = self._read_url(timeout_s)
            threading.Thread(target=self._drain, daemon=True).start()
            self._wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_url(self, timeout_s: float) -> str:
        first: list[str] = []
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        reader = threading.Thread(target=lambda: first.append(proc.stderr.readline()
                                                              if proc.stderr else ""),
                                  daemon=True)
        reader.start()
        reader.join(timeout_s)
        line = first[0] if first else ""
        self._log.append(line)
        marker = "ggsim serve: "
        if marker not in line:
            raise SimulatorError(f"the backend process did not start: {line.strip()!r}")
        return line.split(marker, 1)[1].split()[0]

    def _drain(self) -> None:
        proc = self._proc
        if proc is not None and proc.stderr is not None:
            for line in proc.stderr:  # the child never blocks on a full pipe
                self._log.append(line)

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"{self.url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
            if self._proc is None or self._proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SimulatorError(f"the backend process did not become healthy: {self.log_tail()}")

    def log_tail(self) -> str:
        return "".join(self._log).strip()[-2000:]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the backend process so far."""
        try:
            times = psutil.Process(self.pid).cpu_times()
        except (psutil.Error, SimulatorError):
            return 0.0
        return float(times.user + times.system)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_serve_process(proc)

    def __enter__(self) -> BackendProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- envelopes from the generator ---------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """One generated upload: its line as the app sends it, and where its payload starts."""

    phone: int
    device_id: str
    user_id: str
    batch_id: str
    seq: int
    order_ms: int  # true window start (the phone's upload is due one window later)
    timestamp_ms: int  # the payload's timestamp (the phone's clock)
    body: bytes
    payload_at: int  # index of ',"payload":' in body

    @property
    def payload(self) -> bytes:
        """The payload JSON text: what `batch_json` stores."""
        return self.body[self.payload_at + len(PAYLOAD_KEY):-1]

    def resigned(self, device_id: str, user_id: str, batch_id: str) -> bytes:
        """This payload in another device's envelope with a fresh batch id."""
        head = orjson.dumps({"device_id": device_id, "user_id": user_id, "seq": self.seq,
                             "batch_id": batch_id})
        return head[:-1] + self.body[self.payload_at:]


PAYLOAD_KEY = b',"payload":'


def generate_envelopes(phones: int, hours: float, start_ms: int,
                       seed: int = SEED) -> list[Envelope]:
    """The fleet generator's uploads of `phones` phones for `hours` from `start_ms`, in
    time order (true window start, then phone), as `ggsim generate` writes them."""
    config = FleetConfig(seed=seed, phones=phones, start_ms=start_ms, hours=hours)
    found: list[Envelope] = []
    for block in FleetGenerator(config).iter_blocks():
        lines = encode_lines(block)
        for i in np.lexsort((block.phone, block.order_ms)).tolist():
            body = lines[i].rstrip(b"\n")
            found.append(Envelope(
                int(block.phone[i]), block.device_id[i].decode(), block.user_id[i].decode(),
                block.batch_id[i].decode(), int(block.seq[i]), int(block.order_ms[i]),
                int(block.period_start_ms[i]), body,
                body.index(PAYLOAD_KEY)))
    return found


# -- open-model HTTP ------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """A request ready to send (built before its step starts, so sending is cheap)."""

    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Exchange:
    """One request's fate, in seconds from its schedule's start (`time.perf_counter`). `sent_s`
    None: not sent (its time bound passed first). `failure` is "timeout" or
    "connection" when no HTTP answer came."""

    due_s: float
    sent_s: float | None
    done_s: float | None
    status: int | None
    failure: str | None

    @property
    def latency_ms(self) -> float | None:
        if self.sent_s is None or self.done_s is None:
            return None
        return (self.done_s - self.sent_s) * 1000.0


def uniform_offsets(count: int, rate_per_s: float) -> list[float]:
    """Arrival offsets (s) of `count` requests at `rate_per_s`: i / rate."""
    if not rate_per_s > 0 or count < 0:
        raise UsageError(f"a schedule needs a positive rate and a count >= 0, got "
                         f"{rate_per_s}/s and {count}")
    return [i / rate_per_s for i in range(count)]


async def send_at(session: aiohttp.ClientSession, base_url: str,
                  requests: Sequence[HttpRequest], offsets_s: Sequence[float], *,
                  timeout_s: float, send_window_s: float | None = None) -> list[Exchange]:
    """Send request i at offset i from now (open model: never waiting for answers), each
    with its own `timeout_s`; a request whose offset is past `send_window_s` (default:
    the last offset plus one second) when its turn comes is not sent. Returns when every
    sent request is answered or has timed out: at most `timeout_s` after the last send
    (plus one second of grace). Exchanges are in the order of `requests`."""
    if len(requests) != len(offsets_s):
        raise UsageError(f"{len(requests)} requests but {len(offsets_s)} offsets")
    # perf_counter, not loop.time(): uvloop's loop clock has millisecond steps
    loop, clock = asyncio.get_running_loop(), time.perf_counter
    start = clock()
    window = send_window_s if send_window_s is not None else max(offsets_s, default=0) + 1.0
    results: list[Exchange | None] = [None] * len(requests)
    limit = aiohttp.ClientTimeout(total=timeout_s)

    async def one(k: int) -> None:
        sent = clock() - start
        results[k] = Exchange(offsets_s[k], sent, None, None, "timeout")  # if cancelled
        status, failure = await _exchange(session, base_url, requests[k], limit)
        results[k] = Exchange(offsets_s[k], sent, clock() - start, status, failure)

    tasks: list[asyncio.Task[None]] = []
    order = sorted(range(len(requests)), key=offsets_s.__getitem__)
    next_up = 0
    while next_up < len(order) and offsets_s[order[next_up]] <= window:
        now = clock() - start
        if now > window:
            break  # too late for the rest: they are reported as not sent
        due = offsets_s[order[next_up]]
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while next_up < len(order) and offsets_s[order[next_up]] <= now:
            tasks.append(loop.create_task(one(order[next_up])))
            next_up += 1
    await _settle(tasks, timeout_s + 1.0)
    return [r if r is not None else Exchange(offsets_s[k], None, None, None, None)
            for k, r in enumerate(results)]


async def _settle(tasks: Sequence[asyncio.Task[None]], timeout_s: float) -> None:
    """Wait for `tasks` at most `timeout_s`; cancel the rest (their exchange says timeout)."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _exchange(session: aiohttp.ClientSession, base_url: str, request: HttpRequest,
                    limit: aiohttp.ClientTimeout) -> tuple[int | None, str | None]:
    """(status, None) for an HTTP answer; (None, "timeout" | "connection") for none."""
    try:
        async with session.request(request.method, base_url + request.path,
                                   data=request.body, headers=request.headers,
                                   timeout=limit) as answer:
            await answer.read()
            return answer.status, None
    except TimeoutError:  # aiohttp's ServerTimeoutError is one too
        return None, "timeout"
    except (aiohttp.ClientError, OSError):
        return None, "connection"


def new_session() -> aiohttp.ClientSession:
    """The generator's HTTP client: at most CONNECTIONS connections, and idle ones closed
    after KEEPALIVE_S, before uvicorn closes them (5 s): a request sent on a connection
    the server is closing fails with a disconnect that would count as a server error."""
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, keepalive_timeout=KEEPALIVE_S)
    return aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))


async def closed_loop(session: aiohttp.ClientSession, base_url: str,
                       requests: Sequence[HttpRequest],
                       concurrency: int = SETUP_CONCURRENCY) -> list[bytes]:
    """Send `requests` at most `concurrency` at a time (set-up, not measured); every
    answer must be 2xx (else SimulatorError naming it); returns the bodies in order."""
    gate = asyncio.Semaphore(concurrency)
    limit = aiohttp.ClientTimeout(total=60)

    async def one(request: HttpRequest) -> bytes:
        async with gate, session.request(request.method, base_url + request.path,
                                         data=request.body, headers=request.headers,
                                         timeout=limit) as answer:
            text = await answer.read()
            if answer.status // 100 != 2:
                raise SimulatorError(f"{request.method} {request.path} answered "
                                     f"{answer.status}: {text[:300]!r}")
            return text
    return list(await asyncio.gather(*(one(r) for r in requests)))


@dataclass(frozen=True)
class Device:
    """A registered device: its credentials and its user."""

    creds: Credentials
    user_id: str

    def upload(self, envelope: Envelope, batch_id: str) -> HttpRequest:
        """POST /upload of `envelope`'s payload as this device's, with `batch_id`."""
        body = envelope.resigned(self.creds.device_id, self.user_id, batch_id)
        return HttpRequest("POST", "/upload", body, self.creds.headers(batch_id))


async def register(session: aiohttp.ClientSession, base_url: str,
                    owners: Sequence[tuple[str, str]]) -> list[Device]:
    """Register (device id, user id) pairs with `POST /devices`."""
    bodies = await closed_loop(session, base_url, [
        HttpRequest("POST", "/devices", orjson.dumps({"device_id": d, "user_id": u}),
                    (("Content-Type", "application/json"),)) for d, u in owners])
    return [Device(Credentials(d, str(orjson.loads(b)["secret"])), u)
            for (d, u), b in zip(owners, bodies, strict=True)]


# -- a step's numbers -----------------------------------------------------------------------


@dataclass(frozen=True)
class CpuMark:
    """CPU seconds of this process, of the backend and of the whole machine (busy, in
    core-seconds), and the wall clock, at an instant."""

    own_s: float
    server_s: float
    machine_s: float
    wall_s: float

    @staticmethod
    def now(server: BackendProcess | None) -> CpuMark:
        own, machine = psutil.Process().cpu_times(), psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        return CpuMark(own.user + own.system, server.cpu_s() if server else 0.0,
                    sum(machine) - idle, time.monotonic())

    def shares(self, later: CpuMark) -> tuple[float, float, float]:
        """(this process, the backend, the machine) in cores busy since `self`."""
        wall = max(1e-9, later.wall_s - self.wall_s)
        return ((later.own_s - self.own_s) / wall, (later.server_s - self.server_s) / wall,
                (later.machine_s - self.machine_s) / wall)


def step_result(exchanges: Sequence[Exchange], offered_rate_per_s: float,
                cpu_shares: tuple[float, float, float] | None = None) -> StepResult:
    """A step's numbers from its exchanges (see `slo.StepResult`)."""
    sent = [e for e in exchanges if e.sent_s is not None]
    statuses = [e.status for e in sent if e.status is not None]
    latencies = [x for x in (e.latency_ms for e in sent) if x is not None]
    lags = [((e.sent_s or 0.0) - e.due_s) * 1000.0 for e in sent]
    last_sent = max((e.sent_s or 0.0 for e in sent), default=0.0)
    first_sent = min((e.sent_s or 0.0 for e in sent), default=0.0)
    last_done = max((e.done_s or 0.0 for e in sent), default=0.0)
    answered = sum(1 for e in sent if e.done_s is not None)
    generator, server, machine = cpu_shares if cpu_shares is not None else (None,) * 3
    return StepResult(
        offered_rate_per_s=offered_rate_per_s,
        duration_s=len(exchanges) / offered_rate_per_s,
        requests=len(exchanges), sent=len(sent),
        achieved_send_rate_per_s=len(sent) / (last_sent + 1 / offered_rate_per_s)
        if sent else 0.0,
        completed_per_s=answered / max(1e-9, last_done - first_sent) if answered else 0.0,
        latency_ms_p50=nearest_rank(latencies, 0.50),
        latency_ms_p95=nearest_rank(latencies, 0.95),
        latency_ms_p99=nearest_rank(latencies, 0.99),
        latency_ms_max=max(latencies, default=math.nan),
        ok=sum(1 for s in statuses if 200 <= s < 300),
        client_errors_4xx=sum(1 for s in statuses if 400 <= s < 500),
        errors_5xx=sum(1 for s in statuses if s >= 500),
        errors_timeout=sum(1 for e in sent if e.failure == "timeout"),
        errors_connection=sum(1 for e in sent if e.failure == "connection"),
        send_lag_ms_p99=nearest_rank(lags, 0.99) if lags else 0.0,
        generator_cpu_share=generator, server_cpu_share=server,
        machine_cpu_cores=machine)


async def count_rows(database_url: str, table: str, schema: str = "recommended") -> int:
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {namespace(schema)}.{table}"))
    finally:
        await conn.close()
