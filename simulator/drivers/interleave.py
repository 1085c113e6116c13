"""The deterministic interleaving scheduler: several writers stepped effect by effect.

Each writer is an operation of the sans-I/O core with its own connection to one real
SQLite file. A step executes one effect of one writer; the order of steps is a
*schedule*, printable as a short string (writer i is the i-th letter: "aabab"), chosen by
a seed (random or PCT) or given (replay). Everything that happens is real SQLite
behaviour on the file; the same schedule on the same start state gives the same file.

Locks: the scheduler runs one thread, so a writer must never wait inside SQLite (the
lock holder could not move). Connections have SQLite's busy timeout 0; a `SQLITE_BUSY`
outcome is handled as the writer's platform would:
- busy timeout 0 (plain SQLite): the error is thrown into the operation at once;
- busy timeout > 0 (Android's 2,500 ms): the writer is *blocked* and its effect is retried
  when it is scheduled again after another writer made progress; if every unfinished
  writer is blocked, no one can release a lock within the timeout, so the error is thrown
  into the writer that has waited longest (SQLite's busy handler would time out too).
A blocked attempt is a step of the schedule too, so replay needs no extra information.
"""

from __future__ import annotations

import random
import sqlite3
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator.errors import UsageError
from simulator.phone.effects import Cursor, Operation, Sql

LETTERS = string.ascii_lowercase


@dataclass
class Writer:
    """One actor: a name, its connection, its operation and the busy timeout it has."""

    name: str
    conn: sqlite3.Connection
    operation: Operation[Any]
    busy_timeout_ms: int = 0


@dataclass
class _State:
    writer: Writer
    cursor: Cursor[Sql]
    blocked_since: int | None = None  # step at which it first hit a lock, if blocked

    @property
    def done(self) -> bool:
        return self.cursor.done


@dataclass(frozen=True)
class Step:
    """What one step did: writer index, statement, 'ok', 'busy-wait' or an error, and
    the writers that could have been scheduled instead (letters)."""

    writer: int
    statement: str
    outcome: str
    ready: str = ""


@dataclass
class Interleaving:
    """The outcome of one run: schedule string, per-writer results/errors, and steps."""

    schedule: str
    results: list[Any]
    errors: list[BaseException | None]
    steps: list[Step] = field(default_factory=list)


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class Stepper:
    """Steps writers one effect at a time with the busy rule of this module; the
    schedulers below and the hypothesis state machine (`simulator.checks.races`) share
    it. `begin` gives a finished writer a new operation on the same connection."""

    def __init__(self, writers: Sequence[Writer]) -> None:
        if len(writers) > len(LETTERS):
            raise UsageError(f"at most {len(LETTERS)} writers, got {len(writers)}")
        for w in writers:
            w.conn.execute("PRAGMA busy_timeout = 0")
        self.states = [_State(w, Cursor(w.operation)) for w in writers]
        self.schedule: list[str] = []
        self.steps: list[Step] = []

    def begin(self, i: int, operation: Operation[Any], busy_timeout_ms: int) -> None:
        """Start `operation` on writer `i`, which must have finished its last one."""
        if not self.states[i].done:
            raise UsageError(f"writer {LETTERS[i]!r} is still running an operation")
        writer = Writer(self.states[i].writer.name, self.states[i].writer.conn, operation,
                        busy_timeout_ms)
        self.states[i] = _State(writer, Cursor(operation))

    def finished(self, i: int) -> bool:
        """Writer `i` has no pending effect (its operation returned or raised)."""
        return self.states[i].done

    def runnable(self) -> list[int]:
        """Unfinished writers that are not blocked; all unfinished ones if every one is
        blocked (then the next step times one of them out)."""
        alive = [i for i, s in enumerate(self.states) if not s.done]
        free = [i for i in alive if self.states[i].blocked_since is None]
        return free or alive

    def step(self, i: int) -> None:
        state = self.states[i]
        effect = state.cursor.pending
        if effect is None:
            raise UsageError(f"schedule names writer {LETTERS[i]!r}, which has finished")
        self.schedule.append(LETTERS[i])
        ready = "".join(LETTERS[j] for j in self.runnable())
        try:
            rows = state.writer.conn.execute(effect.statement, effect.params).fetchall()
        except sqlite3.Error as exc:
            if _is_busy(exc) and state.writer.busy_timeout_ms > 0 and not self._all_blocked(i):
                if state.blocked_since is None:
                    state.blocked_since = len(self.steps)
                self.steps.append(Step(i, effect.statement, "busy-wait", ready))
                return
            self.steps.append(Step(i, effect.statement, f"{type(exc).__name__}: {exc}", ready))
            state.blocked_since = None
            state.cursor.throw(exc)
            return
        self.steps.append(Step(i, effect.statement, "ok", ready))
        for other in self.states:
            other.blocked_since = None  # progress: everyone may try again
        state.cursor.send(rows)

    def _all_blocked(self, i: int) -> bool:
        """True if every other unfinished writer is already blocked (a lock cycle)."""
        others = [s for j, s in enumerate(self.states) if j != i and not s.done]
        return self.states[i].blocked_since is not None and all(
            s.blocked_since is not None for s in others)

    def outcome(self) -> Interleaving:
        return Interleaving("".join(self.schedule), [s.cursor.result for s in self.states],
                            [s.cursor.error for s in self.states], self.steps)


