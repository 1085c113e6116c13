"""Geohash encoding, vectorised over arrays of coordinates.

Invariant: `encode(lat, lon, precision)` equals the standard geohash (Niemeyer 2008) of
each point: bits alternate longitude, latitude, starting with longitude, five bits per
base-32 character. Written by hand because the geohash libraries on PyPI encode one
point per Python call, which is too slow for 2.88 million batches a day; tests compare
this with `pygeohash` on random points.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BASE32 = np.frombuffer(b"0123456789bcdefghjkmnpqrstuvwxyz", dtype=np.uint8)


def encode(lat: npt.ArrayLike, lon: npt.ArrayLike, precision: int = 6) -> npt.NDArray[np.bytes_]:
    """Geohash strings (as bytes) of the given points; precision 6 is about 1.2 x 0.6 km."""
    if not 1 <= precision <= 12:
        raise ValueError(f"geohash precision must be 1..12, got {precision}")
    lat_a = np.clip(np.asarray(lat, dtype=np.float64), -90.0, 90.0)
    lon_a = np.clip(np.asarray(lon, dtype=np.float64), -180.0, 180.0)
    bits = 5 * precision
    lon_bits = (bits + 1) // 2
    lat_bits = bits // 2
    lon_q = np.minimum(((lon_a + 180.0) / 360.0 * (1 << lon_bits)).astype(np.int64),
                       (1 << lon_bits) - 1)
    lat_q = np.minimum(((lat_a + 90.0) / 180.0 * (1 << lat_bits)).astype(np.int64),
                       (1 << lat_bits) - 1)
    code = np.zeros(lat_a.shape, dtype=np.int64)
    for i in range(bits):
        # bit i (from the top) is longitude when i is even
        if i % 2 == 0:
            bit = (lon_q >> (lon_bits - 1 - i // 2)) & 1
        else:
            bit = (lat_q >> (lat_bits - 1 - i // 2)) & 1
        code = (code << 1) | bit
    chars = np.empty((*lat_a.shape, precision), dtype=np.uint8)
    for c in range(precision):
        chars[..., c] = _BASE32[(code >> (5 * (precision - 1 - c))) & 31]
    return chars.view(f"S{precision}").reshape(lat_a.shape)
