"""Writing upload envelopes as JSON Lines to a file, stdout or a gzip file.

Invariants: the bytes written depend only on the generator's arguments (gzip output
carries no file name and a zero timestamp, `mtime=0`, so the same arguments give the same
`.gz` bytes too); a file at the output path is complete (it is renamed into place only
after the last byte is written).
"""

from __future__ import annotations

import contextlib
import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from simulator.errors import UsageError


@contextlib.contextmanager
def open_output(path: str) -> Iterator[BinaryIO]:
    """A binary sink for `path`: `-` is stdout, `*.gz` is gzip, anything else a file.

    A file is written as `PATH.partial` and renamed to PATH only when the writer
    finishes without an error, so a file at PATH is always complete. A path that is
    not a regular file (`/dev/null`, a FIFO) is written directly.
    """
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--out {path}: is a directory")
    if target.exists() and not target.is_file():
        # /dev/null, a FIFO: written in place; renaming a file over it would replace the
        # device itself (as root, /dev/null became a regular file once)
        with open(target, "wb") as device:
            yield device
        return
    if not target.parent.is_dir():
        raise UsageError(f"--out {path}: directory {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    try:
        raw = open(partial, "wb")  # noqa: SIM115 - closed below, renamed on success
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror}") from exc
    try:
        with raw:
            if target.suffix == ".gz":
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                   compresslevel=6) as gz:
                    yield gz  # type: ignore[misc]
            else:
                yield raw
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
