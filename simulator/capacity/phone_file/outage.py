"""The phone offline (`measure_outages`, `simulate_outage`): every upload fails, goes to
`upload_queue` under the variant's cap (the oldest evicted) and the retry worker probes
once a day; each point is taken just before the network returns, and says where every
upload went.

Invariants:
- Outage ledger: every upload of an outage is still queued, or was evicted by the cap or
  deleted by maintenance, as the core reported them (`UploadOutcome.evicted`, the ids
  `app.app_start` returns), and the queue rows the file lost are exactly those
  (`_outage_point` asserts it).
- Deterministic: the same seed and arguments give the same points.
- Each variant's file is deleted once measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simulator.capacity.phone_file.daily_use import live_day
from simulator.capacity.phone_file.generated_uploads import PlannedUpload, outage_uploads
from simulator.capacity.phone_file.page_accounting import file_stats
from simulator.capacity.phone_file.parameters import (
    DAY_MS,
    DEFAULT_SEED,
    FULL_OUTAGE_DAYS,
    SESSIONS_PER_DAY,
    START_MS,
    Progress,
    _check_days,
)
from simulator.capacity.phone_file.results import OutagePoint
from simulator.capacity.phone_file.simulated_phone import PhoneFile
from simulator.capacity.phone_file.variants import (
    GrowthVariant,
    OutageVariant,
    default_outage_variants,
)


def simulate_outage(path: Path, variant: OutageVariant, uploads: Sequence[PlannedUpload], *,
                    days: Sequence[int], seed: int = DEFAULT_SEED, start_ms: int = START_MS,
                    sessions_per_day: int = SESSIONS_PER_DAY) -> list[OutagePoint]:
    """A phone offline from `start_ms` on, uploading `uploads` (in time order) and
    starting the app each day; a point after each of `days` days, just before the network
    returns (so the day's app start, and its maintenance, has not run)."""
    points = _check_days(days, "outage days")
    phone = PhoneFile(path, GrowthVariant(variant.schema_version, variant.maintenance).profile,
                      seed=seed, policy=variant.policy, start_ms=start_ms)
    phone.network.online = False
    sizes = {u.batch_id: len(u.envelope) for u in uploads}
    result = []
    try:
        for day in range(points[-1]):
            lo, hi = start_ms + day * DAY_MS, start_ms + (day + 1) * DAY_MS
            todays = [u for u in uploads if lo <= u.due_ms < hi]
            live_day(phone, day, todays, variant.maintenance, start_ms=start_ms,
                     sessions_per_day=sessions_per_day)
            if day + 1 in points:
                result.append(_outage_point(phone, variant, day + 1, hi, sizes, uploads))
    finally:
        phone.close()
    return result


def _outage_point(phone: PhoneFile, variant: OutageVariant, days: int, end_ms: int,
                  sizes: dict[str, int], uploads: Sequence[PlannedUpload]) -> OutagePoint:
    sent = [u.batch_id for u in uploads if u.due_ms < end_ms]
    queued = {str(r[0]) for r in phone.conn.execute("SELECT id FROM upload_queue")}
    lost = set(sent) - queued
    # every upload left a trace: queued, or dropped by the cap or the maintenance, which
    # the core reported (`UploadOutcome.evicted`, `app.app_start`'s ids)
    assert lost == phone.evicted | phone.expired and not phone.evicted & phone.expired
    rows, size = phone.queue()
    stats = file_stats(phone.conn)
    return OutagePoint(variant, days, len(sent), sum(sizes[b] for b in sent), rows, size,
                       len(phone.evicted), len(phone.expired), phone.expired_payload_bytes,
                       len(lost), sum(sizes[b] for b in lost), stats.file_bytes, stats)


def measure_outages(directory: Path, *, days: Sequence[int] = FULL_OUTAGE_DAYS,
                    variants: Sequence[OutageVariant] | None = None, seed: int = DEFAULT_SEED,
                    progress: Progress | None = None) -> tuple[list[OutagePoint], float]:
    """Each variant offline for the longest of `days`, a point at each; also returns the
    mean envelope size of the generated uploads."""
    points = _check_days(days, "outage days")
    say = progress or (lambda _: None)
    say(f"phone file: generating {points[-1]} days of uploads for the outage")
    uploads = outage_uploads(seed, points[-1])
    result: list[OutagePoint] = []
    for k, variant in enumerate(variants or default_outage_variants()):
        say(f"phone file: {variant.name}, {points[-1]} days offline")
        path = directory / f"outage-{k}.db"
        result += simulate_outage(path, variant, uploads, days=points, seed=seed)
        path.unlink()
    mean = sum(len(u.envelope) for u in uploads) / len(uploads) if uploads else 0.0
    return result, mean
