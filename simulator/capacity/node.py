"""Where one PostgreSQL node of the measured size stops being enough: the fleet size at
which each measured resource runs out, and which runs out first.

Each limit is derived from a measurement of this run (none is typed in):
- ingest: the ramp's highest rate that held its SLO, against the fleet's average upload
  rate (users × uploads per user-day / 86,400 s); the 5-minute boundary burst is reported
  beside it (aligned phones reach the server at once: the average hides it);
- the aggregation job: the fleet at which one run, over a table holding the retention
  period's rows, takes its minute (the job's own fit);
- storage: the fleet whose year (with §5.4's retention, all in the same database) fills
  the disk the measured server's data sits on.
Invariant: a limit that its measurement could not give (a ramp that never broke, a disk
not known) is None with the reason, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Limit:
    """The fleet size at which one resource runs out."""

    resource: str
    users: float | None
    users_low: float | None
    users_high: float | None
    how: str


@dataclass(frozen=True)
class OneNode:
    limits: tuple[Limit, ...]

    @property
    def first(self) -> Limit | None:
        known = [limit for limit in self.limits if limit.users is not None]
        return min(known, key=lambda limit: limit.users or 0.0) if known else None


def ingest_limit(held_rate_per_s: float | None, broke_rate_per_s: float | None,
                 uploads_per_user_day: float) -> Limit:
    """Users whose average rate the ramp's knee carries: the knee lies between the highest
    rate that held and the lowest that broke, so those two bracket it."""
    if held_rate_per_s is None:
        return Limit("ingest (average upload rate)", None, None, None,
                     "the ramp held no step: no rate to project from")
    def users(rate: float) -> float:
        return rate * SECONDS_PER_DAY / uploads_per_user_day
    high = users(broke_rate_per_s) if broke_rate_per_s is not None else None
    return Limit("ingest (average upload rate)", users(held_rate_per_s), users(held_rate_per_s),
                 high, f"{held_rate_per_s:,.0f} uploads/s held the SLO"
                 + (f", {broke_rate_per_s:,.0f}/s broke it" if broke_rate_per_s else "")
                 + f"; x 86,400 s / {uploads_per_user_day:.1f} uploads per user-day")


def job_limit(users_at_minute: float | None, low: float | None, high: float | None,
              table: str) -> Limit:
    return Limit("aggregation job (one run per minute)", users_at_minute, low, high,
                 f"the job's time against table rows, the table holding {table}"
                 if users_at_minute is not None else "the job never reached its minute")


def storage_limit(disk_bytes: int | None, bytes_per_user_year: tuple[float, float, float]
                  ) -> Limit:
    if disk_bytes is None:
        return Limit("storage (a year, retention on)", None, None, None,
                     "the server's disk is not known (an external --database-url)")
    estimate, low, high = bytes_per_user_year
    return Limit("storage (a year, retention on)", disk_bytes / estimate, disk_bytes / high,
                 disk_bytes / low, f"a {disk_bytes / 1e9:,.0f} GB disk / a user-year of "
                 "every table (the archive in the same database)")
