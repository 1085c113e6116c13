"""Benchmark: whether the fleet runs at its target speed, for fully simulated phones and
for upload-only phones, against the embedded stack.

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    python tests/benchmarks/bench_fleet.py [--full-phones 1000]
        [--light-phones 10000] [--sim-minutes 60] [--repeats 3] [--saturated]

Method: each fleet runs `--sim-minutes` of a weekday morning at its target speed, in the
open model the runner uses for real runs (issue 6: one simulated day of 1,000 full phones
in under 10 minutes, 144x; 10,000 upload-only phones' 2.88 M uploads within 60 minutes,
24x). It keeps up when the dispatcher's p99 lateness stays under a second of wall time
(`load_generator_keeps_up`), the p99 upload latency under 2 s and nothing is lost; the
uploads answered per wall second, and the CPU of the generator and of everything else
(server, PostgreSQL) per upload, are printed. The baseline, measured in the same run, is
the raw rate of the same HTTP client posting the same uploads with no phone model.

`--saturated` also runs each fleet at a speed so high that every upload is due at once,
an upper bound on throughput (a burst of that size also times requests out, which a
paced run does not). Medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
import uuid

import orjson
import psutil
from rich.console import Console
from rich.table import Table

from simulator.drivers.network import AiohttpTransport, run_loop
from simulator.fleet import scenario as sc
from simulator.fleet import stack as stacks
from simulator.fleet.result import percentile
from simulator.fleet.runner import FleetRun
from simulator.phone.effects import Http

TARGETS = {"full": 144.0, "light": 24.0}


def scenario(phones: int, full: int, minutes: float, speed: float) -> sc.Scenario:
    return sc.from_dict({"name": f"bench-{phones}-{full}", "seed": 5,
                         "start": "2024-01-09T08:00:00Z", "duration_s": minutes * 60,
                         "speed": speed, "profile": "v3",
                         "fleet": {"phones": phones, "full_phones": full},
                         "network": {"latency_ms_median": 0, "latency_ms_p99": 0,
                                     "timeout_s": 30}})


def fleet_rate(phones: int, full: int, minutes: float) -> dict[str, float]:
    """Uploads answered per wall second while saturated, and the sustainable speed."""
    uploads_per_sim_s = phones / 300
    s = scenario(phones, full, minutes, 100_000)
    stack = stacks.embedded(s)
    try:
        result = run_loop(FleetRun(s, stack, max_in_flight=1_000_000).run())
    finally:
        stack.stop()
    answered = sum(sum(c.values()) for c in result.timeline.outcomes.values())
    rate = answered / result.active_wall_s
    return {"uploads": answered, "wall_s": result.active_wall_s, "rate": rate,
            "speed": rate / uploads_per_sim_s,
            "delivered": result.verdict.delivered_fraction}


def _other_cpu_s() -> float:
    """CPU seconds used so far by every other process (the server, PostgreSQL)."""
    total = 0.0
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid():
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def at_speed(phones: int, full: int, minutes: float, speed: float) -> dict[str, float]:
    """Run the fleet paced at `speed` and measure whether it keeps up."""
    s = scenario(phones, full, minutes, speed)
    stack = stacks.embedded(s)
    try:
        others, mine = _other_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
        result = run_loop(FleetRun(s, stack).run())
        others = _other_cpu_s() - others
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        stack.stop()
    answered = sum(sum(c.values()) for c in result.timeline.outcomes.values())
    own = after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime
    late = percentile([float(x) for x in result.timeline.all_late()], 99) / 1000 / speed
    return {"uploads": answered, "rate": answered / result.active_wall_s,
            "late_p99_ms": late * 1000,
            "latency_p99_ms": percentile(result.timeline.upload_latencies(), 99),
            "anomalies": result.verdict.anomaly_count,
            "delivered": result.verdict.delivered_fraction,
            "generator_ms": own / answered * 1000, "others_ms": others / answered * 1000,
            "keeps_up": float(result.thresholds["load_generator_keeps_up"][0]
                              and result.verdict.anomaly_count == 0)}


def raw_rate(n: int, concurrency: int = 64) -> float:
    """The same client posting real uploads back to back (no phone model)."""
    s = scenario(concurrency, 0, 1, 1)
    stack = stacks.embedded(s)

    async def go() -> float:
        client = AiohttpTransport(stack.url, timeout_s=30, max_connections=concurrency)
        from simulator.sensors.encode import encode_lines
        from simulator.sensors.generator import FleetConfig, FleetGenerator
        gen = FleetGenerator(FleetConfig(seed=5, phones=1, start_ms=1_704_783_600_000,
                                         hours=1))
        base = orjson.loads(bytes(encode_lines(gen.block(range(1), 473_551))[0]))  # 07:00
        creds = []
        for i in range(concurrency):
            device = f"bench-{uuid.uuid4()}"
            answer = await client(Http("POST", "/devices", orjson.dumps(
                {"device_id": device, "user_id": f"u-{i}"}),
                (("Content-Type", "application/json"),)))
            creds.append((device, f"u-{i}", orjson.loads(answer.body)["secret"]))
        per = n // concurrency

        async def worker(device: str, user: str, secret: str) -> None:
            for _ in range(per):
                body = orjson.dumps({**base, "device_id": device, "user_id": user,
                                     "batch_id": str(uuid.uuid4())})
                await client(Http("POST", "/upload", body, (
                    ("X-Device-Id", device), ("Authorization", f"Bearer {secret}"),
                    ("Content-Type", "application/json"))))
        start = time.perf_counter()
        await asyncio.gather(*(worker(*c) for c in creds))
        elapsed = time.perf_counter() - start
        await client.aclose()
        return per * concurrency / elapsed

    try:
        return asyncio.run(go())
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-phones", type=int, default=1_000)
    parser.add_argument("--light-phones", type=int, default=10_000)
    parser.add_argument("--sim-minutes", type=float, default=60.0)
    parser.add_argument("--raw-uploads", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--saturated", action="store_true",
                        help="also measure the saturated upper bound")
    args = parser.parse_args(argv)
    console = Console(width=140)
    sizes = {"full": (args.full_phones, args.full_phones), "light": (args.light_phones, 0)}
    rows: dict[str, list[dict[str, float]]] = {"full": [], "light": []}
    bursts: dict[str, list[dict[str, float]]] = {"full": [], "light": []}
    raws = []
    for r in range(args.repeats):
        raws.append(raw_rate(args.raw_uploads))
        for kind, (phones, full) in sizes.items():
            rows[kind].append(at_speed(phones, full, args.sim_minutes, TARGETS[kind]))
            if args.saturated:
                bursts[kind].append(fleet_rate(phones, full, args.sim_minutes))
        console.print(f"repeat {r + 1}: raw {raws[-1]:,.0f}/s; " + "; ".join(
            f"{k} {v[-1]}" for k, v in rows.items()))
    raw = statistics.median(raws)
    table = Table(title=f"Fleet at its target speed, {args.sim_minutes:g} simulated "
                        f"minutes (medians of {args.repeats})")
    for column in ("fleet", "phones", "speed", "uploads/s", "vs raw client",
                   "p99 dispatch late", "p99 latency", "delivered", "CPU ms/upload "
                   "(generator + others)", "verdict"):
        table.add_column(column)
    ok = True
    for kind, (phones, _) in sizes.items():
        def median(key: str, kind: str = kind) -> float:
            return statistics.median(x[key] for x in rows[kind])
        passed = all(x["keeps_up"] for x in rows[kind]) and median("latency_p99_ms") < 2_000
        ok &= passed
        table.add_row(kind, f"{phones:,}", f"{TARGETS[kind]:g}x", f"{median('rate'):,.0f}",
                      f"{median('rate') / raw:.2f}", f"{median('late_p99_ms'):,.0f} ms",
                      f"{median('latency_p99_ms'):,.0f} ms", f"{median('delivered'):.4f}",
                      f"{median('generator_ms'):.2f} + {median('others_ms'):.2f}",
                      "PASS" if passed else "FAIL")
    console.print(table)
    console.print(f"raw client (aiohttp, 64 concurrent, same server): {raw:,.0f} uploads/s")
    for kind, runs in bursts.items():
        if runs:
            rate = statistics.median(x["rate"] for x in runs)
            phones = sizes[kind][0]
            console.print(f"saturated {kind}: {rate:,.0f} uploads/s answered, at most "
                          f"{rate * 300 / phones:,.1f}x for {phones:,} phones")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
