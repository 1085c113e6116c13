"""A scratch database on a PostgreSQL server: created for one measurement, dropped after.

Invariant: the database is dropped when the block ends however it ends (WITH (FORCE)
closes connections a failed measurement left open); its name carries this process's pid,
so two measurements on one server never share one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

_counter = itertools.count()


def database_url(server_url: str, name: str) -> str:
    """`server_url` with its database replaced by `name` (query options kept)."""
    base, _, query = server_url.partition("?")
    scheme, _, rest = base.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{name}" + (f"?{query}" if query else "")


@contextmanager
def scratch_database(server_url: str, purpose: str) -> Iterator[str]:
    """Create an empty database; yield its URL; drop it."""
    name = f"ggsim_{purpose}_{os.getpid()}_{next(_counter)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield database_url(server_url, name)
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(server_url, timeout=30)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
