"""The three-ledger verdict of a fleet run.

Ledgers:
1. generated: every batch the phones produced in the run (known exactly from the seed:
   batch id, phone, seq, window time);
2. phones: what each phone's code ended with for each batch (saved, queued, refused,
   overflow, not sent) and, for fully simulated phones, its SQLite file;
3. backend: what the database holds (batch id, or for `as-is` the device and window
   time, and how many rows).

Accounting (every generated batch lands in exactly one bucket): delivered (in the
backend), pending (still queued on the phone at the end), refused (a permanent 4xx: the
backend said why), overflow (dropped from a full queue), not sent (the load generator
could not send it in time), gave up (an upload-only phone's in-memory retries ran out),
phone off (the phone was off, rebooting, when the batch's window began: nothing was
collected, and the delivered fraction leaves it out), and *missing*: none of these, an
anomaly. Other anomalies:
*lost acknowledged upload* (the phone saw 2xx, the backend has no row), *duplicate
upload* (more than one row for a batch), *lost to an app kill* (the app died while the
batch existed only in memory), *lost to maintenance (queued over 7 days)* (the review's
performMaintenance, §5.5, deleted the queued upload at an app start: bucket
"maintenance"), the phone-store invariants of each fully
simulated phone (R1-R5, corruption), and *pot divergence* (the phone's cached daily pot
disagrees with the backend's for the same day). Reordering (a later seq stored before an
earlier one of the same device) is counted, not an anomaly: retries reorder by design.

Which losses are anomalies: a bucket that loses data (refused, overflow, gave up) is a
loss the phone's code decides and reports (the uploader's invariant: nothing disappears
silently), or the world imposes (phone off, not sent); an anomaly is a loss nothing on
the phone reports. performMaintenance deletes unacknowledged uploads by age with a bare
DELETE whose count the review's code ignores, so its losses are anomalies, named apart
from *missing upload* (which stays "no explanation at all").
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from simulator.instants import format_instant

MAINTENANCE_LOSS = "lost to maintenance (queued over 7 days)"  # anomaly and verdict key
STORAGE_LOSS = "lost to a full or read-only phone file"  # anomaly key


class Outcome(StrEnum):
    """A batch's last state on its phone (ledger 2); the values are what traces,
    timelines and `reconcile`'s `final` hold."""

    SAVED = "saved"  # answered 2xx and recorded
    DROPPED_SAVE = "dropped_save"  # answered 2xx, the local insert returned -1
    DROPPED_QUEUE = "dropped_queue"  # failed, and its queue insert returned -1 (storage)
    QUEUED = "queued"  # in the upload queue (or an upload-only phone's memory)
    REFUSED = "refused"  # a permanent 4xx
    GAVE_UP = "gave_up"  # an upload-only phone's retries ran out
    OVERFLOW = "overflow"  # evicted from a full queue
    KILLED = "killed"  # the app died while the batch was only in memory
    PHONE_OFF = "phone_off"  # the phone was off when its window began
    NOT_SENT = "not_sent"  # the load generator could not send it in time
    VANISHED = "vanished"  # last seen queued, no longer in the queue, not maintenance
    MAINTENANCE = "maintenance"  # queued, then deleted unsent by performMaintenance


@dataclass(frozen=True)
class Generated:
    """One batch the seed says exists."""

    batch_id: str
    phone: int
    seq: int
    device_hash: str
    timestamp_ms: int
    due_ms: int  # true time of the upload (window end)


@dataclass
class Example:
    """One instance of an anomaly, to show."""

    phone: int | None
    at_ms: int | None
    detail: str


@dataclass
class Verdict:
    """What the run produced, reconciled."""

    generated: int = 0
    buckets: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)
    examples: dict[str, Example] = field(default_factory=dict)
    reordered: int = 0
    refused_reasons: Counter[str] = field(default_factory=Counter)
    pot_pending: int = 0  # phones that know their pot is not synced yet (not an anomaly)

    def add(self, kind: str, example: Example, count: int = 1) -> None:
        self.anomalies[kind] += count
        self.examples.setdefault(kind, example)

    @property
    def delivered_fraction(self) -> float:
        # a batch a phone never collected (it was off) is not a delivery that failed
        expected = self.generated - self.buckets["phone_off"]
        return self.buckets["delivered"] / expected if expected > 0 else 1.0

    @property
    def anomaly_count(self) -> int:
        return sum(self.anomalies.values())

    def as_json(self) -> dict[str, Any]:
        return {"generated": self.generated, "buckets": dict(sorted(self.buckets.items())),
                "delivered_fraction": self.delivered_fraction,
                "anomalies": dict(sorted(self.anomalies.items())),
                "examples": {k: vars(v) for k, v in sorted(self.examples.items())},
                "reordered": self.reordered, "pot_pending_phones": self.pot_pending,
                "refused_reasons": dict(sorted(self.refused_reasons.items()))}


