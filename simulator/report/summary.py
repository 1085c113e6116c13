"""The run's summary as JSON (for CI and replay) and as terminal tables (rich)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from simulator.fleet.result import RunResult, percentile


def as_json(result: RunResult) -> dict[str, Any]:
    """Everything a CI job or `ggsim replay` compares; no wall-clock values in `verdict`."""
    s = result.scenario
    latencies = result.timeline.upload_latencies()
    # the dispatcher's lateness in wall ms, the unit of the load_generator_keeps_up
    # threshold (the timeline keeps simulated ms, speed times more)
    late = [x / s.speed for x in result.timeline.all_late()]
    return {
        "scenario": s.name, "seed": s.seed, "profile": s.profile, "schema": s.schema,
        "fleet": {"phones": s.fleet.phones, "full_phones": s.full_phones},
        "speed": s.speed, "duration_s": s.duration_s,
        "passed": result.passed,
        "thresholds": {k: {"held": ok, "measured": text}
                       for k, (ok, text) in result.thresholds.items()},
        "verdict": result.verdict.as_json(),
        "faults": result.faults,
        "performance": {
            "wall_s": round(result.wall_s, 3), "simulated_s": round(result.sim_s, 3),
            "speed_achieved": round(result.sim_s / result.wall_s, 2) if result.wall_s else None,
            "requests": result.requests,
            "upload_latency_ms": {"p50": round(percentile(latencies, 50), 3),
                                  "p99": round(percentile(latencies, 99), 3),
                                  "max": round(max(latencies, default=0.0), 3)},
            "dispatch_late_wall_ms": {"p50": round(percentile(late, 50), 3),
                                      "p99": round(percentile(late, 99), 3),
                                      "max": round(max(late, default=0.0), 3)}},
        **({"soak": result.soak} if result.soak is not None else {}),
        **({"live": result.live} if result.live is not None else {}),
    }


def print_summary(result: RunResult, console: Console) -> None:
    """Tables: ledger buckets, anomalies with an example each, thresholds."""
    data = as_json(result)
    v = result.verdict
    perf = data["performance"]
    console.print(f"[bold]{result.scenario.name}[/] seed {result.scenario.seed}, profile "
                  f"{result.scenario.profile}, schema {result.scenario.schema}: "
                  f"{result.sim_s:,.0f} simulated s in {result.wall_s:,.1f} wall s "
                  f"({perf['speed_achieved']}x), {result.requests:,} requests")
    buckets = Table(title="Uploads: three ledgers")
    buckets.add_column("bucket")
    buckets.add_column("batches", justify="right")
    buckets.add_row("generated", f"{v.generated:,}")
    for name, count in sorted(v.buckets.items()):
        buckets.add_row(name, f"{count:,}")
    buckets.add_row("reordered arrivals", f"{v.reordered:,}")
    console.print(buckets)
    if v.anomalies:
        table = Table(title="Anomalies")
        for column in ("anomaly", "count", "example (phone, simulated time, detail)"):
            table.add_column(column)
        for kind, count in sorted(v.anomalies.items()):
            ex = v.examples[kind]
            table.add_row(kind, f"{count:,}", f"phone {ex.phone}, t={ex.at_ms}: {ex.detail}")
        console.print(table)
    else:
        console.print("No anomalies.")
    live = data.get("live")
    if live is not None:
        outcomes = Counter(live["outcomes"].values())
        console.print(f"Live phone {live['phone']} ({live['device_id']}, Sensor Logger device "
                      f"{live['device_id_pushed']}): {live['messages']['accepted']} messages, "
                      f"{live['batches_sealed']} batches built; uploads: "
                      + (", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) or "none"),
                      markup=False)
    thresholds = Table(title="Thresholds")
    for column in ("threshold", "measured", "result"):
        thresholds.add_column(column)
    for name, (ok, text) in result.thresholds.items():
        thresholds.add_row(name, text, "[green]pass[/]" if ok else "[red]FAIL[/]")
    console.print(thresholds)
    console.print("[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]")
