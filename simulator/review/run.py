"""Run review findings on a real PostgreSQL: `run_findings(url)` runs every finding twice,
once with the review's SQL and once with the working equivalent, each time in a fresh
scratch schema that is dropped afterwards, and returns what happened as `Result`s.

Invariants:
- The review's statements are run one at a time in autocommit, as `psql -f` with
  `ON_ERROR_STOP` runs a script: the first error stops the run and is recorded with
  PostgreSQL's own message and SQLSTATE. They are run as given, never edited.
- Setup, probes and concurrent SQL may name the scratch schema as `__SCRATCH__`, which is
  replaced by the schema's name. Every schema whose name starts with the scratch name is
  dropped, whatever happened: the server is left as it was.
- A probe runs in a transaction that is always rolled back (unless it is an autocommit
  probe), so probes do not change what later probes see.
- A failing setup is a broken finding and raises `SimulatorError`; anything the review's
  SQL or the working equivalent does, error included, is a result.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import asyncpg

from simulator.errors import SimulatorError
from simulator.review.findings import FINDINGS
from simulator.review.records import SCRATCH, Finding, Outcome, Probe, Result

SCHEMA_PREFIX = "ggsim_review_"

async def run_findings(url: str, findings: Sequence[Finding] = FINDINGS) -> list[Result]:
    """Run every finding's review SQL and working equivalent on the server at `url`, each
    in its own scratch schema, and return what happened; the server is left as it was."""
    tag = secrets.token_hex(4)
    results = []
    for n, finding in enumerate(findings):
        base = f"{SCHEMA_PREFIX}{tag}_{n:02d}"
        review, probes = await _run_case(url, f"{base}_r", finding, finding.review_sql,
                                         finding.probes, finding.meanwhile)
        working, working_probes = await _run_case(url, f"{base}_w", finding,
                                                  finding.working_equivalent,
                                                  finding.working_probes, ())
        results.append(Result(finding, review, probes, working, working_probes))
    return results


async def _run_case(url: str, schema: str, finding: Finding, statements: Sequence[str],
                    probes: Sequence[Probe],
                    meanwhile: Sequence[tuple[int, str]]) -> tuple[Outcome, tuple[Outcome, ...]]:
    """Setup, `statements`, then `probes`, in the fresh schema `schema` (dropped after)."""
    conn = await _connect(url)
    other = await _connect(url) if meanwhile else None
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        for c in (conn, other):
            if c is not None:
                await c.execute(f'SET search_path = "{schema}"')
        await _setup(conn, finding, schema)
        outcome = await _run_statements(conn, statements, other, dict(meanwhile), schema)
        probed = tuple([await _probe(conn, p, schema) for p in probes])
        return outcome, probed
    finally:
        try:
            await _drop_schemas(conn, schema)
        finally:
            await conn.close()
            if other is not None:
                await other.close()


async def _connect(url: str) -> Any:
    """A connection without a statement cache (schemas come and go between statements)."""
    return await asyncpg.connect(url, statement_cache_size=0)


async def _setup(conn: Any, finding: Finding, schema: str) -> None:
    """Run the finding's setup; a failure is a broken finding, not a result."""
    if not finding.setup_sql.strip():
        return
    try:
        await conn.execute(_scoped(finding.setup_sql, schema))
    except asyncpg.PostgresError as exc:
        raise SimulatorError(f"setup of finding {finding.id!r} failed: {exc}") from exc


async def _run_statements(conn: Any, statements: Sequence[str], other: Any,
                          meanwhile: dict[int, str], schema: str) -> Outcome:
    """Each statement in autocommit, stopping at the first error; `meanwhile[i]` is
    committed by `other` just before statement i. Notices are collected."""
    notices: list[str] = []

    def listen(_conn: Any, message: Any) -> None:
        notices.append(str(message.message))

    conn.add_log_listener(listen)
    try:
        for i, statement in enumerate(statements):
            if i in meanwhile:
                await other.execute(_scoped(meanwhile[i], schema))
            try:
                await conn.execute(statement)
            except asyncpg.PostgresError as exc:
                return _failure(exc, i, notices)
        return Outcome(ok=True, notices=tuple(notices))
    finally:
        conn.remove_log_listener(listen)


async def _probe(conn: Any, probe: Probe, schema: str) -> Outcome:
    """Run `probe` (in a transaction that is rolled back, unless autocommit); the last
    statement's rows, or its error."""
    if probe.autocommit:
        try:
            return Outcome(ok=True, rows=_render(await conn.fetch(_scoped(probe.sql[0], schema))))
        except asyncpg.PostgresError as exc:
            return _failure(exc, 0, [])
    transaction = conn.transaction()
    await transaction.start()
    try:
        *before, last = [_scoped(sql, schema) for sql in probe.sql]
        for i, sql in enumerate(before):
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                return _failure(exc, i, [])
        try:
            rows = await conn.fetch(last)
        except asyncpg.PostgresError as exc:
            return _failure(exc, len(before), [])
        return Outcome(ok=True, rows=_render(rows))
    finally:
        await transaction.rollback()


async def _drop_schemas(conn: Any, schema: str) -> None:
    """Drop `schema` and every schema whose name starts with it."""
    names = await conn.fetch("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
                             schema)
    for row in names:
        await conn.execute(f'DROP SCHEMA "{row["nspname"]}" CASCADE')


def _failure(exc: asyncpg.PostgresError, statement: int, notices: Sequence[str]) -> Outcome:
    """An Outcome from PostgreSQL's error."""
    return Outcome(ok=False, sqlstate=str(exc.sqlstate), message=str(exc.args[0]),
                   detail=str(getattr(exc, "detail", None) or ""), statement=statement,
                   notices=tuple(notices))


def _render(rows: Sequence[Any]) -> str:
    """One line per row, `column=value` pairs separated by spaces."""
    return "\n".join(" ".join(f"{k}={v}" for k, v in row.items()) for row in rows)


def _scoped(sql: str, schema: str) -> str:
    """`sql` with the scratch schema placeholder filled in."""
    return sql.replace(SCRATCH, schema)
