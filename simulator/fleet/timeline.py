"""Per-minute (simulated) aggregates of a run, for the report's plots and thresholds:
uploads by outcome, client-measured latency of /upload, dispatch lateness, queue depth
(batches waiting in phones' upload queues) and phones whose daily pot is not in sync.

Kept as aggregates, not per request, so a 10,000-phone day stays small in memory.
Invariant: every recorded value lands in the minute of the simulated instant it names.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

QUEUED = frozenset({"queued"})


@dataclass
class Timeline:
    """The run minute by minute (minute 0 starts at `start_ms`)."""

    start_ms: int
    outcomes: defaultdict[int, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    latency_ms: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    late_ms: defaultdict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    queue_depth: dict[int, int] = field(default_factory=dict)
    pot_unsynced: dict[int, int] = field(default_factory=dict)
    depth: int = 0
    unsynced: int = 0
    _pot_state: dict[int, str] = field(default_factory=dict)
    _batch_state: dict[str, str] = field(default_factory=dict)

    def minute(self, sim_ms: int) -> int:
        return max(0, (sim_ms - self.start_ms) // 60_000)

    def outcome(self, sim_ms: int, batch_id: str, result: str) -> None:
        """A batch's new state; keeps the queue depth."""
        before = self._batch_state.get(batch_id)
        self._batch_state[batch_id] = result
        self.depth += (result in QUEUED) - (before in QUEUED)
        m = self.minute(sim_ms)
        self.outcomes[m][result] += 1
        self.queue_depth[m] = self.depth

    def request(self, sim_ms: int, path: str, latency_ms: float) -> None:
        if path == "/upload":
            self.latency_ms[self.minute(sim_ms)].append(latency_ms)

    def dispatched(self, sim_ms: int, late_ms: int) -> None:
        self.late_ms[self.minute(sim_ms)].append(late_ms)

    def pot(self, sim_ms: int, phone: int, state: str) -> None:
        before = self._pot_state.get(phone, "synced")
        self._pot_state[phone] = state
        self.unsynced += (state != "synced") - (before != "synced")
        self.pot_unsynced[self.minute(sim_ms)] = self.unsynced

    def upload_latencies(self) -> list[float]:
        return [v for values in self.latency_ms.values() for v in values]

    def all_late(self) -> list[int]:
        return [v for values in self.late_ms.values() for v in values]

    def series(self) -> dict[str, Any]:
        """Per-minute arrays for plots and JSON (carrying gauges forward)."""
        last = max([*self.outcomes, *self.latency_ms, *self.queue_depth, 0]) + 1
        minutes = list(range(last))

        def pct(q: float) -> list[float | None]:
            return [float(np.percentile(self.latency_ms[m], q)) if self.latency_ms.get(m)
                    else None for m in minutes]

        def carried(values: dict[int, int]) -> list[int]:
            out, current = [], 0
            for m in minutes:
                current = values.get(m, current)
                out.append(current)
            return out

        kinds = sorted({k for c in self.outcomes.values() for k in c})
        return {"minute": minutes,
                "outcomes": {k: [self.outcomes[m][k] if m in self.outcomes else 0
                                 for m in minutes] for k in kinds},
                "latency_p50_ms": pct(50), "latency_p99_ms": pct(99),
                "queue_depth": carried(self.queue_depth),
                "pot_unsynced": carried(self.pot_unsynced)}
