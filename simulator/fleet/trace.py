"""The run trace: JSON Lines (gzip), a header with the scenario, seed, code version and
derived options, then every phone's key events (`t`: simulated ms, `phone`, `event`,
and what happened). Written as the run goes; `read` gives the header and the events.

Invariant: the header alone is enough to re-run the scenario (`ggsim replay`).

Reading is strict: every line is one JSON object, the first the header (`kind` "header",
with the scenario). A file that is not such a trace, or a line that cannot be read (not
gzip, cut off, not JSON), is a `UsageError` naming the file and the 1-based line.
"""

from __future__ import annotations

import gzip
import zlib
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


GZIP_MAGIC = b"\x1f\x8b"
# what reading a damaged gzip stream raises: bad header or CRC, cut off, corrupt deflate
_UNREADABLE = (OSError, EOFError, zlib.error)


def read(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """(header, events) of a trace. The header is checked here; the events as they are
    iterated, each error naming `path` and the line (see the module docstring)."""
    handle = _open(path)
    records = _records(handle, path)
    header = next(records, None)
    if header is None:
        raise UsageError(f"{path}: not a ggsim trace (no header line)")
    if header.get("kind") != "header":
        raise UsageError(f"{path}, line 1: not a ggsim trace (the first line is not its "
                         "header)")
    if not isinstance(header.get("scenario"), dict):
        raise UsageError(f"{path}, line 1: the header has no scenario (not a ggsim trace)")
    return header, records


def _open(path: Path) -> gzip.GzipFile:
    """The trace's decompressed stream, once its file is known to start as gzip does."""
    try:
        with open(path, "rb") as raw:
            magic = raw.read(len(GZIP_MAGIC))
        if magic != GZIP_MAGIC:
            what = "an empty file" if not magic else "not gzip"
            raise UsageError(f"{path}: not a ggsim trace ({what}; ggsim run writes "
                             "trace.jsonl.gz)")
        return gzip.open(path, "rb")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the trace: {exc.strerror or exc}") from None


def _records(handle: gzip.GzipFile, path: Path) -> Iterator[dict[str, Any]]:
    """The JSON object of every line, in order; a `UsageError` naming the line that cannot
    be read or is not one."""
    with handle:
        number = 0
        while True:
            number += 1
            try:
                line = handle.readline()
            except _UNREADABLE as exc:
                cut = isinstance(exc, EOFError)
                why = ("the gzip stream is cut off (its run was killed before it closed "
                       "the trace)" if cut else f"damaged gzip data ({exc})")
                raise UsageError(f"{path}, line {number}: {why}") from None
            if not line:
                return
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise UsageError(f"{path}, line {number}: not JSON ({exc})") from None
            if not isinstance(record, dict):
                raise UsageError(f"{path}, line {number}: not a JSON object")
            yield record
