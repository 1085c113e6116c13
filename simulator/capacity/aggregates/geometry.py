"""Precision-6 geohash cells around the city: the cells that meet a disc, each cell's
distance from the centre, and the 250 m rings over which the occupancy model pools cells.

Invariants:
- Distances are the city's equirectangular metres (as `City.to_latlon`); a cell's
  distance is its centre's.
- The rings (`RING_M` wide, by centre distance) reach `RING_MARGIN_KM` past the farthest
  a phone can be (`_reach_km`: the home disc, the longest commute `MAX_COMMUTE_KM` and the
  farthest outing from work; the margin covers GPS error); a cell beyond the last ring
  counts in it.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.capacity.aggregates._types import F64, I64
from simulator.capacity.aggregates.counting import _AXIS_BITS, _CODE_BITS
from simulator.sensors.city import METRES_PER_DEGREE_LAT, City
from simulator.sensors.plan import OUTDOOR_SPOT_M

MAX_COMMUTE_KM = 40.0  # simulator.sensors.traits caps home-to-work distances here
RING_M = 250.0  # width of the rings over which the occupancy model pools cells
RING_MARGIN_KM = 5.0  # rings reach this far past where a phone can be (GPS error)
_CELL_LAT_DEG = 180.0 / (1 << _AXIS_BITS)
_CELL_LON_DEG = 360.0 / (1 << _AXIS_BITS)


def _cell_indices(code: I64) -> tuple[I64, I64]:
    """(latitude row, longitude column) of precision-6 geohash codes: bits alternate
    longitude and latitude from the top, longitude first."""
    lat = np.zeros(code.shape, dtype=np.int64)
    lon = np.zeros(code.shape, dtype=np.int64)
    for i in range(_CODE_BITS):
        bit = (code >> (_CODE_BITS - 1 - i)) & 1
        if i % 2 == 0:
            lon |= bit << (_AXIS_BITS - 1 - i // 2)
        else:
            lat |= bit << (_AXIS_BITS - 1 - i // 2)
    return lat, lon


def _metres_per_degree_lon(city: City) -> float:
    return METRES_PER_DEGREE_LAT * math.cos(math.radians(city.lat))


def _centre_distance_m(city: City, lat_row: I64, lon_col: I64) -> F64:
    """Distance of cell centres from the city centre, in the city's metres."""
    lat = -90.0 + (lat_row + 0.5) * _CELL_LAT_DEG
    lon = -180.0 + (lon_col + 0.5) * _CELL_LON_DEG
    return np.asarray(np.hypot((lat - city.lat) * METRES_PER_DEGREE_LAT,
                               (lon - city.lon) * _metres_per_degree_lon(city)),
                      dtype=np.float64)


def _grid(city: City, radius_m: float) -> tuple[I64, I64]:
    """Latitude rows and longitude columns of the cells around a disc's bounding box."""
    span_lat = radius_m / METRES_PER_DEGREE_LAT
    span_lon = radius_m / _metres_per_degree_lon(city)
    rows = np.arange(math.floor((city.lat - span_lat + 90.0) / _CELL_LAT_DEG),
                     math.floor((city.lat + span_lat + 90.0) / _CELL_LAT_DEG) + 1)
    cols = np.arange(math.floor((city.lon - span_lon + 180.0) / _CELL_LON_DEG),
                     math.floor((city.lon + span_lon + 180.0) / _CELL_LON_DEG) + 1)
    return rows.astype(np.int64), cols.astype(np.int64)


def geohash_cells_in_disc(city: City, radius_m: float) -> int:
    """Precision-6 geohash cells that meet the disc of `radius_m` around the city centre
    (in the city's equirectangular metres, as `City.to_latlon`)."""
    rows, cols = _grid(city, radius_m)
    lat_lo = -90.0 + rows * _CELL_LAT_DEG
    lon_lo = -180.0 + cols * _CELL_LON_DEG
    dy = (np.clip(city.lat, lat_lo, lat_lo + _CELL_LAT_DEG) - city.lat) * METRES_PER_DEGREE_LAT
    dx = (np.clip(city.lon, lon_lo, lon_lo + _CELL_LON_DEG) - city.lon) * \
        _metres_per_degree_lon(city)
    return int(np.count_nonzero(dy[:, None] ** 2 + dx[None, :] ** 2 <= radius_m ** 2))


def _reach_km(city: City) -> float:
    """How far from the centre a phone can be: the home disc, the longest commute and
    the farthest outing from work (GPS error aside)."""
    return city.radius_km + MAX_COMMUTE_KM + OUTDOOR_SPOT_M[1] / 1000.0


def _rings(city: City) -> I64:
    """Cells per 250 m ring (by centre distance) out to the reach plus a margin."""
    radius_m = (_reach_km(city) + RING_MARGIN_KM) * 1000.0
    rows, cols = _grid(city, radius_m)
    r = _centre_distance_m(city, np.repeat(rows, cols.size), np.tile(cols, rows.size))
    return np.bincount((r[r < radius_m] // RING_M).astype(np.int64)).astype(np.int64)


def _ring_of(city: City, code: I64, rings: int) -> I64:
    """The ring of each cell (cells beyond the last ring count in it)."""
    r = _centre_distance_m(city, *_cell_indices(code))
    return np.minimum((r // RING_M).astype(np.int64), rings - 1)
