"""What `ggsim capacity` found: the result that the report reads (it never imports the
runner). Invariant: every figure in a `CapacityResult` is computed from a measurement of
the run that made it (or is marked not measured); the review's numbers appear only as the
review's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.capacity import model
from simulator.capacity.compare import ComparisonRow
from simulator.capacity.plan import CapacityOptions
from simulator.capacity.project import Interval
from simulator.capacity.review import Contradiction
from simulator.capacity.storage import StorageRun


@dataclass(frozen=True)
class GrowthRow:
    """What `users` users store on the server after `days` days, one variant."""

    variant: str
    users: int
    horizon: str
    days: int
    retention: bool
    total: Interval
    by_table: dict[str, Interval]


@dataclass(frozen=True)
class Threshold:
    name: str
    limit: float
    measured: float
    held: bool


@dataclass
class CapacityResult:
    options: CapacityOptions
    storage: dict[str, list[StorageRun]] = field(default_factory=dict)
    units: dict[str, model.PerUserDay] = field(default_factory=dict)
    growth: list[GrowthRow] = field(default_factory=list)
    comparison: list[ComparisonRow] = field(default_factory=list)
    contradictions: list[Contradiction] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the other measurements' reports
    thresholds: list[Threshold] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    server: dict[str, str] = field(default_factory=dict)
    disk_bytes: int | None = None  # the disk under the embedded server's data, if embedded

    @property
    def passed(self) -> bool:
        return all(t.held for t in self.thresholds)
