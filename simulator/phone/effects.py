"""The vocabulary between the sans-I/O app core and the drivers that run it.

An *operation* is a generator: it yields `Sql` effects, receives each statement's rows
(a list of tuples) back, and returns its result. A statement that fails is thrown back
into the operation as the `sqlite3.Error` the driver saw, so the core handles it exactly
as the modelled platform code would (Android's `insert()` turns it into -1, sqflite
raises). Transactions are explicit statements (`BEGIN IMMEDIATE`, `COMMIT`,
`ROLLBACK`); drivers run connections in autocommit mode so nothing is implicit.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Sql:
    """Run one SQL statement with positional parameters."""

    statement: str
    params: tuple[Any, ...] = ()


Operation = Generator[Sql, Rows, T]
