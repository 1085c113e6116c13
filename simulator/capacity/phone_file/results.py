"""The report's dataclasses: a growth variant's file after some days (`GrowthPoint`), the
maintenance arriving late (`CatchUp`), the batching check (`BatchingCheck`), an outage
variant's file before the network returns (`OutagePoint`), and the whole measurement
(`PhoneFileReport`, with the inputs that determine it).

Invariants: frozen dataclasses of plain values; `PhoneFileReport.to_json` gives plain
JSON types (dataclasses as dicts, tuples as lists) and is a function of the fields only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from simulator.capacity.phone_file.page_accounting import FileStats
from simulator.capacity.phone_file.variants import GrowthVariant, OutageVariant


@dataclass(frozen=True)
class GrowthPoint:
    """A variant's file after `days` days of use."""

    variant: GrowthVariant
    profile: str
    days: int
    uploads: int  # upload_batch calls so far, all acknowledged
    saved_uploads: int  # of which the local insert succeeded
    contributions_rows: int
    tracking_sessions_rows: int
    file_bytes: int
    freelist_bytes: int
    contributions_bytes: int  # the table and all its indexes (dbstat)
    bytes_per_contribution_row: float  # contributions_bytes / rows
    file_bytes_per_contribution_row: float
    stats: FileStats


@dataclass(frozen=True)
class CatchUp:
    """The review's maintenance arriving on a file that never had any (the fix shipped to
    a phone with `days` days of data): cleanOldData once, then performMaintenance once.
    Without VACUUM an auto_vacuum NONE file keeps its size (the pages go to the free
    list); a FULL one gives them back at the commit."""

    variant: GrowthVariant
    days: int
    contributions_rows: int
    clean_old_data_deleted_rows: int
    file_bytes: int
    freelist_bytes: int
    after_clean_old_data_file_bytes: int
    after_clean_old_data_freelist_bytes: int
    after_perform_maintenance_file_bytes: int
    after_perform_maintenance_freelist_bytes: int
    perform_maintenance_s: float  # on this machine (a RAM disk when there is one)


@dataclass(frozen=True)
class BatchingCheck:
    """The same days with a commit per statement (as the app) and one per day (as here)."""

    variant: GrowthVariant
    days: int
    per_statement: FileStats
    per_day: FileStats
    differing_pages: int  # pages whose bytes differ, page 1 (header) included
    per_statement_s: float
    per_day_s: float


@dataclass(frozen=True)
class OutagePoint:
    """A variant's file after `days_offline` days without network (every upload failed),
    just before the network comes back."""

    variant: OutageVariant
    days_offline: int
    uploads: int  # uploads attempted while offline
    upload_bytes: int  # their envelopes' bytes
    queue_rows: int  # still queued: what the retry worker can still deliver
    queue_payload_bytes: int
    evicted_by_cap: int  # the core dropped the oldest entry to make room
    deleted_by_maintenance: int  # perform_maintenance's "older than 7 days"
    deleted_by_maintenance_bytes: int
    lost_uploads: int  # never delivered: uploads - queue_rows
    lost_bytes: int
    file_bytes: int
    stats: FileStats


@dataclass(frozen=True)
class PhoneFileReport:
    """Everything `measure_phone_file` measured, with the inputs that determine it."""

    seed: int
    quick: bool
    sqlite_version: str
    dbstat_available: bool
    start_ms: int
    sessions_per_day: int
    generated_uploads_per_day: float  # uploads of the growth runs / days (288 less kills)
    envelope_bytes_mean: float  # of the outage's generated uploads
    growth: tuple[GrowthPoint, ...]
    catch_ups: tuple[CatchUp, ...]
    batching: tuple[BatchingCheck, ...]
    outages: tuple[OutagePoint, ...]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (dataclasses as dicts, tuples as lists)."""
        result: dict[str, Any] = orjson.loads(orjson.dumps(dataclasses.asdict(self)))
        return result
