"""What a fleet run hands its reports: the result, the thresholds it is judged by, and the
trace header that lets a run be replayed. `report/` imports this module, never the runner.

Invariant: `RunResult.passed` is true exactly when every threshold held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator import __version__
from simulator.checks.ledgers import Verdict
from simulator.fleet.scenario import Scenario
from simulator.fleet.timeline import Timeline
from simulator.instants import WINDOW_MS, parse_instant

if TYPE_CHECKING:
    from simulator.fleet.stack import Stack

SETTLE_S = 3_600.0  # simulated time after the last window for queues to drain
MAX_LATE_WALL_S = 1.0  # p99 dispatch lateness beyond which the generator is saturated


@dataclass
class RunResult:
    """Everything a report needs."""

    scenario: Scenario
    verdict: Verdict
    timeline: Timeline
    requests: int
    faults: dict[str, int]
    wall_s: float
    sim_s: float
    pot_divergence: int
    thresholds: dict[str, tuple[bool, str]]
    active_wall_s: float = 0.0  # from the first event to the end (no set-up)
    soak: dict[str, Any] | None = None  # the soak's figures (`fleet/soak.py`)
    live: dict[str, Any] | None = None  # the live phone's stream (`fleet/live_phone.py`)

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.thresholds.values())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values; 0 for none."""
    return float(np.percentile(values, q)) if values else 0.0


def judge(result: RunResult) -> dict[str, tuple[bool, str]]:
    """Each threshold: (held, what was measured)."""
    t = result.scenario.thresholds
    p99 = percentile(result.timeline.upload_latencies(), 99)
    v = result.verdict
    late_wall_s = percentile([float(x) for x in result.timeline.all_late()], 99) / 1000 / (
        result.scenario.speed)
    return {
        # an open model is only honest while the generator keeps its schedule: if it
        # falls behind, latencies measure the client, not the server
        "load_generator_keeps_up": (late_wall_s <= MAX_LATE_WALL_S,
                                    f"p99 dispatch {late_wall_s * 1000:.0f} ms late (wall; "
                                    f"limit {MAX_LATE_WALL_S * 1000:.0f} ms)"),
        "p99_upload_latency_ms": (p99 <= t.p99_upload_latency_ms,
                                  f"{p99:.1f} ms (limit {t.p99_upload_latency_ms:g})"),
        "max_anomalies": (v.anomaly_count <= t.max_anomalies,
                          f"{v.anomaly_count} (limit {t.max_anomalies})"),
        "min_delivered_fraction": (v.delivered_fraction >= t.min_delivered_fraction,
                                   f"{v.delivered_fraction:.4f} (limit "
                                   f"{t.min_delivered_fraction:g})"),
    }


def header(scenario: Scenario, stack: Stack) -> dict[str, Any]:
    """What a trace starts with: enough to re-run it."""
    import msgspec
    return {"kind": "header", "version": __version__, "scenario": msgspec.to_builtins(scenario),
            "seed": scenario.seed, "profile": scenario.profile, "schema": scenario.schema,
            "target": "embedded" if stack.embedded else stack.url,
            "derived": {"start_ms": parse_instant(scenario.start),
                        "full_phones": scenario.full_phones, "window_ms": WINDOW_MS,
                        "settle_s": SETTLE_S}}
