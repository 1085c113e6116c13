"""Benchmark: sustained end-to-end uploads/s of the reference backend, against the raw
single-row JSONB insert rate of the same PostgreSQL (pgbench).

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    python tests/benchmarks/bench_backend.py [--seconds 20] [--users 32]
        [--repeats 3] [--schema recommended] [--profile FILE]

In one run it:

- generates envelopes with `ggsim generate` (`--phones` x `--hours`, 12 a phone-hour);
- starts an embedded PostgreSQL here, and `ggsim serve` on it in a SEPARATE process
  (`python -m simulator.cli serve --port 0 --database-url ...`), so the load generator
  below does not share the server's GIL;
- per repeat, `--users` virtual phones: each registers its own device (`POST /devices`)
  and then uploads, one request at a time on its own keep-alive connection, distinct
  batches (a base envelope re-signed with that device, its user and a fresh batch_id,
  so every request is a new stored upload) for `--seconds` or `--max-uploads`, whichever
  comes first. The load generator is a small asyncio client (uvloop if installed) over
  raw streams with pre-built request heads: cheap per request, so the server is what is
  measured. Latency is from writing the request to reading the whole response;
- after each repeat, checks that the rows added to `<schema>.sensor_batches` equal the
  201s (and that there was no other status);
- runs pgbench on the same database: single-row `INSERT INTO bench_jsonb (doc) VALUES
  ('<a real payload>')`, `-M simple -c 8 -j 2 -T --pgbench-seconds` (with `-M prepared`
  pgbench would read `:name` inside the JSON as a variable);
- reports the CPU (in cores) of the load generator, the server, PostgreSQL, the whole
  machine and what else ran meanwhile (from /proc), so a number taken on a busy machine
  shows as such;
- with `--profile FILE`, one more short run with the server under cProfile, and prints
  its top functions by cumulative time.

Reports medians over repeats; PASS if the end-to-end median is at least 1,000 uploads/s
(exit 1 otherwise, or if a check failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import pstats
import re
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
from rich.console import Console
from rich.table import Table

from simulator.backend.migrations import namespace
from simulator.backend.postgres import Database, open_database
from simulator.instants import format_instant

TARGET_UPLOADS_S = 1_000.0
ROOT = Path(__file__).resolve().parents[2]
PAYLOAD_KEY = b',"payload":'
SERVE_LINE = re.compile(r"ggsim serve: (http://127\.0\.0\.1:(\d+))")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)

console = Console(width=None if sys.stdout.isatty() else 120)


# -- envelopes ---------------------------------------------------------------------------

@dataclass
class Envelopes:
    """Base envelopes split at `,"payload":` (the tail is re-used as is), and the instant
    the backend clock must start at so that no payload is in its future."""

    tails: list[tuple[int, bytes]]  # (seq, b',"payload":{...}}')
    clock_start_ms: int
    sample_payload: bytes  # one payload's JSON text, for pgbench


def ggsim_script() -> str:
    """The `ggsim` console script of the environment running this benchmark (wherever its
    virtual environment lives), not a fixed `.venv`."""
    script = Path(sysconfig.get_path("scripts")) / ("ggsim.exe" if os.name == "nt" else "ggsim")
    if not script.exists():
        raise SystemExit(f"no ggsim script at {script}: install the project into this "
                         f"environment (pip install -e .)")
    return str(script)


def generate(phones: int, hours: float, seed: int, directory: Path) -> Envelopes:
    out = directory / "envelopes.jsonl"
    subprocess.run([ggsim_script(), "generate", "--phones", str(phones),
                    "--hours", str(hours), "--seed", str(seed),
                    "--start", "2024-01-01T00:00:00Z", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tails: list[tuple[int, bytes]] = []
    latest = 0
    with out.open("rb") as lines:
        for line in lines:
            line = line.rstrip(b"\n")
            envelope = orjson.loads(line)
            latest = max(latest, envelope["payload"]["timestamp"])
            tails.append((envelope["seq"], line[line.index(PAYLOAD_KEY):]))
    out.unlink()
    # the payload as the phone sent it (the bytes the backend stores), of median size
    seq, tail = sorted(tails, key=lambda st: len(st[1]))[len(tails) // 2]
    sample = tail[len(PAYLOAD_KEY):-1]
    # check the re-signing: the same payload, the new ids
    body = orjson.loads(resign("d-x", "u-x", seq, "00000000-0000-4000-8000-000000000000", tail))
    assert body["payload"] == orjson.loads(sample) and body["device_id"] == "d-x", "re-signing"
    return Envelopes(tails, latest + 3_600_000, sample)


def resign(device_id: str, user_id: str, seq: int, batch_id: str, tail: bytes) -> bytes:
    return (b'{"device_id":"%s","user_id":"%s","seq":%d,"batch_id":"%s"'
            % (device_id.encode(), user_id.encode(), seq, batch_id.encode())) + tail


# -- the server ----------------------------------------------------------------------------

@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    port: int
    log: list[str] = field(default_factory=list)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(db: Database, schema: str, clock_start_ms: int,
                 profile: Path | None = None, extra: tuple[str, ...] = ()) -> Server:
    """`ggsim serve` in its own process (with `extra` options), its URL read from its
    first line; its log kept."""
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    command = [*python, "-m", "simulator.cli", "serve", "--port", "0", "--database-url",
               db.url, "--clock-start", format_instant(clock_start_ms), "--schema", schema,
               *extra]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    first = process.stderr.readline()
    found = SERVE_LINE.search(first)
    if not found:
        rest = process.stderr.read() if process.poll() is not None else ""
        process.kill()
        raise SystemExit(f"the server did not start: {first}{rest}")
    server = Server(process, found.group(1), int(found.group(2)), [first])

    def drain() -> None:  # keep the pipe from filling; kept for the report
        assert process.stderr is not None
        for text in process.stderr:
            server.log.append(text)

    threading.Thread(target=drain, daemon=True).start()
    return server


# -- the load generator --------------------------------------------------------------------

def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s(data_dir: str) -> float:
    """CPU seconds of this benchmark's PostgreSQL: the postmaster whose command line names
    `data_dir`, and its live children (backends, WAL writer, ...); not any other one."""
    parents: dict[int, int] = {}
    postmaster = None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                pid = int(entry.name)
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[pid] = int(stat[1])
                if data_dir.encode() in (entry / "cmdline").read_bytes():
                    postmaster = pid
    if postmaster is None:
        return 0.0
    return sum(cpu_s(pid) for pid, parent in parents.items()
               if pid == postmaster or parent == postmaster)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class Outcome:
    uploads: int  # 201s
    elapsed_s: float
    latencies_s: list[float]
    statuses: Counter[int]
    errors: list[str]
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core, by process

    @property
    def rate(self) -> float:
        return self.uploads / self.elapsed_s if self.elapsed_s else 0.0

    def quantile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   head: bytes, body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a keep-alive connection: (status, response body)."""
    writer.write(head + body)
    header = await reader.readuntil(b"\r\n\r\n")
    found = CONTENT_LENGTH.search(header)
    content = await reader.readexactly(int(found.group(1))) if found else b""
    return int(header[9:12]), content