def replay(writers: Sequence[Writer], schedule: str, max_steps: int = 10_000) -> Interleaving:
    """Run `writers` in exactly the order of `schedule`; then the rest runs without
    preemption: the last writer goes on while it can, then the lowest unfinished one
    (so any prefix is a valid schedule, and the completion adds no needless switches)."""
    run = Stepper(writers)
    for letter in schedule:
        index = LETTERS.find(letter)
        if index < 0 or index >= len(writers):
            raise UsageError(f"schedule letter {letter!r} names no writer "
                             f"(writers are {LETTERS[:len(writers)]!r})")
        run.step(index)
    def no_preemption(ready: list[int]) -> int:
        last = LETTERS.find(run.schedule[-1]) if run.schedule else -1
        return last if last in ready else ready[0]

    _finish(run, no_preemption, max_steps)
    return run.outcome()


def random_schedule(writers: Sequence[Writer], seed: int,
                    max_steps: int = 10_000) -> Interleaving:
    """A seeded uniform choice among unfinished writers at every step."""
    rng = random.Random(seed)
    run = Stepper(writers)
    _finish(run, rng.choice, max_steps)
    return run.outcome()


def pct_schedule(writers: Sequence[Writer], seed: int, depth: int = 2,
                 expected_steps: int = 40, max_steps: int = 10_000) -> Interleaving:
    """PCT (Burckhardt et al., ASPLOS 2010): random distinct priorities, run the highest
    unfinished writer, and at `depth - 1` random steps drop the running writer's priority
    below all others. Finds any bug of depth d with probability >= 1/(n k^(d-1))."""
    rng = random.Random(seed)
    run = Stepper(writers)
    priority = list(range(len(writers)))
    rng.shuffle(priority)
    changes = set(rng.sample(range(1, max(expected_steps, depth)), max(depth - 1, 0)))
    lowest = -1

    def choose(ready: list[int]) -> int:
        nonlocal lowest
        best = max(ready, key=lambda i: priority[i])
        if len(run.steps) in changes:
            priority[best] = lowest
            lowest -= 1
            best = max(ready, key=lambda i: priority[i])
        return best

    _finish(run, choose, max_steps)
    return run.outcome()


def _finish(run: Stepper, choose: Callable[[list[int]], int], max_steps: int) -> None:
    while (ready := run.runnable()):
        if len(run.steps) >= max_steps:
            raise UsageError(f"no writer finished within {max_steps} steps")
        run.step(choose(ready))


def exhaustive(make_writers: Callable[[], Sequence[Writer]], *, max_schedules: int = 1_000,
               max_preemptions: int | None = None) -> Iterator[Interleaving]:
    """Every schedule of the writers `make_writers` builds (afresh for each run, on a
    fresh file), depth first, up to `max_schedules` runs and at most `max_preemptions`
    preemptions (switching away from a writer that could have gone on; CHESS's bound,
    Musuvathi & Qadeer 2007). Stateless: each schedule is replayed from the start, so
    what is explored is real SQLite behaviour every time."""
    pending = [""]
    seen: set[str] = set()
    runs = 0
    while pending and runs < max_schedules:
        prefix = pending.pop()
        outcome = replay(make_writers(), prefix)
        runs += 1
        if outcome.schedule in seen:
            continue
        seen.add(outcome.schedule)
        yield outcome
        for k in range(len(outcome.schedule) - 1, len(prefix) - 1, -1):
            chosen = outcome.schedule[k]
            for alternative in outcome.steps[k].ready:
                if alternative == chosen:
                    continue
                branch = outcome.schedule[:k] + alternative
                if max_preemptions is None or preemptions(
                        branch, outcome.steps[:k + 1]) <= max_preemptions:
                    pending.append(branch)


def preemptions(schedule: str, steps: Sequence[Step]) -> int:
    """Switches in `schedule` away from a writer that was still ready (`steps[k].ready`
    is what could run at position k)."""
    return sum(1 for k in range(1, len(schedule))
               if schedule[k] != schedule[k - 1] and schedule[k - 1] in steps[k].ready)
