"""Benchmark: what the phone's realism costs a locust worker. Uploads one locust worker
process sustains with `PhoneUser` (the app core's upload flow, its in-memory database,
the pot sync after each saved upload, batches generated per phone) against a trivial
local endpoint, versus a bare `FastHttpUser` posting one prebuilt envelope, in the same
run; and how many phones one worker holds at the real 5-minute cadence.

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    python tests/benchmarks/bench_locust.py [--users 50] [--seconds 15] [--repeats 3]

Method:
- the endpoint is a raw asyncio HTTP server in its own process that answers every path
  from a table (`/upload` 201, `/daily-pot/upload` a pot state, `/devices` a secret,
  `/healthz` a fixed simulated instant), so the server costs little and the same for
  both users;
- each repeat runs stock locust twice, interleaved (phone, bare, phone, bare, ...), as a
  separate process: `-u USERS -r USERS -t SECONDS --headless`. The phones run a
  two-week scenario at 100,000x, so every phone always has a batch due: the worker is
  saturated, as the bare user is with no wait;
- the figure is requests per CPU second of the locust process (`/proc/<pid>/stat`,
  user + system) over the steady part of the run (from a second after every user is
  spawned to the end: the interpreter's start and the phones' joining are not in it,
  the hourly batch generation is), i.e. what one worker process
  sustains at a full core, whatever the server's share of this 2-core machine; the
  uploads per CPU second too (a phone's upload is two requests: the upload and its pot
  sync). Requests are locust's own count (`--csv`). Medians of `--repeats`;
- phones per worker at the real cadence = 0.9 core (locust warns at 90 % CPU) x 300 s
  / CPU seconds per phone per 5 minutes (its upload, its pot sync, a twelfth of an
  hour's batch generation), derived from the saturated runs' CPU per upload, plus the
  one-time cost of a phone joining (registration, its first hour's day plans) measured
  separately with `--join-users` users that only join;
- memory per phone held: the peak resident memory of that joining run against the same
  run with one phone, per extra phone (a phone's in-memory database, its batches, its
  greenlet and locust's user), which bounds phones per worker before the CPU does.

Target (issue 15): `PhoneUser` at least 70 % of the bare rate per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
START_MS = 1_704_092_400_000  # 2024-01-01T07:00:00Z
POT = orjson.dumps({"user_id": "u", "total_credits": 0, "uploads_today": 1,
                    "uploads_required": 5, "is_unlocked": False, "has_claimed_today": False,
                    "last_claim_date": None, "backend_updated_at": START_MS,
                    "pot_day": "2024-01-01"})
ANSWERS = {b"/upload": (201, b'{"status":"stored"}'), b"/daily-pot/upload": (200, POT),
           b"/daily-pot": (200, POT), b"/devices": (201, b'{"secret":"s"}'),
           b"/healthz": (200, orjson.dumps({"status": "ok", "now_ms": START_MS})),
           b"/_sim/clock": (200, orjson.dumps({"now_ms": START_MS}))}
BARE = '''
from locust import FastHttpUser, constant, task
ENVELOPE = open({path!r}, "rb").read()
HEADERS = {{"X-Device-Id": "d", "Authorization": "Bearer s",
           "Content-Type": "application/json", "Idempotency-Key": "k"}}
class Bare(FastHttpUser):
    wait_time = constant(0)
    @task
    def upload(self):
        self.client.post("/upload", data=ENVELOPE, headers=HEADERS)
'''
SCENARIO = '''name = "bench-locust"
seed = 7
start = "2024-01-01T07:00:00Z"
duration_s = 1209600
speed = 100000
profile = "v3"
'''
console = Console(width=None if sys.stdout.isatty() else 140)


# -- the trivial endpoint ----------------------------------------------------------------

class Answer(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection, Content-Length bodies."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < head_end + 4 + length:
                return
            path = head.split(b" ", 2)[1].split(b"?")[0]
            self.buffer = self.buffer[head_end + 4 + length:]
            status, body = ANSWERS.get(path, (404, b"{}"))
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"\r\n%s" % (status, len(body), body))


def serve(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


# -- one locust run ----------------------------------------------------------------------

def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_locust(locustfile: Path, host: str, users: int, seconds: int, work: Path,
               extra: list[str]) -> dict[str, float]:
    """One headless run; requests, uploads and CPU seconds of the locust process over its
    steady part: from a second after every user is spawned to its last statistics row
    (locust writes cumulative counts each second; the process's CPU is sampled every
    0.1 s), so the interpreter's start and the phones' joining are left out."""
    prefix = work / f"stats-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-H", host,
         "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--csv", str(prefix),
         "--csv-full-history", "--only-summary", "--loglevel", "ERROR", *extra],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        try:
            samples.append((time.time(), cpu_s(proc.pid)))
        except OSError:
            break
        time.sleep(0.1)
    stderr = proc.stderr.read() if proc.stderr else ""
    with open(f"{prefix}_stats_history.csv") as history:
        rows = list(csv.DictReader(history))
    if any(float(r["Total Failure Count"]) for r in rows):
        raise SystemExit(f"{locustfile.name}: failed requests\n{stderr[-2000:]}")

    def counts(name: str) -> list[tuple[float, float]]:
        return [(float(r["Timestamp"]), float(r["Total Request Count"])) for r in rows
                if r["Name"] == name and int(r["User Count"]) == users]

    total = counts("Aggregated")
    begin = next(t for t, _ in total if t >= total[0][0] + 1)
    end = total[-1][0]
    if end - begin < 2:
        raise SystemExit(f"{locustfile.name}: the steady part is under 2 s; raise --seconds")

    def at(series: list[tuple[float, float]], t: float) -> float:
        return min(series, key=lambda point: abs(point[0] - t))[1]
    uploads = counts("/upload")
    return {"requests": at(total, end) - at(total, begin),
            "uploads": (at(uploads, end) - at(uploads, begin)) if uploads else 0.0,
            "cpu_s": at(samples, end) - at(samples, begin), "wall_s": end - begin}


def rss_bytes(pid: int) -> int:
    """The process's resident memory now (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def join_cost(locustfile: Path, host: str, users: int, work: Path,
              extra: list[str]) -> tuple[float, float, float]:
    """CPU seconds and resident bytes per phone held (registration, the first hour's day
    plans and batches, its database, its greenlet): a real-time run whose phones only
    join and wait, against the same run with one phone (the interpreter, locust and the
    generator's tables are in both). Memory is VmRSS sampled every 0.1 s: its peak (the
    joining cohort's generation is transient, bounded by the cohort's size, not by the
    phones held) and its last sample, the phones held and idle."""
    def whole_run(n: int) -> tuple[float, int, int]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-H",
             host, "-u", str(n), "-r", str(n), "-t", "10s", "--only-summary", "--loglevel",
             "ERROR", *extra], cwd=work, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        cpu, peak, last = 0.0, 0, 0
        while proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                cpu, last = cpu_s(proc.pid), rss_bytes(proc.pid) or last
                peak = max(peak, last)
            time.sleep(0.1)
        return cpu, peak, last
    (cpu_n, peak_n, last_n), (cpu_1, peak_1, last_1) = whole_run(users), whole_run(1)
    extra_phones = users - 1
    return ((cpu_n - cpu_1) / extra_phones, (peak_n - peak_1) / extra_phones,
            (last_n - last_1) / extra_phones)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--join-users", type=int, default=300)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    host = f"http://127.0.0.1:{port}"
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory(prefix="bench-locust-") as tmp:
            work = Path(tmp)
            envelope = work / "envelope.json"
            envelope.write_bytes(_one_envelope())
            bare = work / "bare_locustfile.py"
            bare.write_text(BARE.format(path=str(envelope)))
            scenario = work / "bench.toml"
            scenario.write_text(SCENARIO)
            phone_file = ROOT / "loadtests" / "locustfile.py"
            phone_args = ["--scenario", str(scenario), "--gate-error-rate", "1",
                          "--summary-dir", str(work / "summary")]
            runs: dict[str, list[dict[str, float]]] = {"phone": [], "bare": []}
            for r in range(args.repeats):
                for name in ("phone", "bare"):
                    console.print(f"repeat {r + 1}: {name}", style="dim")
                    runs[name].append(run_locust(
                        phone_file if name == "phone" else bare, host, args.users,
                        args.seconds, work, phone_args if name == "phone" else []))
            joins = join_cost(phone_file, host, args.join_users, work,
                              [*phone_args[:1], str(_slow_scenario(work)), *phone_args[2:]])
            return report(runs, joins, args)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _one_envelope() -> bytes:
    from simulator.sensors.encode import encode_lines
    from simulator.sensors.generator import FleetConfig, FleetGenerator

    gen = FleetGenerator(FleetConfig(seed=7, phones=1, start_ms=START_MS, hours=1))
    return bytes(encode_lines(gen.block(range(1), START_MS // 3_600_000))[0]).rstrip(b"\n")


def _slow_scenario(work: Path) -> Path:
    """The join-cost run: real time, so the phones join and wait (their first batch is
    minutes away)."""
    path = work / "join.toml"
    path.write_text(SCENARIO.replace("speed = 100000", "speed = 1"))
    return path


def report(runs: dict[str, list[dict[str, float]]], joins: tuple[float, float, float],
           args: argparse.Namespace) -> int:
    join_cpu, join_peak, join_held = joins
    def median(name: str, key: str) -> float:
        return statistics.median(run[key] / run["cpu_s"] for run in runs[name])
    phone_req, bare_req = median("phone", "requests"), median("bare", "requests")
    phone_up = median("phone", "uploads")
    ratio = phone_req / bare_req
    table = Table(title=f"One locust worker, {args.users} users, {args.seconds} s, medians "
                        f"of {args.repeats} (per CPU second of the locust process)")
    for column in ("user", "requests/CPU-s", "uploads/CPU-s", "vs bare (requests)",
                   "wall req/s"):
        table.add_column(column, justify="right")
    for name in ("bare", "phone"):
        wall = statistics.median(r["requests"] / r["wall_s"] for r in runs[name])
        table.add_row(name, f"{median(name, 'requests'):,.0f}",
                      f"{median(name, 'uploads'):,.0f}",
                      f"{median(name, 'requests') / bare_req:.2f}", f"{wall:,.0f}")
    console.print(table)
    # a phone's five minutes: one upload (with its pot sync); the hourly generation is in
    # the saturated runs' CPU already (12 windows an hour)
    cpu_per_cycle = 1.0 / phone_up
    held = 0.9 * 300.0 / cpu_per_cycle
    console.print(f"CPU per phone per 5 minutes: {cpu_per_cycle * 1000:.2f} ms; per phone "
                  f"joining (registration, its first hour's day plans and batches, its "
                  f"database; {args.join_users} joining vs 1): {join_cpu * 1000:.0f} ms")
    console.print(f"phones one worker holds at the real cadence before locust's 90 % CPU "
                  f"warning: about {held:,.0f} (derived: 0.9 x 300 s / CPU per cycle)")
    console.print(f"memory per phone held: {join_held / 1024:,.0f} KiB resident once "
                  f"joined ({join_peak / 1024:,.0f} KiB at the joining peak; "
                  f"{args.join_users} phones vs 1); 1 GiB holds about "
                  f"{2**30 / max(join_held, 1):,.0f} phones")
    passed = ratio >= 0.70
    console.print(f"PhoneUser / bare per request: {ratio:.2f} (target >= 0.70): "
                  f"{'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