def request_head(method: str, path: str, port: int, length: int,
                 extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json", f"Content-Length: {length}",
             *(f"{k}: {v}" for k, v in extra)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def phone_session(port: int, device_id: str, user_id: str, envelopes: Envelopes,
                        next_index: list[int], limit: int, deadline: list[float],
                        ready: asyncio.Event, registered: list[int],
                        outcome: Outcome) -> None:
    """One virtual phone: register, wait for the start, upload until the deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        body = orjson.dumps({"device_id": device_id, "user_id": user_id})
        status, answer = await exchange(reader, writer,
                                        request_head("POST", "/devices", port, len(body)), body)
        if status != 201:
            raise RuntimeError(f"registering {device_id}: {status} {answer[:200]!r}")
        secret = orjson.loads(answer)["secret"]
        registered[0] += 1
        await ready.wait()
        tails = envelopes.tails
        auth = (("X-Device-Id", device_id), ("Authorization", f"Bearer {secret}"))
        clock = time.perf_counter
        while next_index[0] < limit and clock() < deadline[0]:
            index = next_index[0]
            next_index[0] += 1
            seq, tail = tails[index % len(tails)]
            upload = resign(device_id, user_id, seq, str(uuid.uuid4()), tail)
            head = request_head("POST", "/upload", port, len(upload), auth)
            began = clock()
            status, answer = await exchange(reader, writer, head, upload)
            outcome.latencies_s.append(clock() - began)
            outcome.statuses[status] += 1
            if status == 201:
                outcome.uploads += 1
            elif len(outcome.errors) < 5:
                outcome.errors.append(f"{status} {answer[:300]!r}")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def until_ready(port: int, timeout_s: float = 120.0) -> None:
    """Wait for GET /healthz to answer 200 (the server migrates before it serves)."""
    deadline = time.monotonic() + timeout_s
    head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                status, _ = await exchange(reader, writer, head, b"")
            finally:
                writer.close()
            if status == 200:
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} is not ready after {timeout_s} s")
        await asyncio.sleep(0.1)


async def load(port: int, run_tag: str, users: int, seconds: float, max_uploads: int,
               envelopes: Envelopes) -> Outcome:
    await until_ready(port)
    outcome = Outcome(0, 0.0, [], Counter(), [])
    ready = asyncio.Event()
    next_index, deadline, registered = [0], [float("inf")], [0]
    tasks = [asyncio.create_task(phone_session(
        port, f"bench-{run_tag}-p{u:05d}", f"bench-user-{run_tag}-{u:05d}", envelopes,
        next_index, max_uploads, deadline, ready, registered, outcome)) for u in range(users)]
    while registered[0] < users:  # every phone registered before the clock starts
        done = [t for t in tasks if t.done()]
        if done:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            done[0].result()  # raises the failure
        await asyncio.sleep(0.01)
    began = time.perf_counter()
    deadline[0] = began + seconds
    ready.set()
    await asyncio.gather(*tasks)  # in-flight requests finish after the deadline
    outcome.elapsed_s = time.perf_counter() - began
    return outcome


def run_load(*args: object) -> Outcome:
    try:
        import uvloop
        return uvloop.run(load(*args))  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(load(*args))  # type: ignore[arg-type]


# -- the database --------------------------------------------------------------------------

def connection_args(db: Database) -> list[str]:
    """psql/pgbench connection options from the URL (Unix socket dir in `?host=`)."""
    parts = urlsplit(db.url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    args = ["-h", host, "-U", parts.username or "postgres"]
    if parts.port:
        args += ["-p", str(parts.port)]
    return args


def dbname(db: Database) -> str:
    return urlsplit(db.url).path.lstrip("/") or "postgres"


def psql(db: Database, sql: str) -> str:
    done = subprocess.run([str(db.bin_dir / "psql"), *connection_args(db), "-d", dbname(db),
                           "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


def count_batches(db: Database, schema: str) -> int:
    return int(psql(db, f"SELECT count(*) FROM {namespace(schema)}.sensor_batches"))


def pgbench(db: Database, payload: bytes, seconds: int, clients: int,
            directory: Path) -> tuple[float, int]:
    """(inserts/s, rows inserted) of single-row JSONB inserts of `payload`."""
    psql(db, "DROP TABLE IF EXISTS bench_jsonb; "
             "CREATE TABLE bench_jsonb (id bigserial PRIMARY KEY, doc jsonb)")
    literal = payload.decode().replace("'", "''")
    script = directory / "insert_jsonb.sql"
    script.write_text(f"INSERT INTO bench_jsonb (doc) VALUES ('{literal}');\n")
    done = subprocess.run([str(db.bin_dir / "pgbench"), "-n", "-M", "simple", "-c", str(clients),
                           "-j", "2", "-T", str(seconds), "-f", str(script),
                           *connection_args(db), dbname(db)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if not found:
        raise SystemExit(f"no tps in pgbench's output:\n{done.stdout}")
    rows = int(psql(db, "SELECT count(*) FROM bench_jsonb"))
    psql(db, "DROP TABLE bench_jsonb")
    return float(found.group(1)), rows


# -- the report ----------------------------------------------------------------------------

# pure pass-through frames (ASGI middleware, routing, start-up): on top of every request
WRAPPERS = re.compile(r"(runpy|importlib|/cli\.py|/server\.py|runners\.py|_compat\.py|"
                      r"starlette/(middleware|routing|applications|_exception_handler)|"
                      r"proxy_headers\.py)|^<string>$|^~$")
SITE_PACKAGE = re.compile(r"site-packages/([A-Za-z_]+)")
PACKAGES = re.compile(r"/(simulator)/|python3\.\d+/([a-z_]+)")


def package_of(key: tuple[str, int, str]) -> str:
    path, _, name = key
    if path == "~":  # a C function: its module is in the name when it has one
        found = re.search(r"(msgspec|orjson|asyncpg|uvloop|httptools|_hashlib|_asyncio|"
                          r"_uuid|posix|select)", name)
        return f"C: {found.group(1) if found else 'builtins'}"
    if path.endswith("asyncio/runners.py") and name == "run":
        return "event loop's own time (uvloop C: socket I/O, httptools parsing)"
    found = SITE_PACKAGE.search(path) or PACKAGES.search(path)
    return next((g for g in found.groups() if g), "?") if found else "?"


def top_functions(profile: Path, requests: int, count: int = 15) -> str:
    """Self time by package, then the top `count` functions by cumulative time without the
    pass-through frames, then by self time."""
    stats = pstats.Stats(str(profile))
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values())
    by_package: Counter[str] = Counter()
    for key, entry in table.items():
        by_package[package_of(key)] += entry[2]

    def row(key: tuple[str, int, str], entry: tuple[int, int, float, float, object]) -> str:
        path, line, name = key
        where = name if path == "~" else f"{Path(path).parent.name}/{Path(path).name}:{line}"
        label = where if path == "~" else f"{where}({name})"
        return (f"  {entry[3]:7.3f} {entry[2]:7.3f} {entry[1]:8d}  "
                f"{entry[3] / max(1, requests) * 1e6:7.0f}  {label}")

    lines = [f"profiled: {total:.2f} s of CPU in Python frames for {requests:,} requests "
             f"({total / max(1, requests) * 1e3:.2f} ms each; uvloop/httptools C work "
             "shows as the loop's own time)", "self time by package:"]
    lines += [f"  {seconds:7.3f} s {seconds / total:6.1%}  {name}"
              for name, seconds in by_package.most_common(12)]
    heading = "  cum s   self s    calls  cum us/req  function"
    ranked = [(k, e) for k, e in table.items() if not WRAPPERS.search(k[0])]
    lines += [f"top {count} by cumulative time (ASGI middleware, routing and start-up "
              "frames left out; a coroutine counts each resume as a call):", heading]
    lines += [row(k, e) for k, e in sorted(ranked, key=lambda ke: -ke[1][3])[:count]]
    lines += [f"top {count} by self time:", heading]
    lines += [row(k, e) for k, e in sorted(table.items(), key=lambda ke: -ke[1][2])[:count]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="load per repeat (20)")
    parser.add_argument("--users", type=int, default=32,
                        help="virtual phones = concurrent connections (32)")
    parser.add_argument("--repeats", type=int, default=3, help="report the median of (3)")
    parser.add_argument("--schema", choices=("as-is", "recommended"), default="recommended")
    parser.add_argument("--max-uploads", type=int, default=200_000,
                        help="at most this many uploads per repeat (200,000)")
    parser.add_argument("--phones", type=int, default=200, help="base envelopes: phones (200)")
    parser.add_argument("--hours", type=float, default=12.0, help="base envelopes: hours (12)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--pgbench-clients", type=int, default=8)
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="one more short run with the server under cProfile, to FILE")
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    if args.users < 1 or args.repeats < 1 or args.seconds <= 0 or args.max_uploads < 1:
        parser.error("--users, --repeats, --seconds and --max-uploads must be positive")
    return args


def measured_run(db: Database, server: Server, args: argparse.Namespace, tag: str,
                 seconds: float, envelopes: Envelopes) -> tuple[Outcome, int, list[str]]:
    """One load run and its checks: (outcome, rows added, problems)."""
    before = count_batches(db, args.schema)
    data_dir = connection_args(db)[1]  # the socket directory is the data directory
    marks = (time.process_time(), cpu_s(server.process.pid), postgres_cpu_s(data_dir),
             machine_busy())
    outcome = run_load(server.port, tag, args.users, seconds, args.max_uploads, envelopes)
    ends = (time.process_time(), cpu_s(server.process.pid), postgres_cpu_s(data_dir),
            machine_busy())
    rows = count_batches(db, args.schema) - before
    # includes registration (a few ms); the load generator's share includes this process
    wall = outcome.elapsed_s
    outcome.cpu = {"load generator": (ends[0] - marks[0]) / wall,
                   "server": (ends[1] - marks[1]) / wall,
                   "postgres": (ends[2] - marks[2]) / wall,
                   "machine": (ends[3][0] - marks[3][0]) / max(1, ends[3][1] - marks[3][1])
                   * (os.cpu_count() or 1)}
    # what else ran on the machine meanwhile (other users' work, the kernel's softirqs)
    outcome.cpu["other"] = max(0.0, outcome.cpu["machine"] - sum(
        outcome.cpu[k] for k in ("load generator", "server", "postgres")))
    problems = []
    if rows != outcome.uploads:
        problems.append(f"run {tag}: {rows} rows added to sensor_batches, {outcome.uploads} 201s")
    others = {s: n for s, n in outcome.statuses.items() if s != 201}
    if others:
        problems.append(f"run {tag}: other statuses {others}; first: {outcome.errors}")
    return outcome, rows, problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console.print(f"[bold]bench_backend[/]: {platform.python_version()}, {os.cpu_count()} CPUs, "
                  f"schema {args.schema}, {args.users} users, {args.seconds:g} s x "
                  f"{args.repeats} repeats")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-backend-") as tmp:
        directory = Path(tmp)
        began = time.perf_counter()
        envelopes = generate(args.phones, args.hours, args.seed, directory)
        console.print(f"generated {len(envelopes.tails):,} base envelopes "
                      f"({sum(len(t) for _, t in envelopes.tails) / len(envelopes.tails):,.0f} "
                      f"B payload part) in {time.perf_counter() - began:.1f} s; backend clock "
                      f"starts at {format_instant(envelopes.clock_start_ms)}")
        with open_database() as db:
            server = start_server(db, args.schema, envelopes.clock_start_ms)
            console.print(f"server pid {server.process.pid} at {server.url}")
            outcomes: list[Outcome] = []
            try:
                run_load(server.port, "warmup", min(args.users, 8), 2.0, 2_000, envelopes)
                for r in range(args.repeats):
                    outcome, rows, found = measured_run(db, server, args, f"r{r}",
                                                        args.seconds, envelopes)
                    problems += found
                    outcomes.append(outcome)
                    console.print(
                        f"repeat {r + 1}: {outcome.uploads:,} uploads in "
                        f"{outcome.elapsed_s:.2f} s = {outcome.rate:,.0f}/s, p50 "
                        f"{outcome.quantile(0.5) * 1e3:.1f} ms, p99 "
                        f"{outcome.quantile(0.99) * 1e3:.1f} ms; rows added {rows:,}; "
                        "CPU (cores) " + ", ".join(f"{k} {v:.2f}"
                                                   for k, v in outcome.cpu.items()))
            finally:
                code = server.stop()
            if code != 0:
                problems.append(f"the server exited {code}: {''.join(server.log[-20:])}")

            tps, pg_rows = pgbench(db, envelopes.sample_payload, args.pgbench_seconds,
                                   args.pgbench_clients, directory)
            console.print(f"pgbench: {tps:,.0f} inserts/s ({pg_rows:,} rows, payload "
                          f"{len(envelopes.sample_payload):,} B)")

            profile_text = ""
            if args.profile is not None:
                args.profile.unlink(missing_ok=True)
                profiled = start_server(db, args.schema, envelopes.clock_start_ms, args.profile)
                try:
                    outcome, _, found = measured_run(db, profiled, args, "profile",
                                                     args.profile_seconds, envelopes)
                    problems += found
                finally:
                    profiled.stop()
                profile_text = (f"profiled run (server under cProfile, slower): "
                                f"{outcome.rate:,.0f} uploads/s\n"
                                + top_functions(args.profile, sum(outcome.statuses.values())))

    rate = statistics.median(o.rate for o in outcomes)
    p50 = statistics.median(o.quantile(0.5) for o in outcomes) * 1e3
    p99 = statistics.median(o.quantile(0.99) for o in outcomes) * 1e3
    table = Table(title="backend ingest (medians over repeats)")
    for column in ("measure", "value", "runs"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row("end-to-end uploads/s", f"{rate:,.0f}",
                  ", ".join(f"{o.rate:,.0f}" for o in outcomes))
    table.add_row("latency p50 ms", f"{p50:.1f}",
                  ", ".join(f"{o.quantile(0.5) * 1e3:.1f}" for o in outcomes))
    table.add_row("latency p99 ms", f"{p99:.1f}",
                  ", ".join(f"{o.quantile(0.99) * 1e3:.1f}" for o in outcomes))
    for name in outcomes[0].cpu:
        table.add_row(f"CPU cores busy: {name}",
                      f"{statistics.median(o.cpu[name] for o in outcomes):.2f}",
                      ", ".join(f"{o.cpu[name]:.2f}" for o in outcomes))
    table.add_row(f"pgbench JSONB inserts/s (-c {args.pgbench_clients})", f"{tps:,.0f}", "1 run")
    table.add_row("end-to-end / pgbench", f"{rate / tps:.2f}", "")
    console.print(table)
    if profile_text:
        console.print(profile_text, markup=False, highlight=False)
    for problem in problems:
        console.print(f"[red]CHECK FAILED[/] {problem}")
    passed = rate >= TARGET_UPLOADS_S
    verdict = "[green]PASS[/]" if passed else "[red]FAIL[/]"
    console.print(f"{verdict} end-to-end {rate:,.0f} uploads/s (target >= "
                  f"{TARGET_UPLOADS_S:,.0f}); rows checked against 201s: "
                  f"{'ok' if not problems else 'FAILED'}")
    return 0 if passed and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
