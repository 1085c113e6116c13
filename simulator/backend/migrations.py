"""Schema variants and the migration runner.

Each variant lives in its own PostgreSQL schema (namespace), so both can sit in one
database: `as-is` in `as_is`, `recommended` in `recommended`. Its migrations are the
files `fixtures/sql/backend/<variant>/NNN_name.sql`, applied in order of NNN, each in
one transaction, and recorded in `<namespace>.schema_migrations` with a checksum.

Invariants: running `migrate` again applies nothing; two runners at once serialise on
an advisory lock; a recorded migration whose file changed is an error, never silently
re-applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from simulator.errors import MigrationError as MigrationError
from simulator.errors import UsageError
from simulator.fixtures import sql_dir

VARIANTS = {"as-is": "as_is", "recommended": "recommended"}
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6767_7369_6D  # "ggsim": one advisory lock for every runner


@dataclass(frozen=True)
class Migration:
    """One SQL file of a variant."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def namespace(variant: str) -> str:
    """The PostgreSQL schema that holds `variant`."""
    if variant not in VARIANTS:
        raise UsageError(f"schema variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return VARIANTS[variant]


def migrations(variant: str) -> list[Migration]:
    """The variant's migration files, in order."""
    directory = sql_dir("backend", variant)
    found = []
    for path in sorted(directory.iterdir()):
        match = _FILE.match(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if not found or len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: no migrations or duplicate version numbers")
    return found


async def migrate(conn: Any, variant: str) -> list[Migration]:
    """Apply the variant's pending migrations on `conn` (asyncpg); returns those applied."""
    schema = namespace(variant)
    applied: list[Migration] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                           "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                           "checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL "
                           "DEFAULT NOW())")
        done = {r["version"]: r["checksum"] for r in await conn.fetch(
            f'SELECT version, checksum FROM "{schema}".schema_migrations')}
        for migration in migrations(variant):
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{variant} migration {migration.version:03d}_{migration.name} was "
                        "applied with different contents; write a new migration instead")
                continue
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            try:
                await conn.execute(migration.sql)
            except Exception as exc:  # asyncpg.PostgresError and friends: name the file
                raise MigrationError(f"{variant} migration {migration.version:03d}_"
                                     f"{migration.name} failed: {exc}") from exc
            await conn.execute(f'INSERT INTO "{schema}".schema_migrations (version, name, '
                               "checksum) VALUES ($1, $2, $3)", migration.version,
                               migration.name, migration.checksum)
            applied.append(migration)
    return applied
