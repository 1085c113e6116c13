"""A hypothesis state machine that hunts the dual-writer races on real SQLite files.

Rules start an app operation on one of two writers (each its own connection to one
file) or step a writer by one SQL effect, so hypothesis chooses both the program and the
interleaving, and shrinks a failure to the shortest program and schedule that still
breaks an invariant (`simulator.checks.invariants`). Synchronous, on the blocking
driver's stepping protocol: hypothesis does not run async state machines.

Use it from any test suite with its own settings::

    from simulator.checks.races import machine_for
    from simulator.phone.profiles import profile
    run_state_machine_as_test(machine_for(profile("v2")), settings=settings(max_examples=200))

Busy handling follows the platform, as in `simulator.drivers.interleave`: with a busy
timeout the writer waits (the step is a no-op) while the other writer holds the lock; if
the other writer is idle, nobody can release it and the error reaches the operation.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from simulator.checks.invariants import Ledger, check_all
from simulator.drivers.blocking import connect, run
from simulator.phone import app, schema
from simulator.phone.effects import Cursor, Operation
from simulator.phone.profiles import FixProfile

WRITERS = ("a", "b")
NOW = 1_704_110_400_000
QUEUED = "u1"


class StoreRaces(RuleBasedStateMachine):
    """Two writers (think: the UI isolate and the background service) on one file."""

    profile: FixProfile

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ggsim-races-"))
        path = self.dir / "greengains.db"
        setup = connect(path)
        run(setup, schema.open_schema(self.profile.schema_version))
        run(setup, app.start_tracking_session(NOW, self.profile, "user-1"))
        run(setup, app.enqueue_upload(QUEUED, "{}", NOW))
        setup.close()
        self.conns = {w: connect(path) for w in WRITERS}
        self.observer = connect(path)  # checks see only what is committed
        self.cursors: dict[str, tuple[Cursor, Callable[[Cursor], None]] | None] = {
            w: None for w in WRITERS}
        self.ledger = Ledger()
        self.clock = NOW

    def _idle(self) -> list[str]:
        return [w for w in WRITERS if self.cursors[w] is None]

    def _busy(self) -> list[str]:
        return [w for w in WRITERS if self.cursors[w] is not None]

    def _begin(self, writer: str, operation: Operation[Any], name: str,
               done: Callable[[Cursor], None]) -> None:
        self.clock += 1000
        self.ledger.history.append(f"{writer}: {name}")
        self.cursors[writer] = (Cursor(operation), done)

    @precondition(lambda self: bool(self._idle()))
    @rule(data=st.data())
    def stop_session(self, data: st.DataObject) -> None:
        writer = data.draw(st.sampled_from(self._idle()), label="writer")

        def done(c: Cursor) -> None:
            if c.error is None:
                self.ledger.stops.append(c.result)
        self._begin(writer, app.stop_tracking_session(self.clock, self.profile, writer,
                                                      "user-1"), "stopTrackingSession", done)

    @precondition(lambda self: bool(self._idle()))
    @rule(data=st.data())
    def retry_upload(self, data: st.DataObject) -> None:
        writer = data.draw(st.sampled_from(self._idle()), label="writer")

        def done(c: Cursor) -> None:
            if c.error is None:
                self.ledger.retries[QUEUED] += 1
        self._begin(writer, app.update_upload_retry(QUEUED, "503", self.clock, self.profile),
                    "updateUploadRetry", done)

    @precondition(lambda self: bool(self._busy()))
    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        writer = data.draw(st.sampled_from(self._busy()), label="writer")
        entry = self.cursors[writer]
        assert entry is not None
        cursor, done = entry
        effect = cursor.pending
        assert effect is not None
        other = self.cursors[WRITERS[1 - WRITERS.index(writer)]]
        try:
            rows = self.conns[writer].execute(effect.statement, effect.params).fetchall()
        except sqlite3.OperationalError as exc:
            waits = self.profile.flutter_busy_timeout_ms > 0 and other is not None
            if "locked" in str(exc) and waits:
                self.ledger.history.append(f"{writer}: {effect.statement} -> busy, waits")
                return
            self.ledger.history.append(f"{writer}: {effect.statement} -> {exc}")
            cursor.throw(exc)
        else:
            self.ledger.history.append(f"{writer}: {effect.statement}")
            cursor.send(rows)
        if cursor.done:
            done(cursor)
            self.cursors[writer] = None

    @invariant()
    def invariants_hold(self) -> None:
        anomalies = check_all(self.observer, self.ledger)
        assert not anomalies, "\n".join(f"{a.label} {a.kind}: {a.detail}" for a in anomalies)

    def teardown(self) -> None:
        for conn in (*self.conns.values(), self.observer):
            conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def machine_for(profile: FixProfile) -> type[StoreRaces]:
    """The state machine class for `profile` (a subclass per profile)."""
    return type(f"StoreRaces_{profile.name.replace('+', '_')}", (StoreRaces,),
                {"profile": profile})
