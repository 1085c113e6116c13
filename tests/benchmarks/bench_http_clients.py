"""Benchmark: which HTTP client should the fleet's `Transport` use? Uploads/s one client
process sustains against the real backend, per client library, with the client's CPU.

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    python tests/benchmarks/bench_http_clients.py [--seconds 10]
        [--concurrency 64] [--repeats 3] [--clients NAME,...] [--processes 2]

In one run it:

- generates base envelopes with `ggsim generate` and re-signs them per request (the
  registered device, its user, a fresh uuid4 batch_id), as `bench_backend.py` does, so
  every request is a new stored upload;
- starts an embedded PostgreSQL and `ggsim serve` on it in a SEPARATE process
  (`--schema recommended --jobs-interval 0`, clock after the envelopes);
- per repeat and per client, starts the client in its own process (a fresh interpreter,
  this file with `--worker`): it registers `--concurrency` devices through the client
  under test, waits for the go, then keeps `--concurrency` uploads in flight (one slot a
  device, one request at a time per slot) for `--seconds`. Every request carries the
  fleet's headers (`X-Device-Id`, `Authorization`, `Content-Type`, `Idempotency-Key`).
  Latency is from the call to having the whole response body. The worker's CPU is from
  `getrusage(RUSAGE_SELF)` over the timed part only;
- clients (`--clients`, all by default; repeats are interleaved across clients):
  `httpx-transport` the fleet's `HttpxTransport` as it is (uvloop),
  `httpx-transport-asyncio` the same on the plain asyncio loop,
  `httpx-tuned` one `httpx.AsyncClient` on `AsyncHTTPTransport(retries=0, http1=True,
  limits=C)`, pre-built `httpx.Headers`,
  `httpx-direct` pre-built `httpx.Request` straight into `AsyncHTTPTransport` (no Client
  layer: no header merging, cookies, auth, redirects),
  `httpcore` `httpcore.AsyncConnectionPool.request` (the layer under httpx),
  `aiohttp` `aiohttp.ClientSession` on `TCPConnector(limit=C)` keep-alive, no cookie jar,
  `raw` `bench_backend.py`'s asyncio streams client (pre-built heads; the upper bound);
- then the best library client (highest median uploads/s, `raw` excluded) in
  `--processes` processes at once, `--concurrency` split between them;
- after every run, checks that the rows added to `recommended.sensor_batches` equal the
  201s and that there was no other status;
- reports the CPU (cores) of the client process(es), the server, PostgreSQL and the whole
  machine (from /proc), since the server shares the machine's cores with the client.

uvloop runs every client's loop (except `*-asyncio`) when it is installed. Medians over
`--repeats`. Exit 1 if a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backend import (  # a sibling script, not a package
    CONTENT_LENGTH,
    Server,
    count_batches,
    cpu_s,
    generate,
    machine_busy,
    postgres_cpu_s,
    request_head,
    resign,
    start_server,
    until_ready,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "recommended"
CLIENTS = ("httpx-transport", "httpx-transport-asyncio", "httpx-tuned", "httpx-direct",
           "httpcore", "aiohttp", "raw")
LIBRARY_CLIENTS = tuple(c for c in CLIENTS if c != "raw")
TIMEOUT_S = 30.0

console = Console(width=None if sys.stdout.isatty() else 140)


# -- the clients under test (run inside a worker process) ----------------------------------

Headers = tuple[tuple[str, str], ...]


class Client:
    """One client library: `prepare` builds what can be built once per device (its
    headers), `post` sends one request and returns (status, whole body)."""

    name = ""

    def __init__(self, base_url: str, port: int, concurrency: int) -> None:
        self.base_url, self.port, self.concurrency = base_url, port, concurrency

    async def start(self) -> None:
        pass

    def prepare(self, headers: Headers) -> Any:
        return headers

    async def post(self, slot: int, path: str, body: bytes, prepared: Any,
                   batch_id: str) -> tuple[int, bytes]:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class HttpxTransportClient(Client):
    """The fleet's own `HttpxTransport`, called exactly as the runner calls it."""

    async def start(self) -> None:
        from simulator.drivers.network import HttpxTransport
        self.transport = HttpxTransport(self.base_url, timeout_s=TIMEOUT_S,
                                        max_connections=self.concurrency)

    async def post(self, slot: int, path: str, body: bytes, prepared: Any,
                   batch_id: str) -> tuple[int, bytes]:
        from simulator.phone.effects import Http
        headers = (*prepared, ("Idempotency-Key", batch_id)) if batch_id else prepared
        response = await self.transport(Http("POST", path, body, headers))
        return response.status, response.body

    async def close(self) -> None:
        await self.transport.aclose()


