"""A hypothesis state machine that hunts the dual-writer races on real SQLite files.

Rules start an app operation on one of two writers (each its own connection to one
file) or step a writer by one SQL effect, so hypothesis chooses both the program and the
interleaving, and shrinks a failure to the shortest program and schedule that still
breaks an invariant (`simulator.checks.invariants`). Synchronous, on the blocking
driver's stepping protocol: hypothesis does not run async state machines. Stepping and
busy handling are `simulator.drivers.interleave.Stepper`'s, so a failing program's
schedule means the same thing to `interleave.replay`.

The operations (each rule family can be switched off to hunt one race at a time):
- `R1`: the Kotlin upload flow's save after a backend acknowledgement, and Flutter's
  insertContribution, over a small set of ids so that they collide;
- `R2`: stopTrackingSession on one active session;
- `R3`: caching a daily pot state received from the backend, which moves on between
  receipts (fetchPotState and recordUpload both cache what they got);
- `R4`: updateUploadRetry on one queued upload;
- `R5`: the retry worker's completion (save, then dequeue) of queued uploads.

Use it from any test suite with its own settings::

    from simulator.checks.races import machine_for
    from simulator.phone.profiles import profile
    run_state_machine_as_test(machine_for(profile("v2")), settings=settings(max_examples=200))
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from simulator.checks.invariants import Ledger, check_all
from simulator.drivers import interleave
from simulator.drivers.blocking import connect, file_bytes
from simulator.errors import UsageError
from simulator.phone import app, schema
from simulator.phone.effects import Cursor, Operation, Sql
from simulator.phone.profiles import FixProfile

WRITERS = ("a", "b")
RACES = ("R1", "R2", "R3", "R4", "R5")
NOW = 1_704_110_400_000
USER = "user-1"
RETRIED = "u-retry"
CONTRIBUTION_IDS = ("c1", "c2")
QUEUED_IDS = ("q1", "q2")


def _idle() -> Operation[None]:
    return None
    yield  # pragma: no cover - makes this a generator that finishes at once


@functools.cache
def _start_file(profile: FixProfile) -> bytes:
    """The bytes of the file every program starts from (built once per profile: hypothesis
    runs hundreds of programs while it shrinks, and building the schema costs fsyncs)."""
    return file_bytes([schema.open_schema(profile.schema_version),
                       app.start_tracking_session(NOW, profile, USER),
                       app.enqueue_upload(RETRIED, "{}", NOW),
                       *(app.enqueue_upload(queued, "{}", NOW) for queued in QUEUED_IDS)])


class StoreRaces(RuleBasedStateMachine):
    """Two writers (think: the UI isolate and the background service) on one file.

    Invariant: after every step, `check_all` on a third connection (which sees only what
    is committed) finds nothing; the ledger records what the app's code believed only
    when an operation returns, as the app would.
    """

    profile: FixProfile
    races: frozenset[str] = frozenset(RACES)

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ggsim-races-"))
        path = self.dir / "greengains.db"
        path.write_bytes(_start_file(self.profile))
        self.stepper = interleave.Stepper(
            [interleave.Writer(w, connect(path), _idle()) for w in WRITERS])
        self.observer = connect(path)
        self.on_done: dict[int, Callable[[Cursor[Sql]], None]] = {}
        self.ledger = Ledger()
        self.clock = NOW
        self.serial = 0
        self.backend_pot = 0  # uploads_today on the backend; its version is the clock

    # -- plumbing ----------------------------------------------------------------------

    def _idle_writers(self) -> list[int]:
        return [i for i in range(len(WRITERS)) if self.stepper.finished(i)]

    def _can_start(self, race: str) -> bool:
        return race in self.races and bool(self._idle_writers())

    def _begin(self, data: st.DataObject, name: str, operation: Operation[Any],
               busy_timeout_ms: int, done: Callable[[Cursor[Sql]], None]) -> None:
        i = data.draw(st.sampled_from(self._idle_writers()), label="writer")
        self.clock += 1000
        self.serial += 1
        self.ledger.history.append(f"{interleave.LETTERS[i]}: begin {name}")
        self.stepper.begin(i, operation, busy_timeout_ms)
        self.on_done[i] = done

    # -- R1: contributions ---------------------------------------------------------------

    @precondition(lambda self: self._can_start("R1"))
    @rule(data=st.data(), cid=st.sampled_from(CONTRIBUTION_IDS))
    def kotlin_save(self, data: st.DataObject, cid: str) -> None:
        c = app.Contribution(cid, self.clock, self.serial, "u33dc0", True, self.clock, USER)
        side, operation = app.kotlin_side_save(c, self.profile)
        silent = side == app.KOTLIN  # Kotlin's own insert(): the upload was acknowledged

        def done(cursor: Cursor[Sql]) -> None:
            if silent:
                self.ledger.acknowledged.append(c)
                if cursor.result == -1:
                    self.ledger.kotlin_minus_one.add(c.id)
            elif cursor.error is None:
                self.ledger.acknowledged.append(c)
        timeout = (self.profile.kotlin_busy_timeout_ms if silent
                   else self.profile.flutter_busy_timeout_ms)
        self._begin(data, f"kotlin save {cid}", operation, timeout, done)

    @precondition(lambda self: self._can_start("R1"))
    @rule(data=st.data(), cid=st.sampled_from(CONTRIBUTION_IDS))
    def flutter_insert(self, data: st.DataObject, cid: str) -> None:
        c = app.Contribution(cid, self.clock, self.serial, "u33dc1", True, self.clock, USER)

        def done(cursor: Cursor[Sql]) -> None:
            if cursor.error is None:
                self.ledger.acknowledged.append(c)
        self._begin(data, f"insertContribution {cid}", app.insert_contribution(c, self.profile),
                    self.profile.flutter_busy_timeout_ms, done)

    # -- R2: tracking sessions -----------------------------------------------------------

    @precondition(lambda self: self._can_start("R2"))
    @rule(data=st.data())
    def stop_session(self, data: st.DataObject) -> None:
        def done(cursor: Cursor[Sql]) -> None:
            if cursor.error is None:
                self.ledger.stops.append(cursor.result)
        self._begin(data, "stopTrackingSession",
                    app.stop_tracking_session(self.clock, self.profile, "stop", USER),
                    self.profile.flutter_busy_timeout_ms, done)

    # -- R3: the daily pot cache ---------------------------------------------------------

    @precondition(lambda self: "R3" in self.races)
    @rule()
    def backend_records_upload(self) -> None:
        self.backend_pot += 1
        self.clock += 1000
        self.ledger.history.append(f"backend: uploads_today = {self.backend_pot}")

    @precondition(lambda self: self._can_start("R3"))
    @rule(data=st.data())
    def cache_pot(self, data: st.DataObject) -> None:
        uploads, version = self.backend_pot, self.clock
        pot = {"user_id": USER, "total_credits": 10, "uploads_today": uploads,
               "uploads_required": 5, "is_unlocked": int(uploads >= 5),
               "has_claimed_today": 0, "last_claim_date": None, "last_synced_at": version,
               "cached_at": version, "backend_updated_at": version}

        def done(cursor: Cursor[Sql]) -> None:
            if cursor.error is None:
                self.ledger.pot_seen.append((USER, version, uploads))
        self._begin(data, f"cacheDailyPot uploads_today={uploads}",
                    app.cache_daily_pot(pot, self.profile),
                    self.profile.flutter_busy_timeout_ms, done)

    # -- R4: the retry count -------------------------------------------------------------

    @precondition(lambda self: self._can_start("R4"))
    @rule(data=st.data())
    def retry_upload(self, data: st.DataObject) -> None:
        def done(cursor: Cursor[Sql]) -> None:
            if cursor.error is None:
                self.ledger.retries[RETRIED] += 1
        self._begin(data, "updateUploadRetry",
                    app.update_upload_retry(RETRIED, "503", self.clock, self.profile),
                    self.profile.flutter_busy_timeout_ms, done)

    # -- R5: completing a queued upload --------------------------------------------------

    @precondition(lambda self: self._can_start("R5"))
    @rule(data=st.data(), qid=st.sampled_from(QUEUED_IDS))
    def complete_upload(self, data: st.DataObject, qid: str) -> None:
        c = app.Contribution(qid, self.clock, self.serial, "u33dc2", True, self.clock, USER)
        self._begin(data, f"completeQueuedUpload {qid}",
                    app.complete_queued_upload(qid, c, self.profile),
                    self.profile.flutter_busy_timeout_ms, lambda cursor: None)

    # -- the scheduler's move ------------------------------------------------------------

    @precondition(lambda self: len(self._idle_writers()) < len(WRITERS))
    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        busy = [i for i in range(len(WRITERS)) if not self.stepper.finished(i)]
        i = data.draw(st.sampled_from(busy), label="step writer")
        self.stepper.step(i)
        taken = self.stepper.steps[-1]
        self.ledger.history.append(f"{interleave.LETTERS[i]}: "
                                   f"{' '.join(taken.statement.split())} -> {taken.outcome}")
        if self.stepper.finished(i):
            self.on_done.pop(i)(self.stepper.states[i].cursor)

    @invariant()
    def invariants_hold(self) -> None:
        anomalies = check_all(self.observer, self.ledger)
        assert not anomalies, "\n".join(
            [*(f"{a.label} {a.kind}: {a.detail}" for a in anomalies),
             f"schedule: {''.join(self.stepper.schedule)}", "history:",
             *(f"  {line}" for line in self.ledger.history)])

    def teardown(self) -> None:
        for state in self.stepper.states:
            state.writer.conn.close()
        self.observer.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def machine_for(profile: FixProfile, races: Iterable[str] = RACES) -> type[StoreRaces]:
    """The state machine class for `profile`, with only the operations of `races`."""
    chosen = frozenset(races)
    unknown = chosen - set(RACES)
    if unknown or not chosen:
        raise UsageError(f"races must be a non-empty subset of {RACES}, got {sorted(chosen)}")
    suffix = "_".join(sorted(chosen)) if chosen != set(RACES) else "all"
    return type(f"StoreRaces_{profile.name.replace('+', '_')}_{suffix}", (StoreRaces,),
                {"profile": profile, "races": chosen})
