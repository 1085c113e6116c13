"""Daily-pot reads: `GET /daily-pot` latency (p50/p99, open model at a modest rate)
against `ggsim serve` while the tables hold each number of users' pots, loaded by COPY;
the tables grow from one size to the next and the backend runs throughout.

Invariants:
- Bounded: at most `requests` reads per table size, each with a phone's timeout.
- Clean: the reads work in a scratch database on the server the URL names (dropped
  afterwards) and stop their backend process, on errors and Ctrl-C too.
- Counted: a row's `daily_pots_rows` is `count(*)` when measured.
- Deterministic: the users read are chosen by a generator seeded with the load
  generator's `SEED`, and each pot user's device secret follows from its number.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from simulator.backend import pot
from simulator.backend.migrations import namespace
from simulator.backend.store import instant, secret_hash
from simulator.capacity.envelopes import SEED
from simulator.capacity.scratch import scratch_database
from simulator.capacity.throughput.backend_process import BackendProcess
from simulator.capacity.throughput.http_load import (
    HttpRequest,
    new_session,
    send_at,
    uniform_offsets,
)
from simulator.capacity.throughput.results import PotReadResult, PotReadRow
from simulator.capacity.throughput.setting import (
    PHONE_TIMEOUT_S,
    SAMPLE_START,
    Progress,
    say_to,
)
from simulator.capacity.throughput.step_numbers import step_result
from simulator.drivers.network import run_loop
from simulator.errors import UsageError
from simulator.instants import parse_instant
from simulator.phone.uploader import Credentials


@dataclass(frozen=True)
class _PotPlan:
    users: tuple[int, ...]
    requests: int  # per table size
    rate_per_s: float  # offered (open model): latency, not throughput


_QUICK_POTS = _PotPlan((1_000, 10_000, 100_000), 200, 100.0)
_FULL_POTS = _PotPlan((1_000, 10_000, 100_000), 1_000, 100.0)


def measure_pot_reads(database_url: str, *, quick: bool, progress: Progress | None = None,
                      users: Sequence[int] | None = None,
                      requests: int | None = None) -> PotReadResult:
    """`GET /daily-pot` latency (p50/p99, open model at a modest rate) against `ggsim
    serve` while the tables hold each number of users' pots, loaded by COPY (the tables
    grow from one size to the next; the backend runs throughout)."""
    base = _QUICK_POTS if quick else _FULL_POTS
    plan = _PotPlan(tuple(sorted(users or base.users)), requests or base.requests,
                    base.rate_per_s)
    if not plan.users or plan.users[0] < 1 or plan.requests < 1:
        raise UsageError("pot reads need positive user counts and a positive request count")
    say = say_to(progress)
    began = time.monotonic()
    clock_ms = parse_instant(SAMPLE_START)
    with scratch_database(database_url, "pots") as url, BackendProcess(url, clock_ms) as server:
        rows = run_loop(_pot_reads(url, server, plan, clock_ms, say))
    return PotReadResult(tuple(rows), plan.rate_per_s, time.monotonic() - began)


async def _pot_reads(url: str, server: BackendProcess, plan: _PotPlan, clock_ms: int,
                     say: Progress) -> list[PotReadRow]:
    rng = np.random.default_rng(SEED)
    found, loaded = [], 0
    conn = await asyncpg.connect(url, timeout=30,
                                 server_settings={"search_path": namespace("recommended")})
    try:
        async with new_session() as session:
            for users in plan.users:
                await _copy_pots(conn, loaded, users, clock_ms)
                loaded = users
                count = int(await conn.fetchval("SELECT count(*) FROM daily_pots"))
                chosen = rng.choice(users, size=min(plan.requests, users), replace=False)
                requests = [HttpRequest("GET", "/daily-pot", None,
                                        _pot_creds(int(u)).headers()) for u in chosen]
                exchanges = await send_at(session, server.url, requests,
                                          uniform_offsets(len(requests), plan.rate_per_s),
                                          timeout_s=PHONE_TIMEOUT_S)
                step = step_result(exchanges, plan.rate_per_s)
                say(f"pot reads at {users:,} users: p50 {step.latency_ms_p50:.1f} ms, p99 "
                    f"{step.latency_ms_p99:.1f} ms, errors {step.errors}")
                found.append(PotReadRow(users, count, step))
    finally:
        await conn.close()
    return found


def _pot_creds(user: int) -> Credentials:
    return Credentials(f"pot-dev-{user:06d}",
                       hashlib.sha256(f"ggsim-pot-secret-{user}".encode()).hexdigest())


async def _copy_pots(conn: Any, first: int, last: int, clock_ms: int) -> None:
    """Users `first`..`last`: a registered device each and a pot of today with some
    uploads counted (as the API would have written them)."""
    today, now = pot.day_of(clock_ms), instant(clock_ms - 3_600_000)
    users = range(first, last)
    await conn.copy_records_to_table(
        "device_secrets", columns=("device_id", "secret_hash", "user_id", "created_at"),
        records=[(_pot_creds(u).device_id, secret_hash(_pot_creds(u).secret),
                  f"pot-user-{u:06d}", now) for u in users])
    await conn.copy_records_to_table(
        "daily_pots", columns=("user_id", "total_credits", "uploads_today", "uploads_required",
                               "pot_day", "last_claim_date", "version", "updated_at"),
        records=[(f"pot-user-{u:06d}", 10 * (u % 30), u % 7, pot.PotRules().uploads_required,
                  today, None, 1 + u % 50, now) for u in users])
    await conn.execute("ANALYZE device_secrets; ANALYZE daily_pots")