class HttpxTunedClient(Client):
    """One AsyncClient, explicit limits, http1 only, no retries, pre-built Headers."""

    async def start(self) -> None:
        import httpx
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        transport = httpx.AsyncHTTPTransport(limits=limits, http1=True, http2=False,
                                             retries=0)
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=TIMEOUT_S,
                                        transport=transport, follow_redirects=False)

    def prepare(self, headers: Headers) -> Any:
        import httpx
        return httpx.Headers(list(headers))

    async def post(self, slot: int, path: str, body: bytes, prepared: Any,
                   batch_id: str) -> tuple[int, bytes]:
        if batch_id:
            prepared = prepared.copy()
            prepared["Idempotency-Key"] = batch_id
        response = await self.client.post(path, content=body, headers=prepared)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


class HttpxDirectClient(Client):
    """Pre-built httpx.Request objects straight into AsyncHTTPTransport."""

    async def start(self) -> None:
        import httpx
        self.httpx = httpx
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        self.transport = httpx.AsyncHTTPTransport(limits=limits, http1=True, http2=False,
                                                  retries=0)
        self.timeout = {"connect": TIMEOUT_S, "read": TIMEOUT_S, "write": TIMEOUT_S,
                        "pool": TIMEOUT_S}

    def prepare(self, headers: Headers) -> Any:
        return [(k.encode(), v.encode()) for k, v in headers]

    async def post(self, slot: int, path: str, body: bytes, prepared: Any,
                   batch_id: str) -> tuple[int, bytes]:
        headers = [*prepared, (b"Idempotency-Key", batch_id.encode())] if batch_id else prepared
        request = self.httpx.Request("POST", self.base_url + path, headers=headers,
                                     content=body, extensions={"timeout": self.timeout})
        response = await self.transport.handle_async_request(request)
        try:
            content = await response.aread()
        finally:
            await response.aclose()
        return response.status_code, content

    async def close(self) -> None:
        await self.transport.aclose()


class HttpcoreClient(Client):
    """httpcore.AsyncConnectionPool.request: the connection pool under httpx."""

    async def start(self) -> None:
        import httpcore
        self.pool = httpcore.AsyncConnectionPool(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency,
            http1=True, http2=False, retries=0)
        self.extensions = {"timeout": {"connect": TIMEOUT_S, "read": TIMEOUT_S,
                                       "write": TIMEOUT_S, "pool": TIMEOUT_S}}

    def prepare(self, headers: Headers) -> Any:
        return [(k.encode(), v.encode()) for k, v in headers]

    async def post(self, slot: int, path: str, body: bytes, prepared: Any,
                   batch_id: str) -> tuple[int, bytes]:
        headers = [*prepared, (b"Idempotency-Key", batch_id.encode())] if batch_id else prepared
        response = await self.pool.request("POST", self.base_url + path, headers=headers,
                                           content=body, extensions=self.extensions)
        return response.status, response.content

    async def close(self) -> None:
        await self.pool.aclose()


class AiohttpClient(Client):
    """aiohttp.ClientSession, TCPConnector(limit=C), keep-alive, no cookie jar."""

    async def start(self) -> None:
        import aiohttp
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0,
                                         keepalive_timeout=60.0, force_close=False)
        self.session = aiohttp.ClientSession(
            base_url=self.base_url, connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), auto_decompress=False)

    def prepare(self, headers: Headers) -> Any:
        return dict(headers)

    async def post(self, slot: int, path: str, body: bytes, prepared: Any,
                   batch_id: str) -> tuple[int, bytes]:
        if batch_id:
            prepared = {**prepared, "Idempotency-Key": batch_id}
        async with self.session.post(path, data=body, headers=prepared) as response:
            return response.status, await response.read()

    async def close(self) -> None:
        await self.session.close()


