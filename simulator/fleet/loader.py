"""The fleet's batches, generated an hour at a time in pieces of phones and scheduled as
upload events, with the tracking sessions they imply.

An hour of a big fleet takes seconds to generate: it is loaded in pieces, ahead of time
while the dispatcher has nothing due, so no hour's start stalls the open model (a
whole-hour load stalled tenk-day ~8 s every hour). The pieces are spread over the hour
before theirs, one every `spacing`: loaded back to back as soon as allowed, tenk-day's 20
still stalled the loop ~8 s at every hour (nothing else ran between them) and 1.5 % of
its uploads were not sent.

Invariants: every piece of an hour is loaded before the hour's first window is due minus
`LOAD_BY_MS` (`must_load`); every generated batch in [start, end) is in the ledger once;
loading order, and so event order, is fixed by the scenario.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from simulator.checks.ledgers import Generated
from simulator.fleet import sessions
from simulator.fleet.events import Event, UploadDue
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.phone import Phone
from simulator.fleet.sessions import SESSION_GAP_MS
from simulator.instants import HOUR_MS, WINDOW_MS
from simulator.phone import app
from simulator.sensors.batch import BatchBlock
from simulator.sensors.encode import encode_lines
from simulator.sensors.generator import FleetGenerator

# an hour's windows are all loaded this long before it starts (idle loading does it
# earlier), so a session stop due in the hour's last SESSION_GAP_MS - WINDOW_MS, which
# the next hour's windows decide, is scheduled before it is due
LOAD_BY_MS = SESSION_GAP_MS - WINDOW_MS
LOAD_PIECE_PHONES = 500  # phones per piece of an hour's batches (about 0.4 s to load)


@dataclass(frozen=True)
class Piece:
    """Phones `phones` of hour block `hour`, loadable from simulated `loadable_ms`."""

    hour: int
    phones: range
    loadable_ms: int

    @property
    def due_by_ms(self) -> int:
        return self.hour * HOUR_MS - LOAD_BY_MS


class Loader:
    """Loads a run's pieces in order (see the module docstring)."""

    def __init__(self, generator: FleetGenerator, phones: Sequence[Phone],
                 ledger: FleetLedger, schedule: Callable[[int, Event], None],
                 start_ms: int, end_ms: int) -> None:
        self.generator, self.phones, self.ledger = generator, phones, ledger
        self.schedule, self.start_ms, self.end_ms = schedule, start_ms, end_ms
        n = len(phones)
        starts = range(0, n, LOAD_PIECE_PHONES)
        spacing = (HOUR_MS - LOAD_BY_MS) // len(starts)
        self.pieces = [Piece(hour, range(a, min(a + LOAD_PIECE_PHONES, n)),
                             (hour - 1) * HOUR_MS + k * spacing)
                       for hour in generator.config.hour_blocks
                       for k, a in enumerate(starts)]
        self.loaded = 0

    @property
    def done(self) -> bool:
        return self.loaded == len(self.pieces)

    def must_load(self, next_event_ms: int | None) -> bool:
        """Whether the next piece must be in before the next event runs."""
        return not self.done and (next_event_ms is None
                                  or next_event_ms >= self.pieces[self.loaded].due_by_ms)

    def may_load(self, now_ms: int) -> bool:
        """Whether the next piece may be loaded now, while the dispatcher idles."""
        return not self.done and self.pieces[self.loaded].loadable_ms <= now_ms

    def load_next(self) -> None:
        piece = self.pieces[self.loaded]
        self._load(piece.hour, piece.phones)
        # the ledgers grow by every batch and live to the end: out of the cyclic GC's
        # sight, else its full passes grow with the run and stall the dispatcher
        # (reference counting still frees everything else)
        gc.freeze()
        self.loaded += 1
        if self.done:  # the day's last sessions end after their window
            sessions.end_sessions(self.phones, sys.maxsize, self.schedule)

    def _load(self, hour: int, part: range) -> None:
        """Schedule the uploads of phones `part` whose windows start in `hour`."""
        for batch in batches(self.generator.block(part, hour), self.start_ms, self.end_ms):
            phone = self.phones[batch.phone]
            self.ledger.generated.append(batch.generated(phone.device_hash))
            c = None if phone.db is None else batch.contribution(phone.user_id)
            self.schedule(batch.due_ms, UploadDue(phone, batch.batch_id, batch.envelope, c))
            sessions.track(phone, batch.due_ms, self.schedule)
        sessions.end_sessions((self.phones[p] for p in part), (hour + 1) * HOUR_MS + WINDOW_MS,
                              self.schedule)


@dataclass(frozen=True, slots=True)
class Batch:
    """One generated batch as a phone sends it: its envelope (one JSON line, the bytes
    `ggsim generate` writes), due when its window closes."""

    phone: int
    batch_id: str
    envelope: bytes
    due_ms: int
    seq: int
    period_start_ms: int
    count: int
    geohash: str

    def generated(self, device_hash: str) -> Generated:
        """Its entry in the generated ledger."""
        return Generated(self.batch_id, self.phone, self.seq, device_hash,
                         self.period_start_ms, self.due_ms)

    def contribution(self, user_id: str) -> app.Contribution:
        """A fully simulated phone's local record of it (from the block, not parsed back
        from the envelope)."""
        return app.Contribution(self.batch_id, self.period_start_ms, self.count,
                                self.geohash, True, self.period_start_ms + WINDOW_MS, user_id)


def batches(block: BatchBlock, start_ms: int, end_ms: int) -> Iterator[Batch]:
    """The block's batches whose window starts in [start_ms, end_ms), in its order."""
    for i, line in enumerate(encode_lines(block)):
        order_ms = int(block.order_ms[i])
        if not start_ms <= order_ms < end_ms:
            continue
        yield Batch(int(block.phone[i]), block.batch_id[i].decode(),
                    bytes(line).rstrip(b"\n"), order_ms + WINDOW_MS, int(block.seq[i]),
                    int(block.period_start_ms[i]), int(block.counts[i]),
                    block.geohash[i].decode())
