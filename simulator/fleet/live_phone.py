"""A real phone in a fleet run (`ggsim run --live`): its Sensor Logger stream becomes one
more fully simulated phone, with its own SQLite file, upload queue and pot, whose batches
are sealed from the stream as it arrives (`simulator.sensors.live_session`).

The clocks: a live phone streams in real time, and the backend's clock follows the
simulated phones' (`Stack.sync_clock`). So a run with a live phone runs at speed 1 from
now (`live_start_ms`): one clock, the wall clock, for the simulated phones, the backend
and the live phone, whose readings carry its own time of day. Any other speed is refused
(`check_live`): the backend would see the live phone's uploads hours away from its clock.
The run's start is the second `ggsim run` began; the simulated clock starts once the stack
is up and the phones registered, so it lags the wall clock by that set-up (seconds), well
within the backend's 5 minutes for timestamps ahead of its clock.

Invariants: the live phone is the fleet's last index (`scenario.fleet.phones`), so the
simulated phones are those of the same run without it; each sealed batch enters the
generated ledger once and is uploaded when sealed (its window has closed by then: the
seal waits for the stream to pass it), through the same operations as every full phone;
at the run's end (`LiveEnd`) the stream is closed, its last batches sealed and uploaded in
the settle period, and the recording written if asked for.
"""

from __future__ import annotations

import asyncio
import math
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import UsageError
from simulator.fleet import sessions
from simulator.fleet.clock import SimClock
from simulator.fleet.events import Event, UploadDue
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.loader import batches
from simulator.fleet.phone import Phone
from simulator.fleet.scenario import Scenario
from simulator.live.receiver import LiveReceiver
from simulator.live.server import LiveLimits, serve_live
from simulator.live.view import LiveView, batch_event
from simulator.sensors.batch import BatchBlock
from simulator.sensors.live_session import LiveOptions, LiveSession

_FOREVER = LiveLimits(duration_s=math.inf, idle_s=math.inf)  # the run's end stops it


@dataclass
class LiveSetup:
    """What the composition root hands the run: the bound socket, the view, and where to
    write the stream as a recording (optional)."""

    sock: socket.socket
    view: LiveView
    out: Path | None = None


def check_live(scenario: Scenario) -> None:
    """A run with a live phone must run at speed 1 (module docstring)."""
    if scenario.speed != 1:
        raise UsageError(
            f"--live needs speed 1, and {scenario.name} runs at {scenario.speed:g}x: the "
            "backend's clock follows the simulated phones', so a real phone streaming in "
            "real time would upload readings stamped far from that clock (add --speed 1)")


def live_start_ms() -> int:
    """The run's start with a live phone: now, to the second (module docstring)."""
    return int(time.time()) * 1000


class LivePhone:
    """The live phone of a run (module docstring)."""

    def __init__(self, phone: Phone, setup: LiveSetup, seed: int, clock: SimClock,
                 ledger: FleetLedger, schedule: Callable[[int, Event], None],
                 end_ms: int) -> None:
        self.phone, self.setup, self.clock = phone, setup, clock
        self.ledger, self.schedule, self.end_ms = ledger, schedule, end_ms
        self.session = LiveSession(LiveOptions(seed=seed, phone=phone.index))
        self.receiver = LiveReceiver(self.session, on_sealed=self._sealed)
        self.batch_ids: dict[str, int] = {}  # batch id -> seq
        self._shown: dict[str, str] = {}  # batch id -> outcome last shown
        self._stop = asyncio.Event()
        self._serving: asyncio.Task[str] | None = None

    def start(self) -> None:
        self._serving = asyncio.ensure_future(serve_live(
            self.receiver, self.setup.sock, _FOREVER, self._stop, self.show))

    def cancel(self) -> None:
        """An interrupted run: stop listening at once."""
        self._stop.set()
        if self._serving is not None:
            self._serving.cancel()

    async def end(self, phone: Phone) -> None:
        """The run's end: close the stream, seal and schedule the last batches."""
        self._stop.set()
        if self._serving is not None:
            await self._serving
        await self.receiver.finish()
        sessions.end_sessions([self.phone], sys.maxsize, self.schedule)
        if self.setup.out is not None and self.session.device_id is not None:
            self.setup.out.write_bytes(self.session.zip_bytes())
        await self.show()

    def summary(self) -> dict[str, Any]:
        """The live phone in the run's summary: its index and device, how its stream
        arrived, and each of its batches' final outcome."""
        result = self.receiver.result
        snapshot = self.receiver.snapshot()
        pushed = snapshot.pop("device_id")
        snapshot.pop("last")
        return {"phone": self.phone.index, **snapshot, "device_id": self.phone.device_id,
                "device_id_pushed": pushed,
                "revised": list(result.revised) if result is not None else [],
                "outcomes": {str(seq): self.ledger.final.get(batch_id, "not sent")
                             for batch_id, seq in self.batch_ids.items()},
                "recording": str(self.setup.out) if self.setup.out is not None else None}

    def _sealed(self, block: BatchBlock) -> None:
        self.setup.view.events_of(batch_event(block))
        now = self.clock.now_ms()
        # every sealed batch: one whose window starts after the run's end (the simulated
        # clock lags the wall by the run's set-up) is still the phone's, uploaded in the
        # settle period
        for batch in batches(block, 0, sys.maxsize):
            self.batch_ids[batch.batch_id] = batch.seq
            self.ledger.generated.append(batch.generated(self.phone.device_hash))
            due = max(batch.due_ms, now)
            self.schedule(due, UploadDue(self.phone, batch.batch_id, batch.envelope,
                                         batch.contribution(self.phone.user_id)))
            sessions.track(self.phone, due, self.schedule)

    async def show(self) -> None:
        """Bring the view up to date: its counts, and each upload's outcome once it
        changes (every tick, and once more when the settle period's uploads are done)."""
        for batch_id, seq in self.batch_ids.items():
            outcome = self.ledger.final.get(batch_id)
            if outcome is not None and self._shown.get(batch_id) != outcome:
                self._shown[batch_id] = outcome
                self.setup.view.event(f"upload of batch {seq}: {outcome}")
        self.setup.view.update(await self.receiver.current())
