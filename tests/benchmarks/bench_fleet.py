"""Benchmark: how many simulated seconds per wall second the fleet sustains, for fully
simulated phones and for upload-only phones, against the embedded stack.

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    .venv/bin/python tests/benchmarks/bench_fleet.py [--full-phones 1000] [--light-phones 10000]
        [--sim-minutes 20] [--repeats 3]

Method: each fleet runs a slice of a weekday morning (`--sim-minutes` of simulated time)
at a speed so high that every upload is due at once (saturated, no in-flight cap); the
uploads answered per wall second of the active run (R, set-up and registration
excluded) measure what it can sustain, and the sustainable speed for a fleet of P phones
is R / (uploads per simulated second) = R * 300 / P. Targets (issue 6): one simulated day of 1,000
full phones in under 10 minutes (>= 144x) and 2.88 M uploads of 10,000 upload-only
phones within 60 minutes (>= 24x). The baseline, measured in the same run, is the raw
rate of the same HTTP client posting the same uploads with no phone model (the ratio
says what the phones' own work costs). Medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

import orjson
from rich.console import Console
from rich.table import Table

from simulator.drivers.network import AiohttpTransport, run_loop
from simulator.fleet import scenario as sc
from simulator.fleet import stack as stacks
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


def raw_rate(n: int, concurrency: int = 64) -> float:
    """The same client posting real uploads back to back (no phone model)."""
    s = scenario(concurrency, 0, 1, 1)
    stack = stacks.embedded(s)

    async def go() -> float:
        client = AiohttpTransport(stack.url, timeout_s=30, max_connections=concurrency)
        from simulator.sensors.encode import encode_lines
        from simulator.sensors.fleet import FleetConfig, FleetGenerator
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
    parser.add_argument("--full-phones", type=int, default=200)
    parser.add_argument("--light-phones", type=int, default=2_000)
    parser.add_argument("--sim-minutes", type=float, default=20.0)
    parser.add_argument("--raw-uploads", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    console = Console(width=120)
    rows: dict[str, list[dict[str, float]]] = {"full": [], "light": []}
    raws = []
    for r in range(args.repeats):
        raws.append(raw_rate(args.raw_uploads))
        rows["full"].append(fleet_rate(args.full_phones, args.full_phones, args.sim_minutes))
        rows["light"].append(fleet_rate(args.light_phones, 0, args.sim_minutes))
        console.print(f"repeat {r + 1}: raw {raws[-1]:,.0f}/s; full {rows['full'][-1]}; "
                      f"light {rows['light'][-1]}")
    raw = statistics.median(raws)
    table = Table(title="Fleet throughput (medians)")
    for column in ("fleet", "phones", "uploads/s answered", "sustainable speed", "target",
                   "vs raw client", "verdict"):
        table.add_column(column)
    ok = True
    for kind, phones in (("full", args.full_phones), ("light", args.light_phones)):
        rate = statistics.median(x["rate"] for x in rows[kind])
        speed = statistics.median(x["speed"] for x in rows[kind])
        # the sustainable speed scales inversely with the fleet size at a fixed rate
        at_target_size = speed * phones / (1_000 if kind == "full" else 10_000)
        passed = at_target_size >= TARGETS[kind]
        ok &= passed
        table.add_row(kind, f"{phones:,}", f"{rate:,.0f}",
                      f"{speed:,.1f}x ({at_target_size:,.1f}x at "
                      f"{1_000 if kind == 'full' else 10_000:,} phones)",
                      f">= {TARGETS[kind]:g}x", f"{rate / raw:.2f}",
                      "PASS" if passed else "FAIL")
    console.print(table)
    console.print(f"raw client (aiohttp, 64 concurrent, same server): {raw:,.0f} uploads/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
