"""A load test's summary: `summary.json` in the shape `ggsim compare` reads (scenario,
passed, verdict, performance, fleet), so a locust run lies beside a `ggsim run` of the
same scenario, plus what only a load test has (its gates, the cluster's spread of phones
and the equivalent real fleet).

Invariant: every number is measured (locust's statistics, the reconciled verdict, the
wall clock); the equivalent fleet is arithmetic on them, stated with its formula.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson

from simulator.capacity.slo import Knee, StepResult
from simulator.checks.ledgers import Verdict
from simulator.loadtest.diurnal import ASSUMPTION, DiurnalHour
from simulator.loadtest.gates import Check, Measured
from simulator.loadtest.options import LoadSettings


def summary(chosen: LoadSettings, verdict: Verdict | None, checks: list[Check],
            measured: Measured, wall_s: float, *, users: int,
            phones_by_worker: dict[str, list[int]], phone_runs: dict[int, int],
            ramp: tuple[list[StepResult], Knee | None] | None = None,
            diurnal: list[DiurnalHour] | None = None) -> dict[str, Any]:
    """The summary (see the module docstring)."""
    s = chosen.scenario
    uploads_per_s = (verdict.generated / wall_s) if verdict is not None else None
    return {
        "scenario": s.name, "tool": "locust", "profile": s.profile, "schema": s.schema,
        "seed": s.seed, "passed": all(c.passed for c in checks),
        "fleet": {"phones": users, "full_phones": users},
        "verdict": verdict.as_json() if verdict is not None else {
            "generated": None, "note": "the backend's database was not read"},
        "performance": {
            "speed_achieved": s.speed, "wall_s": round(wall_s, 3),
            "requests": measured.requests, "failures": measured.failures,
            "requests_per_s": round(measured.rps, 2),
            "uploads_peak_per_s": measured.upload_peak_per_s,
            "boundary": "aligned" if chosen.aligned else "phased",
            "upload_latency_ms": {"p50": measured.upload_p50_ms,
                                  "p95": measured.upload_p95_ms,
                                  "p99": measured.upload_p99_ms},
        },
        "gates": [vars(c) for c in checks],
        "cluster": {"phones_per_worker": {w: len(p) for w, p in
                                          sorted(phones_by_worker.items())},
                    "phones_run_more_than_once": sorted(p for p, n in phone_runs.items()
                                                        if n > 1),
                    "phones_are_0_to_n_minus_1": sorted(phone_runs) == list(
                        range(len(phone_runs)))},
        "ramp": None if ramp is None else _ramp(*ramp),
        "diurnal": None if diurnal is None else {
            "assumption": ASSUMPTION, "hours": [dataclasses.asdict(h) for h in diurnal]},
        "equivalent": {
            "formula": "users x speed phones at real time; uploads/s as measured",
            "real_fleet_phones": round(users * s.speed),
            "uploads_per_s": None if uploads_per_s is None else round(uploads_per_s, 2)},
    }


def write_summary(chosen: LoadSettings, verdict: Verdict | None, checks: list[Check],
                  measured: Measured, wall_s: float, *, users: int,
                  phones_by_worker: dict[str, list[int]], phone_runs: dict[int, int],
                  ramp: tuple[list[StepResult], Knee | None] | None = None,
                  diurnal: list[DiurnalHour] | None = None) -> dict[str, Any]:
    """Write `summary.json` under the settings' summary directory; returns it."""
    data = summary(chosen, verdict, checks, measured, wall_s, users=users,
                   phones_by_worker=phones_by_worker, phone_runs=phone_runs, ramp=ramp,
                   diurnal=diurnal)
    directory = Path(chosen.summary_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return data


def _ramp(steps: list[StepResult], knee: Knee | None) -> dict[str, Any]:
    """A ramp's steps and its knee, as `ggsim capacity` states them."""
    return {"steps": [dataclasses.asdict(step) for step in steps],
            "knee": None if knee is None else {
                "held_rate_per_s": knee.held_rate_per_s,
                "broke_rate_per_s": knee.broke_rate_per_s,
                "cause": None if knee.cause is None else knee.cause.value,
                "reasons": list(knee.reasons), "summary": knee.summary}}