class RawClient(Client):
    """bench_backend.py's client: one keep-alive asyncio stream per slot, heads built by
    hand, the response parsed by a regex. Not a real client (no chunked bodies, no
    reconnects): the upper bound of what Python on this loop can send."""

    async def start(self) -> None:
        self.streams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def post(self, slot: int, path: str, body: bytes, prepared: Any,
                   batch_id: str) -> tuple[int, bytes]:
        stream = self.streams.get(slot)
        if stream is None:
            stream = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
            self.streams[slot] = stream
        reader, writer = stream
        extra = (*prepared, ("Idempotency-Key", batch_id)) if batch_id else prepared
        head = request_head("POST", path, self.port, len(body),
                            tuple(kv for kv in extra if kv[0] != "Content-Type"))
        writer.write(head + body)
        header = await reader.readuntil(b"\r\n\r\n")
        found = CONTENT_LENGTH.search(header)
        content = await reader.readexactly(int(found.group(1))) if found else b""
        return int(header[9:12]), content

    async def close(self) -> None:
        for _, writer in self.streams.values():
            writer.close()


CLIENT_CLASSES: dict[str, type[Client]] = {
    "httpx-transport": HttpxTransportClient, "httpx-transport-asyncio": HttpxTransportClient,
    "httpx-tuned": HttpxTunedClient, "httpx-direct": HttpxDirectClient,
    "httpcore": HttpcoreClient, "aiohttp": AiohttpClient, "raw": RawClient,
}


# -- the worker process ----------------------------------------------------------------------

def load_tails(path: Path) -> list[tuple[int, bytes]]:
    return [(seq, tail.encode()) for seq, tail in orjson.loads(path.read_bytes())]


async def work(spec: dict[str, Any]) -> dict[str, Any]:
    tails = load_tails(Path(spec["tails"]))
    client = CLIENT_CLASSES[spec["client"]](spec["url"], spec["port"], spec["concurrency"])
    await client.start()
    tag, slots = spec["tag"], spec["concurrency"]
    base = ("Content-Type", "application/json")
    devices: list[tuple[str, str, Any]] = []

    async def register(slot: int) -> None:
        device_id, user_id = f"hc-{tag}-d{slot:04d}", f"hc-{tag}-u{slot:04d}"
        body = orjson.dumps({"device_id": device_id, "user_id": user_id})
        status, answer = await client.post(slot, "/devices", body, client.prepare((base,)), "")
        if status != 201:
            raise RuntimeError(f"registering {device_id}: {status} {answer[:200]!r}")
        secret = orjson.loads(answer)["secret"]
        devices.append((device_id, user_id, client.prepare(
            (("X-Device-Id", device_id), ("Authorization", f"Bearer {secret}"), base))))

    await asyncio.gather(*(register(s) for s in range(slots)))
    devices.sort()
    print("ready", flush=True)
    sys.stdin.readline()  # the go (blocking on purpose: nothing else to run meanwhile)

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    counter = [slots * 7919 * (spec["index"] + 1)]  # spread the tails across processes
    clock = time.perf_counter
    max_uploads = spec["max_uploads"]
    sent = [0]

    async def slot_loop(slot: int) -> None:
        device_id, user_id, prepared = devices[slot]
        while clock() < deadline and sent[0] < max_uploads:
            sent[0] += 1
            counter[0] += 1
            seq, tail = tails[counter[0] % len(tails)]
            batch_id = str(uuid.uuid4())
            body = resign(device_id, user_id, seq, batch_id, tail)
            began = clock()
            try:
                status, answer = await client.post(slot, "/upload", body, prepared, batch_id)
            except Exception as exc:  # a client failure is a result, not a crash
                status, answer = 0, repr(exc).encode()
            latencies.append(clock() - began)
            statuses[status] += 1
            if status != 201 and len(errors) < 5:
                errors.append(f"{status} {answer[:300]!r}")

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    began = clock()
    deadline = began + spec["seconds"]
    await asyncio.gather(*(slot_loop(s) for s in range(slots)))
    elapsed = clock() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    await client.close()
    return {"uploads": statuses.get(201, 0), "elapsed_s": elapsed, "cpu_s": cpu,
            "statuses": {str(k): v for k, v in statuses.items()}, "errors": errors,
            "latencies_ms": [round(x * 1e3, 3) for x in latencies],
            "loop": type(asyncio.get_running_loop()).__module__}


