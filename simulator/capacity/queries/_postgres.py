"""Timing a statement on PostgreSQL and summarising its plan.

Invariants: a statement runs through asyncpg's statement cache, as the backend's pool
runs it (prepared once; PostgreSQL may switch to a generic plan after five runs, and
`pg_prepared_statements` says how many runs did); each run is timed with
`time.perf_counter` around `fetch`; `runs` runs unless `budget_s` is spent first (never
fewer than `MIN_RUNS`); the plan is read after the timed runs, from `EXPLAIN (ANALYZE,
BUFFERS, FORMAT JSON)` with the first run's arguments (a custom plan), and the generic
plan's nodes from `EXPLAIN (GENERIC_PLAN)` where the server has it (PostgreSQL 16+).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from simulator.capacity.queries._results import BackendQueryRow, PostgresPlan
from simulator.capacity.slo import nearest_rank

MIN_RUNS = 5
_INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def summarise_plan(document: Sequence[dict[str, Any]]) -> PostgresPlan:
    """The summary of one `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` document."""
    top = document[0]
    nodes = list(_nodes(top["Plan"]))
    indexes = tuple(dict.fromkeys(str(n["Index Name"]) for n in nodes
                                  if n["Node Type"] in _INDEX_NODES and "Index Name" in n))
    seq = tuple(dict.fromkeys(str(n.get("Relation Name", "?")) for n in nodes
                              if n["Node Type"] == "Seq Scan"))
    root = top["Plan"]
    return PostgresPlan(tuple(str(n["Node Type"]) for n in nodes), indexes, seq,
                        int(root.get("Shared Hit Blocks", 0)),
                        int(root.get("Shared Read Blocks", 0)), int(root.get("Actual Rows", 0)),
                        float(top.get("Execution Time", 0.0)),
                        float(top.get("Planning Time", 0.0)))


async def explain(conn: Any, statement: str, args: Sequence[Any]) -> PostgresPlan:
    """`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of `statement` with `args`, summarised."""
    text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", *args)
    return summarise_plan(orjson.loads(text))


async def _plan_counts(conn: Any, statement: str) -> tuple[int, int]:
    """(generic, custom) plans PostgreSQL used for `statement` on this connection."""
    row = await conn.fetchrow(
        "SELECT COALESCE(SUM(generic_plans), 0) AS g, COALESCE(SUM(custom_plans), 0) AS c "
        "FROM pg_prepared_statements WHERE statement = $1", statement)
    return int(row["g"]), int(row["c"])


async def generic_nodes(conn: Any, statement: str, args: Sequence[Any]) -> tuple[str, ...]:
    """The generic plan's node types (empty before PostgreSQL 16, which cannot show it).
    The extended protocol binds `args`; GENERIC_PLAN plans without looking at them."""
    if int(await conn.fetchval("SHOW server_version_num")) < 160_000:
        return ()
    text = await conn.fetchval(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {statement}", *args)
    return tuple(str(n["Node Type"]) for n in _nodes(orjson.loads(text)[0]["Plan"]))


async def time_query(conn: Any, name: str, statement: str,
                     arguments: Callable[[int], Sequence[Any]],
                     expected: Callable[[int], int], *, runs: int,
                     budget_s: float) -> BackendQueryRow:
    """Run `statement` with `arguments(i)` for run i, up to `runs` times within
    `budget_s`; `expected(i)` is run i's row count, counted independently of the engine
    (`BackendQueryRow.answers_match` says whether every run returned it)."""
    before = await _plan_counts(conn, statement)
    times: list[float] = []
    matched = True
    first_rows = -1
    began = time.perf_counter()
    for i in range(runs):
        if i >= MIN_RUNS and time.perf_counter() - began > budget_s:
            break
        args = arguments(i)
        started = time.perf_counter()
        rows = await conn.fetch(statement, *args)
        times.append(time.perf_counter() - started)
        matched = matched and len(rows) == expected(i)
        first_rows = len(rows) if first_rows < 0 else first_rows
    after = await _plan_counts(conn, statement)
    generic, custom = after[0] - before[0], after[1] - before[1]
    plan = await explain(conn, statement, arguments(0))
    return BackendQueryRow(name, " ".join(statement.split()), first_rows, expected(0), matched,
                           len(times), statistics.median(times) * 1e3,
                           nearest_rank(times, 0.99) * 1e3, plan, generic, custom,
                           await generic_nodes(conn, statement, arguments(0)))
