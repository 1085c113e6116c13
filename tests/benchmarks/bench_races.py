"""Benchmark: how fast the race hunt finds each v2 race, and how many v3 schedules it
explores per second.

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    python tests/benchmarks/bench_races.py [--seeds N] [--v3-schedules M]
        [--machine-runs K] [--baseline-schedules B]

In one run it measures:

- time to first detection of each v2 race by the scenario search (`hunt.until_found`,
  seeded random schedules; `--seeds` seeds, median and worst), and by the hypothesis
  state machine restricted to that race (generation only, no shrinking; `--machine-runs`
  runs, median), since the two are different searches a user may run;
- v3 explored: `--v3-schedules` seeded random schedules spread over every scenario,
  schedules/s, and whether any invariant broke (it must not);
- the baseline, in the same run: the same v3 schedules with the start file built from
  the schema for every schedule (what the search did before it cached the start file),
  `--baseline-schedules` of them; the ratio is the cached search's speed-up.

Targets (the script exits 1 if one fails): each of R1, R2 and R3 found in under 10 s
(median over seeds); v3 explored for at least 10,000 schedules in under 60 s with no
invariant broken.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import HypothesisException
from hypothesis.stateful import run_state_machine_as_test
from rich.console import Console
from rich.table import Table

from simulator.checks import hunt
from simulator.checks.races import machine_for
from simulator.drivers import interleave
from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.profiles import V2, V3

TARGET_DETECTION_S = 10.0
TARGET_V3_SCHEDULES = 10_000
TARGET_V3_S = 60.0
MUST_FIND = ("R1", "R2", "R3")


def detection_by_scenarios(seeds: int) -> dict[str, list[hunt.Detection]]:
    """Per scenario: one detection per seed (seeded random schedules under v2)."""
    return {name: [hunt.until_found(V2, name, seed=1_000 * s, budget_s=60.0)
                   for s in range(seeds)] for name in hunt.SCENARIOS}


def detection_by_machine(race: str, runs: int) -> list[float]:
    """Seconds to the first failing program of the state machine (no shrinking)."""
    quick = settings(max_examples=10_000, stateful_step_count=16, deadline=None,
                     database=None, phases=[Phase.generate],
                     suppress_health_check=list(HealthCheck))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            run_state_machine_as_test(machine_for(V2, [race]), settings=quick)
        except (AssertionError, HypothesisException):
            times.append(time.perf_counter() - start)
        else:
            times.append(float("inf"))  # not found in 10,000 programs
    return times


def v3_throughput(schedules: int) -> tuple[int, float, int]:
    """(schedules run, seconds, anomalies) for random v3 schedules over every scenario."""
    per = schedules // len(hunt.SCENARIOS)
    start = time.perf_counter()
    found, explored = hunt.hunt(V3, budget_s=10 * TARGET_V3_S, strategy="random",
                                max_schedules=per, seed=7)
    return explored, time.perf_counter() - start, len(found)


def baseline_throughput(schedules: int) -> tuple[int, float]:
    """The same kind of v3 schedules, building each start file from the schema."""
    directory = Path(tempfile.mkdtemp(prefix="ggsim-bench-baseline-"))
    path = directory / "greengains.db"
    scenarios = list(hunt.SCENARIOS.values())
    start = time.perf_counter()
    try:
        for n in range(schedules):
            scenario = scenarios[n % len(scenarios)]
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            setup = connect(path)
            run(setup, app.open_connection(V3.flutter_journal_mode, 0))
            run(setup, schema.open_schema(V3.schema_version))
            for op in scenario.setup(V3):
                run(setup, op)
            setup.close()
            writers = [interleave.Writer(name, connect(path), op, timeout)
                       for name, op, timeout in scenario.writers(V3)]
            outcome = interleave.random_schedule(writers, 7 + n)
            hunt.judge(directory, scenario, V3, outcome)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return schedules, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument("--machine-runs", type=int, default=5)
    parser.add_argument("--v3-schedules", type=int, default=TARGET_V3_SCHEDULES)
    parser.add_argument("--baseline-schedules", type=int, default=1_000)
    args = parser.parse_args(argv)
    console = Console(width=120)
    console.print(f"python {platform.python_version()} on {platform.machine()}, "
                  f"{args.seeds} seeds, {args.machine_runs} state-machine runs")

    detections = detection_by_scenarios(args.seeds)
    table = Table(title="Time to first detection under v2 (median over seeds)")
    for column in ("race", "scenario", "found", "median s", "worst s", "median schedules",
                   "state machine median s"):
        table.add_column(column)
    verdicts = []
    for name, runs in detections.items():
        label = hunt.SCENARIOS[name].label
        hits = [d for d in runs if d.found is not None]
        median = statistics.median(d.seconds if d.found else float("inf") for d in runs)
        machine = statistics.median(detection_by_machine(label, args.machine_runs))
        table.add_row(label, name, f"{len(hits)}/{len(runs)}", f"{median:.4f}",
                      f"{max(d.seconds for d in runs):.4f}",
                      f"{statistics.median(d.schedules for d in runs):.0f}", f"{machine:.3f}")
        if label in MUST_FIND:
            ok = median < TARGET_DETECTION_S and machine < TARGET_DETECTION_S
            verdicts.append((f"{label} found in under {TARGET_DETECTION_S:.0f} s "
                             f"(scenarios {median:.3f} s, state machine {machine:.3f} s)", ok))
    console.print(table)

    explored, seconds, anomalies = v3_throughput(args.v3_schedules)
    base_n, base_s = baseline_throughput(args.baseline_schedules)
    rate, base_rate = explored / seconds, base_n / base_s
    console.print(f"v3: {explored} schedules in {seconds:.1f} s = {rate:,.0f} schedules/s, "
                  f"{anomalies} invariants broken")
    console.print(f"baseline (schema built per schedule): {base_n} schedules in {base_s:.1f} s "
                  f"= {base_rate:,.0f} schedules/s; ratio {rate / base_rate:.1f}x")
    verdicts.append((f"v3: >= {TARGET_V3_SCHEDULES:,} schedules in under {TARGET_V3_S:.0f} s, "
                     f"none broken ({explored:,} in {seconds:.1f} s, {anomalies} broken)",
                     explored >= TARGET_V3_SCHEDULES and seconds < TARGET_V3_S
                     and anomalies == 0))
    for text, ok in verdicts:
        console.print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