def reconcile(generated: list[Generated], final: dict[str, str], acknowledged: set[str],
              backend_rows: dict[str, int], arrival: dict[str, list[tuple[int, int]]],
              refused_reasons: dict[str, str], *,
              maintained: Mapping[str, int] | None = None) -> Verdict:
    """Ledgers 1-3 for uploads. `final`: each batch id's last outcome on its phone
    (saved, dropped_save, dropped_queue, queued, refused, overflow, not_sent, gave_up,
    killed, maintenance; none at all is *missing*); `acknowledged`: batch ids the phone saw a
    2xx for; `backend_rows`: rows per batch id; `arrival`: per device hash, (arrival
    order, seq) of the stored rows; `refused_reasons`: batch id -> error;
    `maintained`: batch id -> true time of the app start whose performMaintenance
    deleted it from the queue (the example's time; the window's end when unknown)."""
    verdict = Verdict(generated=len(generated))
    for g in generated:
        rows = backend_rows.get(g.batch_id, 0)
        outcome = final.get(g.batch_id, "unknown")  # no outcome at all: missing
        if rows > 1:
            verdict.add("duplicate upload", Example(g.phone, g.due_ms,
                        f"batch {g.batch_id} (seq {g.seq}) stored {rows} times"), rows - 1)
        if rows:
            verdict.buckets["delivered"] += 1
            continue
        if g.batch_id in acknowledged:
            verdict.add("lost acknowledged upload", Example(
                g.phone, g.due_ms, f"batch {g.batch_id} answered 2xx, no row in the backend"))
            verdict.buckets["lost"] += 1
        elif outcome == "queued":
            verdict.buckets["pending"] += 1
        elif outcome == "killed":  # built in memory, killed before it was sent or queued
            verdict.add("lost to an app kill", Example(
                g.phone, g.due_ms, f"batch {g.batch_id} (seq {g.seq}): the app was killed "
                                   "(or the phone rebooted) before the upload was sent or "
                                   "queued"))
            verdict.buckets["killed"] += 1
        elif outcome == "dropped_queue":  # failed; the full or read-only file took no entry
            verdict.add(STORAGE_LOSS, Example(
                g.phone, g.due_ms, f"batch {g.batch_id} (seq {g.seq}): the upload failed and "
                                   "the queue insert returned -1 (the app's file was full "
                                   "or read-only): in no queue, never sent again"))
            verdict.buckets["dropped_queue"] += 1
        elif outcome == "maintenance":  # queued, then deleted unsent by an app start
            verdict.add(MAINTENANCE_LOSS, _maintenance_example(
                g, (maintained or {}).get(g.batch_id)))
            verdict.buckets["maintenance"] += 1
        elif outcome in ("refused", "overflow", "not_sent", "gave_up", "phone_off"):
            verdict.buckets[outcome] += 1
            if outcome == "refused":
                verdict.refused_reasons[refused_reasons.get(g.batch_id, "?")] += 1
        else:
            verdict.add("missing upload", Example(
                g.phone, g.due_ms, f"batch {g.batch_id} (seq {g.seq}): phone says {outcome}, "
                                   "backend has no row"))
            verdict.buckets["missing"] += 1
    for rows_of_device in arrival.values():
        seqs = [seq for _, seq in sorted(rows_of_device)]
        verdict.reordered += sum(1 for a, b in itertools.pairwise(seqs) if b < a)
    return verdict


def _maintenance_example(g: Generated, deleted_at_ms: int | None) -> Example:
    """The example of a batch performMaintenance deleted, at the app start that did it
    (`deleted_at_ms`, true time; the window's end when unknown)."""
    at = g.due_ms if deleted_at_ms is None else deleted_at_ms
    return Example(g.phone, at, (
        f"batch {g.batch_id} (seq {g.seq}, window due {format_instant(g.due_ms)}): queued, "
        f"never acknowledged, deleted by performMaintenance at the app start of "
        f"{format_instant(at)} ({(at - g.due_ms) / 86_400_000:.1f} days later) as an "
        "upload_queue entry over 7 days old (review §5.5)"))


def group_arrivals(rows: list[tuple[str, int, int]]) -> dict[str, list[tuple[int, int]]]:
    """(device hash, arrival order, seq) rows -> per device list."""
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for device, order, seq in rows:
        out[device].append((order, seq))
    return out
