"""The run trace: JSON Lines (gzip), a header with the scenario, seed, code version and
derived options, then every phone's key events (`t`: simulated ms, `phone`, `event`,
and what happened). Written as the run goes; `read` gives the header and the events.

Invariant: the header alone is enough to re-run the scenario (`ggsim replay`).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from simulator.errors import UsageError


class Trace:
    """An open trace file."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        # level 1: a 10,000-phone day writes millions of events; speed over ratio
        self._file = gzip.open(path, "wb", compresslevel=1)  # noqa: SIM115
        self._file.write(orjson.dumps(header) + b"\n")
        self.events = 0

    def event(self, t_ms: int, phone: int, event: str, **fields: Any) -> None:
        self._file.write(orjson.dumps({"t": t_ms, "phone": phone, "event": event, **{
            k: v for k, v in fields.items() if v is not None}}) + b"\n")
        self.events += 1

    def close(self, footer: dict[str, Any] | None = None) -> None:
        if footer is not None:
            self._file.write(orjson.dumps({"kind": "footer", **footer}) + b"\n")
        self._file.close()


def read(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """(header, events) of a trace; a clear error if it is not one."""
    try:
        handle = gzip.open(path, "rb")  # noqa: SIM115
        first = handle.readline()
        header = orjson.loads(first)
    except (OSError, orjson.JSONDecodeError, EOFError) as exc:
        raise UsageError(f"{path}: not a ggsim trace ({exc})") from None
    if not isinstance(header, dict) or header.get("kind") != "header":
        raise UsageError(f"{path}: not a ggsim trace (no header line)")

    def events() -> Iterator[dict[str, Any]]:
        with handle:
            for line in handle:
                yield orjson.loads(line)
    return header, events()
