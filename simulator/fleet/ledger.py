"""The runner's side of the verdict's ledgers: every generated batch, and each batch's
last outcome on its phone, written by one writer (`FleetLedger.mark`), which keeps the
timeline's per-minute outcomes in step.

Invariant: an outcome is an `Outcome` (a typo is an error, not a silently wrong verdict);
`final` holds its value for every batch that has one, and the timeline saw every change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from simulator.checks.invariants import Ledger
from simulator.checks.ledgers import Generated, Outcome
from simulator.fleet.timeline import Timeline
from simulator.fleet.trace import Trace
from simulator.phone.app import Contribution
from simulator.phone.uploader import UploadOutcome


class Holder(Protocol):
    """What a ledger entry needs of the phone that sent the batch (a fleet run's `Phone`,
    a load test's phone): its index and its own ledger for the store invariants."""

    @property
    def index(self) -> int: ...
    @property
    def ledger(self) -> Ledger: ...


@dataclass
class FleetLedger:
    """Ledgers 1 and 2 of a run (see `checks.ledgers`)."""

    timeline: Timeline
    trace: Trace | None = None
    generated: list[Generated] = field(default_factory=list)
    final: dict[str, str] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    # batch id -> true time of the app start whose performMaintenance deleted it
    maintained: dict[str, int] = field(default_factory=dict)

    def mark(self, at_ms: int, batch_id: str, outcome: Outcome) -> None:
        """`batch_id`'s new last outcome."""
        self.final[batch_id] = outcome.value
        self.timeline.outcome(at_ms, batch_id, outcome.value)

    def killed(self, at_ms: int, batch_id: str) -> None:
        """The app died during the batch's upload before it was queued: "killed" unless
        the batch already has an outcome."""
        outcome = self.final.setdefault(batch_id, Outcome.KILLED.value)
        self.timeline.outcome(at_ms, batch_id, outcome)

    def maintenance(self, at_ms: int, batch_ids: Iterable[str]) -> None:
        """An app start's performMaintenance deleted these queued batches."""
        for batch_id in batch_ids:
            self.maintained[batch_id] = at_ms
            self.timeline.outcome(at_ms, batch_id, Outcome.MAINTENANCE.value)

    def record(self, phone: Holder, batch_id: str, outcome: UploadOutcome, at_ms: int,
               contribution: Contribution | None) -> None:
        """What the phone's code ended an upload attempt with."""
        result = Outcome(outcome.result)
        self.mark(at_ms, batch_id, result)
        if outcome.evicted is not None:  # the queue was full: its oldest entry is gone
            self.mark(at_ms, outcome.evicted, Outcome.OVERFLOW)
        if result in (Outcome.SAVED, Outcome.DROPPED_SAVE):
            self.acknowledged.add(batch_id)
            if contribution is not None:
                phone.ledger.acknowledged.append(contribution)
                if result is Outcome.DROPPED_SAVE:
                    phone.ledger.kotlin_minus_one.add(batch_id)
        elif result is Outcome.REFUSED:
            self.refused[batch_id] = outcome.error or "?"
        if self.trace is not None:
            self.trace.event(at_ms, phone.index, "upload", batch=batch_id,
                             outcome=outcome.result, status=outcome.status,
                             error=outcome.error)

    def as_phones_say(self, full_phones: set[int], queued: set[str]) -> dict[str, str]:
        """Each batch's outcome as the phones' files say it at the end: for a fully
        simulated phone (`full_phones`), "queued" is what its upload_queue really holds
        (`queued`: every full phone's queue); a batch last seen queued that an app start's
        performMaintenance deleted is "maintenance" (also when a retry in flight as it
        went recorded "queued" after it); any other batch last seen queued that the queue
        no longer holds has "vanished"."""
        final = dict(self.final)
        for g in self.generated:
            if g.phone not in full_phones:
                continue
            if g.batch_id in queued:
                final[g.batch_id] = Outcome.QUEUED.value
            elif final.get(g.batch_id) == Outcome.QUEUED:
                final[g.batch_id] = (Outcome.MAINTENANCE.value if g.batch_id in self.maintained
                                     else Outcome.VANISHED.value)
        return final
