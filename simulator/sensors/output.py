"""Writing upload envelopes as JSON Lines to a file, stdout or a gzip file.

Invariant: the bytes written depend only on the generator's arguments: gzip output
carries no file name and a zero timestamp (`mtime=0`), so the same arguments give the
same `.gz` bytes too.
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
    """A binary sink for `path`: `-` is stdout, `*.gz` is gzip, anything else a file."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if not target.parent.exists():
        raise UsageError(f"--out {path}: directory {target.parent} does not exist")
    with open(target, "wb") as raw:
        if target.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=6) as gz:
                yield gz  # type: ignore[misc]
        else:
            yield raw