def worker_main() -> int:
    spec = json.loads(sys.stdin.readline())
    if spec["client"].endswith("-asyncio"):
        result = asyncio.run(work(spec))
    else:
        try:
            import uvloop
        except ImportError:
            result = asyncio.run(work(spec))
        else:
            result = uvloop.run(work(spec))
    print(json.dumps(result), flush=True)
    return 0


# -- the parent: server, runs, checks -------------------------------------------------------

@dataclass
class Run:
    client: str
    processes: int
    uploads: int
    elapsed_s: float
    latencies_ms: list[float]
    client_cores: float
    cpu: dict[str, float] = field(default_factory=dict)
    loop: str = ""

    @property
    def rate(self) -> float:
        return self.uploads / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def per_core(self) -> float:
        return self.rate / self.client_cores if self.client_cores else float("nan")

    def quantile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_clients(client: str, processes: int, concurrency: int, args: argparse.Namespace,
                server: Server, db: Any, tails: Path, tag: str,
                problems: list[str]) -> Run:
    """Start `processes` workers of `client`, wait for all to register, start them
    together, collect, check rows against 201s."""
    per = [concurrency // processes + (1 if i < concurrency % processes else 0)
           for i in range(processes)]
    workers: list[subprocess.Popen[str]] = []
    logs: list[Any] = []
    def watchdog() -> None:  # bounded: a stuck run is killed (and reported as failed)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

    timer = threading.Timer(args.seconds + 240.0, watchdog)
    timer.start()
    with contextlib.ExitStack() as files:
        try:
            return _run_workers(client, per, args, server, db, tails, tag, problems,
                                workers, logs, files)
        finally:
            timer.cancel()
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()


