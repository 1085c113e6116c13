"""What `ggsim capacity` measures and how much of it: the options a user gives, and the
sample sizes that `--quick` and a full run use.

Invariant: every size here is finite and small enough that its measurement stops by itself
(quick: the whole command in under 5 minutes on a 2-core machine; full: under an hour).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.capacity.review import HORIZON_DAYS
from simulator.errors import UsageError

VARIANTS = ("as-is", "recommended")


@dataclass(frozen=True)
class Sizes:
    """How big each measurement's samples are."""

    api_phones: int
    api_days: float
    bulk_phones: int
    bulk_days: int
    month_phones: int  # one seed, every variant: the month-scale check
    month_days: int


QUICK = Sizes(api_phones=20, api_days=0.5, bulk_phones=50, bulk_days=2, month_phones=4,
              month_days=30)
FULL = Sizes(api_phones=100, api_days=1.0, bulk_phones=100, bulk_days=3, month_phones=100,
             month_days=30)


@dataclass(frozen=True)
class CapacityOptions:
    """The command's options, validated."""

    users: tuple[int, ...] = (1_000, 10_000, 100_000)
    horizons: tuple[str, ...] = ("day", "month", "6months", "year")
    schemas: tuple[str, ...] = VARIANTS
    seeds: int = 5
    quick: bool = False
    database_url: str | None = None
    max_bytes_per_user_day: float | None = None
    first_seed: int = 1

    def __post_init__(self) -> None:
        if not self.users or min(self.users) < 1:
            raise UsageError("--users must be positive whole numbers, e.g. 1000,10000")
        unknown = set(self.horizons) - set(HORIZON_DAYS)
        if unknown or not self.horizons:
            raise UsageError(f"--horizon must be among {', '.join(HORIZON_DAYS)}; "
                             f"got {', '.join(sorted(unknown)) or 'nothing'}")
        if not self.schemas or set(self.schemas) - set(VARIANTS):
            raise UsageError("--schema must be as-is, recommended or both")
        if not 1 <= self.seeds <= 50:
            raise UsageError(f"--seeds must be between 1 and 50, got {self.seeds}")
        if self.max_bytes_per_user_day is not None and self.max_bytes_per_user_day <= 0:
            raise UsageError("--max-bytes-per-user-day must be positive")

    @property
    def sizes(self) -> Sizes:
        return QUICK if self.quick else FULL

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.first_seed, self.first_seed + self.seeds))
