"""The vocabulary between the sans-I/O app core and the drivers that run it.

An *operation* is a generator: it yields `Sql` effects, receives each statement's rows
(a list of tuples) back, and returns its result. A network operation also yields `Http`
effects and receives an `HttpResponse`, or has a `NetworkError` thrown in (timeout,
offline, connection refused: the request may or may not have reached the server). A
statement that fails is thrown back into the operation as the `sqlite3.Error` the driver
saw, so the core handles it exactly as the modelled platform code would (Android's
`insert()` turns it into -1, sqflite raises). Transactions are explicit statements
(`BEGIN IMMEDIATE`, `COMMIT`, `ROLLBACK`); drivers run connections in autocommit mode so
nothing is implicit.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from simulator.errors import NetworkError as NetworkError

T = TypeVar("T")
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Sql:
    """Run one SQL statement with positional parameters."""

    statement: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Http:
    """Send one HTTP request to the backend (path relative to its base URL)."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HttpResponse:
    """What came back: status and body, and the seconds the server asked the client to
    wait before retrying (`Retry-After`), if it did."""

    status: int
    body: bytes = b""
    retry_after_s: int | None = None


def retry_after(value: str | None) -> int | None:
    """A `Retry-After` header's delay in seconds (RFC 9110 §10.2.3), for drivers. Only
    the delay-seconds form: the backend sends no other, and an HTTP-date would need the
    wall clock, which a phone on simulated time does not have; anything else is None."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


Operation = Generator[Sql, Rows, T]
NetOperation = Generator[Sql | Http, Any, T]


E = TypeVar("E", Sql, Sql | Http)  # the effects an operation yields


class Cursor(Generic[E]):
    """Drives one operation for a driver: `pending` is the next effect to execute; once
    the operation returns or raises, `done` is set and `outcome()` gives the result or
    re-raises the error. Every driver steps operations through this one protocol."""

    def __init__(self, operation: Generator[E, Any, Any]) -> None:
        self._operation: Generator[E, Any, Any] = operation
        self.pending: E | None = None
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._resume(lambda op: next(op))

    def _resume(self, step: Callable[[Generator[E, Any, Any]], E]) -> None:
        try:
            self.pending = step(self._operation)
        except StopIteration as stop:
            self.done, self.pending, self.result = True, None, stop.value
        except Exception as exc:  # the operation let an error out: it is finished
            self.done, self.pending, self.error = True, None, exc

    def send(self, rows: Any) -> None:
        """The pending effect succeeded with `rows` (an `HttpResponse` for `Http`)."""
        self._resume(lambda op: op.send(rows))

    def throw(self, error: BaseException) -> None:
        """The pending effect failed with `error` (handled by the operation, or not)."""
        self._resume(lambda op: op.throw(error))

    def close(self) -> None:
        """Abandon the operation where it stands (the app was killed): it never resumes."""
        self._operation.close()
        self.done, self.pending = True, None

    def outcome(self) -> Any:
        """The operation's return value; re-raises the error it let out."""
        if self.error is not None:
            raise self.error
        return self.result
