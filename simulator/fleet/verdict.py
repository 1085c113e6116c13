"""The verdict of a fleet run, from the three ledgers: what was generated and what each
phone ended with (`FleetLedger`), what the backend stored (`backend.readback`), and each
fully simulated phone's own file (the store invariants and its pot).

Invariant: read-only on every ledger; the phones' files are read through the app core's
own operations, the backend's tables through `backend.readback`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from simulator.backend.readback import StoredUpload, pot_days, stored_uploads
from simulator.checks.invariants import check_all
from simulator.checks.ledgers import Example, Generated, Verdict, group_arrivals, reconcile
from simulator.drivers import blocking
from simulator.faults.phone import PhoneFaults
from simulator.fleet.ledger import FleetLedger
from simulator.phone import app, potsync
from simulator.phone.profiles import FixProfile

if TYPE_CHECKING:
    from simulator.fleet.phone import Phone

Arrival = tuple[str, int, int]  # device hash, arrival order, seq


def phone_queues(phones: Sequence[Phone]) -> set[str]:
    """Every batch id the fully simulated phones' upload queues hold."""
    return {batch_id for phone in phones if phone.db is not None
            for batch_id in blocking.run_on(phone.db, app.queued_upload_ids())}


def backend_ledger(stored: list[StoredUpload], generated: list[Generated]
                   ) -> tuple[dict[str, int], list[Arrival]]:
    """Rows per batch id and the arrivals, from the stored rows: by batch id under
    recommended, by (device, window time) under as-is (which stores no batch id)."""
    rows: Counter[str] = Counter()
    arrivals: list[Arrival] = []
    by_key = None
    for r in stored:
        if r.batch_id is not None:
            # the fleet's envelopes always carry a seq, and every stored row has an id
            assert r.row_id is not None and r.seq is not None
            rows[r.batch_id] += 1
            arrivals.append((r.device_hash, r.row_id, r.seq))
            continue
        assert r.timestamp_ms is not None  # as-is: rows are known by device and window
        if by_key is None:
            by_key = {(g.device_hash, g.timestamp_ms): g for g in generated}
        g = by_key.get((r.device_hash, r.timestamp_ms))
        if g is not None:
            rows[g.batch_id] += 1
            arrivals.append((r.device_hash, len(arrivals), g.seq))
    return dict(rows), arrivals


async def build_verdict(ledger: FleetLedger, phones: Sequence[Phone], profile: FixProfile,
                        phone_faults: PhoneFaults, database_url: str | None,
                        schema: str) -> Verdict:
    """The run's verdict (see the module docstring); without a database to read, every
    batch is "unknown"."""
    full = {p.index for p in phones if p.db is not None}
    final = ledger.as_phones_say(full, phone_queues(phones))
    if not database_url:
        verdict = Verdict(generated=len(ledger.generated))
        verdict.buckets["unknown (no database to read)"] = len(ledger.generated)
        pots = None
    else:
        rows, arrivals = backend_ledger(await stored_uploads(database_url, schema),
                                        ledger.generated)
        verdict = reconcile(ledger.generated, final, ledger.acknowledged, rows,
                            group_arrivals(arrivals), ledger.refused,
                            maintained=ledger.maintained)
        pots = await pot_days(database_url, schema)
    for phone in phones:
        if phone.db is not None:
            _check_phone(verdict, phone, profile, phone_faults,
                         pots.get(phone.user_id) if pots is not None else None)
    return verdict


def _check_phone(verdict: Verdict, phone: Phone, profile: FixProfile,
                 phone_faults: PhoneFaults, backend: tuple[int, str] | None) -> None:
    """One full phone's file: the store invariants, its claims and its pot."""
    assert phone.db is not None
    conn = blocking.connect(phone.db)
    try:
        for anomaly in check_all(conn, phone.ledger):
            verdict.add(f"{anomaly.label} {anomaly.kind}",
                        Example(phone.index, None, anomaly.detail))
        pot = blocking.run(conn, potsync.pot_check(phone.user_id))
    finally:
        conn.close()
    for day, outcome in sorted(phone.claims.items()):
        if outcome == "failed":
            verdict.add("offline claim lost", Example(
                phone.index, None, f"the claim of {day} failed without network and "
                                   "was not kept for later (review §3.3)"))
    if pot.pending_claim is not None:
        verdict.add("claim never delivered", Example(
            phone.index, None, f"claim {pot.pending_claim} still queued at the end"))
    knows_unsynced = (profile.pot_versioning and pot.sync_state is not None
                      and pot.sync_state != "synced")
    if knows_unsynced:  # v3 tracks its sync state (§3.4): not a silent divergence
        verdict.pot_pending += 1
        return
    cached = pot.cached
    if cached is None or backend is None or backend[0] == cached[0]:
        return
    synced_at = int(cached[1])  # on the phone's clock, which may be off
    true_ms = synced_at - phone_faults.clock_offset_ms(phone.index, synced_at)
    if backend[1] == time.strftime("%Y-%m-%d", time.gmtime(true_ms / 1000)):
        verdict.add("pot divergence", Example(
            phone.index, synced_at, f"phone caches {cached[0]} uploads today, "
                                    f"backend has {backend[0]} ({backend[1]})"))