def _run_workers(client: str, per: list[int], args: argparse.Namespace, server: Server,
                 db: Any, tails: Path, tag: str, problems: list[str],
                 workers: list[subprocess.Popen[str]], logs: list[Any],
                 files: contextlib.ExitStack) -> Run:
    processes = len(per)
    for i, slots in enumerate(per):
        log = files.enter_context(tempfile.TemporaryFile("w+"))  # noqa: SIM115
        logs.append(log)
        worker = subprocess.Popen([sys.executable, __file__, "--worker"], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=log, text=True)
        spec = {"client": client, "url": server.url, "port": server.port,
                "concurrency": slots, "seconds": args.seconds, "tails": str(tails),
                "tag": f"{tag}-p{i}", "index": i,
                "max_uploads": args.max_uploads // processes}
        assert worker.stdin is not None
        worker.stdin.write(json.dumps(spec) + "\n")
        worker.stdin.flush()
        workers.append(worker)

    def failed(worker: subprocess.Popen[str], i: int, what: str) -> SystemExit:
        logs[i].seek(0)
        return SystemExit(f"{client} worker {i} {what}: {logs[i].read()[-3000:]}")

    for i, worker in enumerate(workers):
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != "ready":
            raise failed(worker, i, "did not get ready")
    before = count_batches(db, SCHEMA)
    data_dir = db_socket_dir(db)
    marks = (cpu_s(server.process.pid), postgres_cpu_s(data_dir), machine_busy())
    began = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for i, worker in enumerate(workers):
        assert worker.stdout is not None
        line = worker.stdout.readline()  # bounded: the worker stops at its deadline
        if not line:
            raise failed(worker, i, "ended without a result")
        results.append(json.loads(line))
    wall = time.perf_counter() - began
    ends = (cpu_s(server.process.pid), postgres_cpu_s(data_dir), machine_busy())
    for worker in workers:
        worker.wait(timeout=60)
    rows = count_batches(db, SCHEMA) - before
    uploads = sum(r["uploads"] for r in results)
    elapsed = max(r["elapsed_s"] for r in results)
    client_cpu = sum(r["cpu_s"] for r in results)
    run = Run(client, processes, uploads, elapsed,
              [x for r in results for x in r["latencies_ms"]], client_cpu / elapsed,
              loop=results[0]["loop"])
    run.cpu = {"server": (ends[0] - marks[0]) / wall, "postgres": (ends[1] - marks[1]) / wall,
               "machine": (ends[2][0] - marks[2][0]) / max(1, ends[2][1] - marks[2][1])
               * (os.cpu_count() or 1)}
    # what else ran on the machine meanwhile (another job, the kernel's loopback softirqs)
    run.cpu["other"] = max(0.0, run.cpu["machine"] - run.client_cores * elapsed / wall
                           - run.cpu["server"] - run.cpu["postgres"])
    if rows != uploads:
        problems.append(f"{client} x{processes} {tag}: {rows} rows added to sensor_batches, "
                        f"{uploads} 201s")
    others: Counter[str] = Counter()
    for r in results:
        others.update({s: n for s, n in r["statuses"].items() if s != "201"})
    if others:
        problems.append(f"{client} x{processes} {tag}: other statuses {dict(others)}; "
                        f"first: {[e for r in results for e in r['errors']][:3]}")
    return run


def db_socket_dir(db: Any) -> str:
    from urllib.parse import parse_qs, urlsplit
    parts = urlsplit(db.url)
    return parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="load per run (10)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="in-flight requests (= devices) per client (64)")
    parser.add_argument("--repeats", type=int, default=3, help="report the median of (3)")
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help=f"comma-separated, of: {', '.join(CLIENTS)} (all)")
    parser.add_argument("--processes", type=int, default=2,
                        help="the best library client in this many processes; 1: skip (2)")
    parser.add_argument("--max-uploads", type=int, default=100_000,
                        help="at most this many uploads per run (100,000)")
    parser.add_argument("--phones", type=int, default=20, help="base envelopes: phones (20)")
    parser.add_argument("--hours", type=float, default=12.0, help="base envelopes: hours (12)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in args.clients if c not in CLIENTS]
    if unknown:
        parser.error(f"unknown clients {unknown}; known: {', '.join(CLIENTS)}")
    if min(args.concurrency, args.repeats, args.processes, args.max_uploads) < 1 \
            or args.seconds <= 0:
        parser.error("--seconds, --concurrency, --repeats, --processes, --max-uploads must "
                     "be positive")
    return args


def summary_row(runs: list[Run]) -> list[str]:
    def med(values: list[float]) -> float:
        return statistics.median(values)
    first = runs[0]
    name = first.client + (f" x{first.processes} procs" if first.processes > 1 else "")
    return [name, "uvloop" if "uvloop" in first.loop else "asyncio",
            f"{med([r.rate for r in runs]):,.0f}",
            f"{med([r.quantile(0.5) for r in runs]):.1f}",
            f"{med([r.quantile(0.99) for r in runs]):.1f}",
            f"{med([r.client_cores for r in runs]):.2f}",
            f"{med([r.per_core for r in runs]):,.0f}",
            f"{med([r.cpu['server'] for r in runs]):.2f}",
            f"{med([r.cpu['postgres'] for r in runs]):.2f}",
            f"{med([r.cpu['other'] for r in runs]):.2f}",
            f"{med([r.cpu['machine'] for r in runs]):.2f}",
            ", ".join(f"{r.rate:,.0f}" for r in runs)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main()
    from simulator.backend.postgres import open_database
    from simulator.instants import format_instant

    try:
        import uvloop
        loop_note = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop_note = "plain asyncio (uvloop not installed)"
    console.print(f"[bold]bench_http_clients[/]: Python {platform.python_version()}, "
                  f"{os.cpu_count()} CPUs, C={args.concurrency} in flight, "
                  f"{args.seconds:g} s x {args.repeats} repeats; client loop: {loop_note}")
    versions = []
    for module in ("httpx", "httpcore", "h11", "aiohttp"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} not installed")
            if module == "aiohttp" and "aiohttp" in args.clients:
                args.clients.remove("aiohttp")
    console.print("versions: " + ", ".join(versions))

    problems: list[str] = []
    results: dict[str, list[Run]] = {c: [] for c in args.clients}
    with tempfile.TemporaryDirectory(prefix="bench-http-clients-") as tmp:
        directory = Path(tmp)
        envelopes = generate(args.phones, args.hours, args.seed, directory)
        tails = directory / "tails.json"
        tails.write_bytes(orjson.dumps([(s, t.decode()) for s, t in envelopes.tails]))
        console.print(f"{len(envelopes.tails):,} base envelopes; backend clock starts at "
                      f"{format_instant(envelopes.clock_start_ms)}")
        with open_database() as db:
            server = start_server(db, SCHEMA, envelopes.clock_start_ms,
                                  extra=("--jobs-interval", "0"))
            console.print(f"server pid {server.process.pid} at {server.url}")
            try:
                asyncio.run(until_ready(server.port))
                run_clients("raw", 1, min(8, args.concurrency),
                            argparse.Namespace(**{**vars(args), "seconds": 2.0}), server, db,
                            tails, "warmup", problems)
                for r in range(args.repeats):
                    for client in args.clients:
                        run = run_clients(client, 1, args.concurrency, args, server, db,
                                          tails, f"{client}-r{r}", problems)
                        results[client].append(run)
                        console.print(
                            f"repeat {r + 1} {client:24} {run.rate:7,.0f} uploads/s, p50 "
                            f"{run.quantile(0.5):6.1f} ms, p99 {run.quantile(0.99):6.1f} ms, "
                            f"client {run.client_cores:.2f} cores ({run.per_core:,.0f} "
                            f"uploads/client-core-s), server {run.cpu['server']:.2f}, "
                            f"postgres {run.cpu['postgres']:.2f}, other "
                            f"{run.cpu['other']:.2f}, machine {run.cpu['machine']:.2f}")
                libraries = [c for c in args.clients if c in LIBRARY_CLIENTS]
                best = max(libraries, key=lambda c: statistics.median(
                    x.rate for x in results[c])) if libraries else None
                multi: list[Run] = []
                if best is not None and args.processes > 1:
                    for r in range(args.repeats):
                        run = run_clients(best, args.processes, args.concurrency, args,
                                          server, db, tails, f"{best}-multi-r{r}", problems)
                        multi.append(run)
                        console.print(
                            f"repeat {r + 1} {best} x{args.processes} procs "
                            f"{run.rate:7,.0f} uploads/s, client {run.client_cores:.2f} cores, "
                            f"other {run.cpu['other']:.2f}, machine {run.cpu['machine']:.2f}")
            finally:
                code = server.stop()
            if code != 0:
                problems.append(f"the server exited {code}: {''.join(server.log[-20:])}")

    table = Table(title=f"HTTP clients against ggsim serve, C={args.concurrency}, "
                        f"{args.seconds:g} s, medians of {args.repeats} "
                        f"({os.cpu_count()} CPUs shared with server and PostgreSQL)")
    for column in ("client", "loop", "uploads/s", "p50 ms", "p99 ms", "client cores",
                   "uploads / client core-s", "server cores", "pg cores", "other cores",
                   "machine cores", "runs uploads/s"):
        table.add_column(column, justify="left" if column in ("client", "loop") else "right")
    for client in args.clients:
        table.add_row(*summary_row(results[client]))
    if multi:
        table.add_row(*summary_row(multi))
    console.print(table)

    def med(client: str, what: str) -> float:
        return statistics.median(getattr(r, what) for r in results[client])

    if best is not None:
        efficient = max(libraries, key=lambda c: med(c, "per_core"))
        line = (f"recommendation: {best} has the highest uploads/s of the library clients "
                f"({med(best, 'rate'):,.0f}/s at {med(best, 'client_cores'):.2f} client "
                f"cores); {efficient} the most uploads per client-core-second "
                f"({med(efficient, 'per_core'):,.0f}).")
        if "httpx-transport" in results and best != "httpx-transport":
            line += (f" Today's HttpxTransport: {med('httpx-transport', 'rate'):,.0f}/s, "
                     f"{med('httpx-transport', 'per_core'):,.0f} per client-core-s.")
        if multi:
            line += (f" {best} in {args.processes} processes: "
                     f"{statistics.median(r.rate for r in multi):,.0f}/s (machine "
                     f"{statistics.median(r.cpu['machine'] for r in multi):.2f} of "
                     f"{os.cpu_count()} cores busy).")
        console.print(f"[bold]{line}[/]")
    for problem in problems:
        console.print(f"[red]CHECK FAILED[/] {problem}")
    console.print("rows in sensor_batches vs 201s, every run: "
                  + ("ok" if not problems else "[red]FAILED[/]"))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
