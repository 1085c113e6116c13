"""Counting cells: the rows each aggregate table gets from some batches, and precision-6
geohashes as integer codes.

Invariants:
- A cell is exactly a row the aggregation job (`simulator.backend.jobs.aggregate`)
  writes. Its window is `date_bin('5 minutes', timestamp_utc, 2020-01-01)`, which is
  `timestamp_ms // 300_000` (the origin is a whole number of windows after the epoch); its
  day is the UTC date, `timestamp_ms // 86_400_000`. `timestamp_utc` is the payload's
  `timestamp`, the phone's own (skewed) clock at its window start, i.e.
  `BatchBlock.period_start_ms`; the geohash is the payload's, `BatchBlock.geohash`
  (`simulator.sensors.geohash.encode`, precision 6). `check_against_job` (`job`) holds
  the counts to the job's rows on a real PostgreSQL, cell by cell.
- A geohash code is the standard bit string of a precision-6 geohash as a 30-bit integer
  (`_CODE_BITS`, a bijection: 15 bits of longitude and 15 of latitude, interleaved
  longitude first), so other keys packed above those 30 bits stay distinct exactly when
  their parts are. Another precision or a character outside the alphabet raises
  `UsageError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.capacity.aggregates._types import I64, Bytes
from simulator.errors import UsageError
from simulator.instants import DAY_MS as DAY_MS
from simulator.instants import HOUR_MS
from simulator.instants import WINDOW_MS as WINDOW_MS
from simulator.sensors.batch import BatchBlock

WINDOWS_PER_HOUR = HOUR_MS // WINDOW_MS
WINDOWS_PER_DAY = DAY_MS // WINDOW_MS  # 288
GEOHASH_PRECISION = 6
_BASE32_VALUE = np.full(256, -1, dtype=np.int64)
_BASE32_VALUE[np.frombuffer(b"0123456789bcdefghjkmnpqrstuvwxyz", dtype=np.uint8)] = np.arange(32)
_CODE_BITS = 5 * GEOHASH_PRECISION  # 30: a precision-6 geohash as an integer
_AXIS_BITS = _CODE_BITS // 2  # 15 bits of longitude and 15 of latitude
_CODE_MASK = (1 << _CODE_BITS) - 1


@dataclass(frozen=True)
class CellCount:
    """Distinct cells of some batches: the rows each aggregate table gets from them."""

    cells_5m: int  # distinct (5-minute window, geohash)
    cells_daily: int  # distinct (UTC day, geohash)


def _dense(values: npt.NDArray[Any]) -> I64:
    """Each value's index among the distinct values (for pairing with other keys)."""
    return np.unique(values, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _distinct_pairs(a: I64, b: I64) -> int:
    """Number of distinct (a, b) pairs."""
    if a.size == 0:
        return 0
    return int(np.unique(_dense(a) * (int(b.max()) + 1) + b).size)


def count_cells(timestamp_ms: npt.ArrayLike, geohash: npt.ArrayLike) -> CellCount:
    """The aggregate rows that batches with these payload timestamps (epoch ms, the
    phone's clock) and geohashes (str or bytes, any precision) produce."""
    ts = np.asarray(timestamp_ms, dtype=np.int64).reshape(-1)
    gh = np.asarray(geohash).reshape(-1)
    if ts.shape != gh.shape:
        raise UsageError(f"{ts.size} timestamps but {gh.size} geohashes: give one each")
    cells = _dense(gh)
    return CellCount(_distinct_pairs(ts // WINDOW_MS, cells), _distinct_pairs(ts // DAY_MS, cells))


def count_block_cells(blocks: Iterable[BatchBlock]) -> CellCount:
    """`count_cells` of every batch in `blocks`, as the backend would receive them."""
    parts = list(blocks)
    if not parts:
        return CellCount(0, 0)
    return count_cells(np.concatenate([b.period_start_ms for b in parts]),
                       np.concatenate([b.geohash for b in parts]))


def _geohash_code(geohash: Bytes) -> I64:
    """Precision-6 geohashes as 30-bit integers, the standard bit string (a bijection)."""
    if geohash.dtype != np.dtype(f"S{GEOHASH_PRECISION}"):
        raise UsageError(f"expected precision-{GEOHASH_PRECISION} geohashes, got {geohash.dtype}")
    chars = _BASE32_VALUE[np.frombuffer(geohash.tobytes(), dtype=np.uint8)]
    chars = chars.reshape(-1, GEOHASH_PRECISION)
    if chars.size and int(chars.min()) < 0:
        raise UsageError("a geohash holds a character outside the geohash alphabet")
    weights = 32 ** np.arange(GEOHASH_PRECISION - 1, -1, -1, dtype=np.int64)
    return np.asarray(chars @ weights, dtype=np.int64)
