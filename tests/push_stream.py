"""Sensor Logger HTTP Push messages built from a zip export: what the app would have
pushed while recording it (PUSHING.md's format), for tests of `ggsim live`.

Every sample of every CSV file (not Metadata.csv) becomes a payload entry named as the
app names it (the file's name in lower case, without .csv), with `values` holding the
row's columns other than time and seconds_elapsed: a cell that is a number as that float
(the JSON text of which reads back as the same float), an empty cell as null, any other
text as it is. Samples are grouped into messages by push period, in time order, and
numbered from 0.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import orjson

NS_PER_S = 1_000_000_000


def _value(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def samples_of(zip_path: Path) -> list[dict[str, Any]]:
    """Every sample of the export as a push entry, in time order (stable by file)."""
    entries: list[dict[str, Any]] = []
    with zipfile.ZipFile(zip_path) as zf:
        for member in sorted(zf.namelist()):
            name = member.rsplit("/", 1)[-1]
            if not name.endswith(".csv") or name == "Metadata.csv":
                continue
            rows = list(csv.reader(io.StringIO(zf.read(member).decode())))
            if not rows:
                continue
            header = rows[0]
            for row in rows[1:]:
                cells = dict(zip(header, row, strict=True))
                values = {k: _value(v) for k, v in cells.items()
                          if k not in ("time", "seconds_elapsed")}
                entries.append({"name": name.removesuffix(".csv").lower(),
                                "time": int(cells["time"]), "values": values})
    entries.sort(key=lambda entry: entry["time"])
    return entries


def push_messages(zip_path: Path, *, period_s: float = 10.0, device: str = "phone-1",
                  session: str = "session-1", ends_at_ns: int | None = None
                  ) -> list[dict[str, Any]]:
    """The export as push messages of `period_s` each, messageId 0, 1, 2, ...;
    `ends_at_ns`: every time shifted so the last sample is then (recorded "just now")."""
    entries = samples_of(zip_path)
    if ends_at_ns is not None:
        shift = ends_at_ns - entries[-1]["time"]
        for entry in entries:
            entry["time"] += shift
    t0 = entries[0]["time"]
    groups: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(int((entry["time"] - t0) // (period_s * NS_PER_S)), []).append(entry)
    return [{"messageId": i, "sessionId": session, "deviceId": device, "payload": payload}
            for i, (_, payload) in enumerate(sorted(groups.items()))]


def body(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)
