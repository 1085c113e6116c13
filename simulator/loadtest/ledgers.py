"""The load test's ledgers across a cluster: each worker's part, sent to the master in
pieces small enough for one locust message, merged there and reconciled with what the
backend stores by the fleet's own verdict code (`checks.ledgers.reconcile`,
`fleet.verdict.backend_ledger`).

Invariants: merging is order-free and a piece is applied once (keyed by worker and
number); the verdict counts every generated batch once: delivered when the backend holds
it (a second row is a *duplicate upload*), *lost acknowledged upload* when it was
acknowledged and has no row, pending when its phone still queues it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from simulator.backend.readback import stored_uploads
from simulator.checks.ledgers import Generated, Verdict, group_arrivals, reconcile
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.timeline import Timeline
from simulator.fleet.verdict import backend_ledger

PIECE_BATCHES = 20_000  # generated batches a message carries (about 2 MB)

Piece = dict[str, Any]


def pieces(worker: str, ledger: FleetLedger, queued: Iterable[str],
           phones: Iterable[int]) -> Iterator[Piece]:
    """A worker's ledgers as message pieces: generated batches with their outcomes, the
    acknowledged and refused among them, what its phones' queues still hold and the
    phones it ran; the last piece says how many there are."""
    generated = ledger.generated
    queued_ids, ran = sorted(queued), sorted(phones)
    starts = list(range(0, len(generated), PIECE_BATCHES)) or [0]
    for n, start in enumerate(starts):
        part = generated[start:start + PIECE_BATCHES]
        ids = [g.batch_id for g in part]
        yield {"worker": worker, "number": n, "of": len(starts),
               "generated": [[g.batch_id, g.phone, g.seq, g.device_hash, g.timestamp_ms,
                              g.due_ms] for g in part],
               "final": {b: ledger.final[b] for b in ids if b in ledger.final},
               "acknowledged": [b for b in ids if b in ledger.acknowledged],
               "refused": {b: ledger.refused[b] for b in ids if b in ledger.refused},
               "queued": queued_ids if n == 0 else [], "phones": ran if n == 0 else []}


@dataclass
class ClusterLedger:
    """The master's merge of the workers' pieces."""

    generated: list[Generated] = field(default_factory=list)
    final: dict[str, str] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    queued: set[str] = field(default_factory=set)
    phones_by_worker: dict[str, list[int]] = field(default_factory=dict)
    _seen: set[tuple[str, int]] = field(default_factory=set)
    _expected: dict[str, int] = field(default_factory=dict)

    def add(self, piece: Piece) -> None:
        """Apply one piece (a repeated one is ignored)."""
        key = (str(piece["worker"]), int(piece["number"]))
        if key in self._seen:
            return
        self._seen.add(key)
        self._expected[key[0]] = int(piece["of"])
        self.generated += [Generated(str(b), int(p), int(s), str(h), int(t), int(d))
                           for b, p, s, h, t, d in piece["generated"]]
        self.final.update(piece["final"])
        self.acknowledged.update(piece["acknowledged"])
        self.refused.update(piece["refused"])
        self.queued.update(piece["queued"])
        if piece["phones"]:
            self.phones_by_worker[key[0]] = list(piece["phones"])

    def complete(self, workers: Iterable[str]) -> bool:
        """Whether every piece of each of `workers` is in."""
        return all(w in self._expected and sum(1 for s in self._seen if s[0] == w)
                   == self._expected[w] for w in workers)

    def phone_runs(self) -> dict[int, int]:
        """How many workers ran each phone (1 for every phone of a healthy run)."""
        runs: dict[int, int] = {}
        for phones in self.phones_by_worker.values():
            for p in phones:
                runs[p] = runs.get(p, 0) + 1
        return runs

    async def verdict(self, database_url: str | None, schema: str) -> Verdict:
        """Reconciled with the backend's rows; without a database every batch is
        "unknown (no database to read)"."""
        if not database_url:
            verdict = Verdict(generated=len(self.generated))
            verdict.buckets["unknown (no database to read)"] = len(self.generated)
            return verdict
        rows, arrivals = backend_ledger(await stored_uploads(database_url, schema),
                                        self.generated)
        # every load-test phone has a real queue: the fleet's reading of "queued" applies
        as_fleet = FleetLedger(Timeline(0), generated=self.generated, final=self.final,
                               acknowledged=self.acknowledged, refused=self.refused)
        final = as_fleet.as_phones_say({g.phone for g in self.generated}, self.queued)
        return reconcile(self.generated, final, self.acknowledged, rows,
                         group_arrivals(arrivals), self.refused)
