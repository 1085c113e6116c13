"""One phone of a load test, run synchronously: its batches on the 5-minute cadence sent
through the app core's upload flow (`uploader.upload_batch`: send, then save or queue),
the retry worker (`uploader.drain_queue`) when its queue is due, the daily pot service
after each saved upload (`potsync.after_upload`) and the user's daily claim
(`potsync.cached`, `potsync.claim`) at the seeded hour a fleet run uses.

The phone decides and records; it does no I/O and never waits. `perform` runs an
operation of the core (SQL on the phone's database, HTTP on the locust user's client),
and the user sleeps until `due_ms()` before each `step`. The decisions are the fleet's
own (`fleet.phone.next_drain`, `schedule.RuntimeDraws`), so a load test phone and a
fleet run's fully simulated phone do the same thing with the same answers.

Invariants: every batch that came due before the run stopped is in the generated ledger
once, with its last outcome in `ledger.final` (not sent, if it never went); a step does
what was due at `now_ms`: at most one upload, one retry-worker run and one claim.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from simulator.backend.store import device_hash
from simulator.checks.invariants import Ledger
from simulator.checks.ledgers import Outcome
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.loader import Batch
from simulator.fleet.phone import contribution_of_queued, next_drain
from simulator.fleet.schedule import RuntimeDraws
from simulator.instants import DAY_MS, HOUR_MS, WINDOW_MS
from simulator.phone import app, potsync
from simulator.phone.effects import NetOperation
from simulator.phone.profiles import FixProfile
from simulator.phone.uploader import (
    Credentials,
    QueuePolicy,
    UploadOutcome,
    backoff_ms,
    drain_queue,
    upload_batch,
)

T = TypeVar("T")
Perform = Callable[[NetOperation[Any]], Any]


@dataclass
class LoadPhone:
    """One phone (see the module docstring)."""

    index: int
    device_id: str
    user_id: str
    creds: Credentials
    profile: FixProfile
    draws: RuntimeDraws
    ledger_out: FleetLedger  # the worker's ledgers: generated and each batch's outcome
    perform: Perform
    policy: QueuePolicy = field(default_factory=QueuePolicy)
    ledger: Ledger = field(default_factory=Ledger)  # what the phone believed (unused here)
    pending: deque[Batch] = field(default_factory=deque)
    drain_due_ms: int | None = None
    offline_attempts: int = 0
    claim_due_ms: int | None = None
    claims: dict[str, str] = field(default_factory=dict)  # day -> outcome
    joined_ms: int = 0  # when its user began holding it (simulated)
    aligned: bool = False  # send on the 5-minute boundaries (a boundary burst)
    device_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.device_hash = device_hash(self.device_id)

    # -- what is due ------------------------------------------------------------------

    def add(self, batches: Iterable[Batch], from_ms: int) -> None:
        """The phone's next batches (in due order, after those it has) that are due from
        `from_ms` on: those due earlier fell while no user ran this phone, and are not
        this run's. A batch enters the generated ledger when it comes due (`upload`,
        `close`), so a run stopped early holds only what its phones had to send."""
        kept = (batch for batch in batches if batch.due_ms >= from_ms)
        if self.aligned:  # sent on the 5-minute grid, as a herd, not at the phone's phase
            kept = (dataclasses.replace(b, due_ms=-(-b.due_ms // WINDOW_MS) * WINDOW_MS)
                    for b in kept)
        self.pending.extend(kept)

    def close(self, now_ms: int) -> None:
        """The run stops at `now_ms`: batches already due that were not sent (the user was
        behind) are generated and not sent; later ones are not this run's."""
        while self.pending and self.pending[0].due_ms <= now_ms:
            batch = self.pending.popleft()
            self.ledger_out.generated.append(batch.generated(self.device_hash))
            self.ledger_out.mark(now_ms, batch.batch_id, Outcome.NOT_SENT)
        self.pending.clear()

    def plan_claim(self, now_ms: int) -> None:
        """The user's next claim: today's seeded hour if it is still ahead, else
        tomorrow's (`RuntimeDraws.claim_hour`, as a fleet run draws it)."""
        day = now_ms // DAY_MS
        for d in (day, day + 1):
            at = d * DAY_MS + int(self.draws.claim_hour(self.index, d) * HOUR_MS)
            if at >= now_ms:
                self.claim_due_ms = at
                return

    def due_ms(self) -> int | None:
        """When the phone next has something to do, or None."""
        dues = [self.pending[0].due_ms] if self.pending else []
        dues += [d for d in (self.drain_due_ms, self.claim_due_ms) if d is not None]
        return min(dues) if dues else None

    def step(self, now_ms: int) -> None:
        """Do what is due at `now_ms`: the oldest due upload, the retry worker, the claim."""
        if self.pending and self.pending[0].due_ms <= now_ms:
            self.upload(self.pending.popleft(), now_ms)
        if self.drain_due_ms is not None and self.drain_due_ms <= now_ms:
            self.drain(now_ms)
        if self.claim_due_ms is not None and self.claim_due_ms <= now_ms:
            self.claim(now_ms)
            self.plan_claim(now_ms + 1)

    # -- operations -------------------------------------------------------------------

    def upload(self, batch: Batch, at: int) -> None:
        """Kotlin's upload flow for one batch, then the pot service if it was saved."""
        self.ledger_out.generated.append(batch.generated(self.device_hash))
        c = batch.contribution(self.user_id)
        jitter = self.draws.upload_jitter(self.index, batch.batch_id)
        outcome: UploadOutcome = self.perform(upload_batch(
            batch.envelope, c, self.creds, at, jitter, self.profile, self.policy))
        self.ledger_out.record(self, batch.batch_id, outcome, at, None)
        if outcome.result == Outcome.QUEUED:
            self.want_drain(at + backoff_ms(0, jitter, self.policy))
        elif outcome.result == Outcome.SAVED:
            if self.drain_due_ms is not None and self.drain_due_ms > at + 60_000:
                self.want_drain(at + 1_000)  # back online: the worker runs now
            self.perform(potsync.after_upload(self.user_id, batch.batch_id, self.creds, at,
                                              self.profile))

    def want_drain(self, at_ms: int) -> None:
        """Ask for the retry worker at `at_ms` (an earlier request supersedes a later)."""
        if self.drain_due_ms is None or at_ms < self.drain_due_ms:
            self.drain_due_ms = at_ms

    def drain(self, at: int) -> None:
        """One run of the retry worker, then its next run from what the queue holds."""
        self.drain_due_ms = None
        jitters = self.draws.drain_jitters(self.index, at)

        def contribution_of(batch_id: str, envelope: bytes) -> app.Contribution:
            return contribution_of_queued(batch_id, envelope, self.user_id)
        done: list[tuple[str, UploadOutcome]] = self.perform(drain_queue(
            self.creds, at, jitters, self.profile, contribution_of, self.policy))
        for batch_id, outcome in done:
            self.ledger_out.record(self, batch_id, outcome, at, None)
        for batch_id, outcome in done:
            if outcome.result == Outcome.SAVED:
                self.perform(potsync.after_upload(self.user_id, batch_id, self.creds, at,
                                                  self.profile))
        due, self.offline_attempts = next_drain(self.perform(app.next_retry_at()), done, at,
                                                jitters[0], self.offline_attempts,
                                                self.policy)
        if due is not None:
            self.want_drain(due)

    def claim(self, at: int) -> None:
        """The user opens the app and claims the pot if the cache shows it unlocked."""
        self.claim_due_ms = None
        cached = self.perform(potsync.cached(self.user_id, self.profile))
        if not cached or not cached["is_unlocked"] or cached["has_claimed_today"]:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime(at / 1000))
        self.claims[day] = str(self.perform(potsync.claim(
            self.user_id, f"{self.device_id}-{day}", self.creds, at, self.profile)))

    def queued(self) -> list[str]:
        """The batch ids the phone's upload queue holds now."""
        return list(self.perform(app.queued_upload_ids()))
