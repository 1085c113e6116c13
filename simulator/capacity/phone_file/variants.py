"""What the measurement compares: a growth variant (schema, maintenance policy, the
file's auto-vacuum mode) and an outage variant (schema, maintenance, the upload queue's
cap), and the default sets of each that `measure_phone_file` runs.

Invariants: a variant is valid once constructed (`UsageError` otherwise: schema 2 or 3,
maintenance one of `MAINTENANCE`, auto-vacuum one of `AUTO_VACUUM`, a cap >= 1 or None);
its `profile` is v2 as shipped or v3 with every fix, `auto_maintenance` set exactly when
the maintenance is "perform_maintenance"; the defaults come in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simulator.capacity.phone_file.parameters import (
    AUTO_VACUUM,
    CORE_POLICY,
    MAINTENANCE,
    UNBOUNDED,
)
from simulator.errors import UsageError
from simulator.phone import schema
from simulator.phone.profiles import V2, V3, FixProfile
from simulator.phone.uploader import QueuePolicy


@dataclass(frozen=True)
class GrowthVariant:
    """A schema, a maintenance policy and the file's auto-vacuum mode: NONE is SQLite's
    default (and Python's, and what the review assumes); FULL is what Android's own
    SQLite build creates (AOSP external/sqlite: -DSQLITE_DEFAULT_AUTOVACUUM=1)."""

    schema_version: int
    maintenance: str
    auto_vacuum: str = "NONE"

    def __post_init__(self) -> None:
        if self.schema_version not in (schema.V2, schema.V3):
            raise UsageError(f"schema_version must be 2 or 3, got {self.schema_version}")
        if self.maintenance not in MAINTENANCE:
            raise UsageError(f"maintenance must be one of {MAINTENANCE}, got "
                             f"{self.maintenance!r}")
        if self.auto_vacuum not in AUTO_VACUUM:
            raise UsageError(f"auto_vacuum must be one of {AUTO_VACUUM}, got "
                             f"{self.auto_vacuum!r}")

    @property
    def name(self) -> str:
        vacuum = "" if self.auto_vacuum == "NONE" else f" auto_vacuum={self.auto_vacuum}"
        return f"v{self.schema_version} {self.maintenance}{vacuum}"

    @property
    def profile(self) -> FixProfile:
        """v2 as shipped or v3 with every fix; `auto_maintenance` as the variant says."""
        base = V2 if self.schema_version == schema.V2 else V3
        wanted = self.maintenance == "perform_maintenance"
        return replace(base, name=f"{base.name}{'+' if wanted else '-'}auto_maintenance",
                       auto_maintenance=wanted)


@dataclass(frozen=True)
class OutageVariant:
    """A schema, the maintenance and the queue's cap (None: unbounded)."""

    schema_version: int
    maintenance: str
    queue_cap_entries: int | None = CORE_POLICY.max_entries

    def __post_init__(self) -> None:
        GrowthVariant(self.schema_version, self.maintenance)  # validates both
        if self.queue_cap_entries is not None and self.queue_cap_entries < 1:
            raise UsageError(f"queue_cap_entries must be >= 1 or None, got "
                             f"{self.queue_cap_entries}")

    @property
    def name(self) -> str:
        cap = "unbounded" if self.queue_cap_entries is None else f"cap {self.queue_cap_entries}"
        return f"v{self.schema_version} {self.maintenance} {cap}"

    @property
    def policy(self) -> QueuePolicy:
        cap = self.queue_cap_entries
        return QueuePolicy(max_entries=2**62 if cap is None else cap)


def default_growth_variants() -> tuple[GrowthVariant, ...]:
    """Both schemas under the three maintenance policies on files as SQLite creates them
    by default (auto_vacuum NONE: the review's assumption), and v2 as shipped on a file as
    Android creates it (FULL), whose catch-up shows what Android gives back."""
    main = tuple(GrowthVariant(v, m) for v in (schema.V2, schema.V3) for m in MAINTENANCE)
    return (*main, GrowthVariant(schema.V2, "none", "FULL"))


def default_outage_variants() -> tuple[OutageVariant, ...]:
    """The core's cap with and without §5.5's maintenance on both schemas, and the
    queue without a cap (what review C2 fears) with and without it."""
    capped = tuple(OutageVariant(v, m) for v in (schema.V2, schema.V3)
                   for m in ("none", "perform_maintenance"))
    return (*capped, *(OutageVariant(schema.V2, m, UNBOUNDED)
                       for m in ("none", "perform_maintenance")))
