"""The records of the review findings and their checks: a `Finding` (the review's statements,
its claim, what PostgreSQL does, the working equivalent), its `Probe`s, the `Outcome` of
running some SQL, and the `Result` of running a finding; plus builders of common probes.

Invariants, checked when a record is made:
- `error_contains` is given exactly when `expect` is "error";
- an "ok-but-wrong" finding has at least one probe that shows what is wrong;
- review statements are verbatim, so they never name the scratch schema `__SCRATCH__`
  (setup, probes and concurrent SQL may; the runner fills it in);
- an autocommit probe is a single statement.
Records are frozen; the checks (`matches`) read an `Outcome` and never touch a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.errors import SimulatorError
from simulator.review.sql import NO_SEQSCAN

Expect = Literal["error", "ok", "ok-but-wrong"]
SCRATCH = "__SCRATCH__"


@dataclass(frozen=True)
class Probe:
    """SQL run after the statements under test; its last statement's rows (rendered as
    `column=value` pairs, one line per row) or its error must contain `expect`, and must
    not contain `absent`. It runs in a transaction that is rolled back, unless
    `autocommit` (a single statement, run as a scheduler would call it)."""

    sql: tuple[str, ...]
    shows: str
    expect: str
    error: bool = False
    absent: str | None = None
    autocommit: bool = False

    def __post_init__(self) -> None:
        if self.autocommit and len(self.sql) != 1:
            raise SimulatorError("an autocommit probe is a single statement")

    def matches(self, outcome: Outcome) -> bool:
        """Whether `outcome` is what this probe expects."""
        if outcome.ok == self.error:
            return False
        text = outcome.text()
        return self.expect in text and (self.absent is None or self.absent not in text)


@dataclass(frozen=True)
class Finding:
    """One statement group of the review, what it claims, and what PostgreSQL does.

    `expect` is "error" (a review statement fails; `error_contains` is a fragment of
    PostgreSQL's message), "ok" (it runs and does what the review says, probes only add
    facts) or "ok-but-wrong" (it runs, and the probes show it does not do what the
    review says). `meanwhile` holds SQL another client commits just before review
    statement i.
    """

    id: str
    section: str
    review_sql: tuple[str, ...]
    setup_sql: str
    claim: str
    expect: Expect
    reality: str
    working_equivalent: tuple[str, ...]
    error_contains: str | None = None
    notice_contains: str | None = None
    probes: tuple[Probe, ...] = ()
    working_probes: tuple[Probe, ...] = ()
    meanwhile: tuple[tuple[int, str], ...] = ()
    adapted: str = ""

    def __post_init__(self) -> None:
        if (self.expect == "error") != (self.error_contains is not None):
            raise SimulatorError(f"{self.id}: error_contains goes with expect='error' only")
        if self.expect == "ok-but-wrong" and not self.probes:
            raise SimulatorError(f"{self.id}: 'ok-but-wrong' needs a probe that shows it")
        if any(SCRATCH in sql for sql in self.review_sql):
            raise SimulatorError(f"{self.id}: review statements are verbatim, no {SCRATCH}")

    def matches(self, outcome: Outcome) -> bool:
        """Whether the review statements' `outcome` is the expected one (probes aside). An
        expected error comes from the last review statement, after the others ran."""
        if self.notice_contains and not any(self.notice_contains in n for n in outcome.notices):
            return False
        if self.expect == "error":
            return (not outcome.ok and str(self.error_contains) in outcome.message
                    and outcome.statement == len(self.review_sql) - 1)
        return outcome.ok


@dataclass(frozen=True)
class Outcome:
    """What running some SQL did: `ok`, or PostgreSQL's error (message, detail, SQLSTATE,
    0-based index of the failing statement); the notices raised; the last statement's
    rows, rendered."""

    ok: bool
    sqlstate: str = ""
    message: str = ""
    detail: str = ""
    statement: int | None = None
    notices: tuple[str, ...] = ()
    rows: str = ""

    def text(self) -> str:
        """The rows when ok, else `message` and `detail`."""
        return self.rows if self.ok else f"{self.message}\n{self.detail}".strip()


@dataclass(frozen=True)
class Result:
    """A finding's run: the review statements' outcome and probes, the working
    equivalent's outcome and probes."""

    finding: Finding
    review: Outcome
    probes: tuple[Outcome, ...]
    working: Outcome
    working_probes: tuple[Outcome, ...]

    @property
    def review_matched(self) -> bool:
        """The review statements did what `finding.expect` says."""
        return self.finding.matches(self.review)

    @property
    def probes_matched(self) -> tuple[bool, ...]:
        """Per probe, whether it showed what it expects."""
        return tuple(p.matches(o) for p, o in zip(self.finding.probes, self.probes, strict=True))

    @property
    def matched(self) -> bool:
        """The review statements and every probe behaved as the finding expects."""
        return self.review_matched and all(self.probes_matched)

    @property
    def working_ran(self) -> bool:
        """The working equivalent ran without error."""
        return self.working.ok

    @property
    def working_probes_matched(self) -> tuple[bool, ...]:
        """Per working probe, whether it showed what it expects."""
        pairs = zip(self.finding.working_probes, self.working_probes, strict=True)
        return tuple(p.matches(o) for p, o in pairs)


# --- builders of common probes ----------------------------------------------------------

def hot_probe(shows: str, hot: int) -> Probe:
    """Increment every pot's uploads_today (what each upload does) and count HOT updates."""
    return Probe(
        sql=("UPDATE daily_pots SET uploads_today = uploads_today + 1",
             "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
             "WHERE relid = 'daily_pots'::regclass"),
        shows=shows, expect=f"n_tup_upd=20 n_tup_hot_upd={hot}")


def explain(query: str, shows: str, expect: str, absent: str | None = None) -> Probe:
    """EXPLAIN of `query` with sequential scans disabled, so any usable index is used."""
    return Probe(sql=(NO_SEQSCAN, f"EXPLAIN (COSTS OFF) {query}"), shows=shows, expect=expect,
                 absent=absent)
