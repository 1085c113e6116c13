"""The city the fleet lives in, and conversions between local metres and degrees.

Invariant: places are stored as (x east, y north) metres from the city centre; the
equirectangular conversion used here is accurate to well under a metre within 50 km.
Local time is UTC plus a fixed whole-hour offset (daylight saving is not modelled), so
every UTC hour block lies within one local day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

METRES_PER_DEGREE_LAT = 111_320.0


@dataclass(frozen=True)
class City:
    """A city centre, its UTC offset (whole hours), ground elevation and spread."""

    name: str
    lat: float
    lon: float
    utc_offset_h: int
    elevation_m: float
    radius_km: float

    def to_latlon(self, x_m: npt.NDArray[np.float64],
                  y_m: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64],
                                                         npt.NDArray[np.float64]]:
        """Local metres -> (lat, lon) degrees."""
        lat = self.lat + y_m / METRES_PER_DEGREE_LAT
        lon = self.lon + x_m / (METRES_PER_DEGREE_LAT * np.cos(np.radians(self.lat)))
        return lat, lon


# Berlin: u33dc0 in review §4.2 is the Berlin centre; ground about 34 m above sea level.
BERLIN = City("berlin", 52.5200, 13.4050, utc_offset_h=1, elevation_m=34.0, radius_km=9.0)
CITIES: dict[str, City] = {c.name: c for c in (
    BERLIN,
    City("munich", 48.1372, 11.5756, utc_offset_h=1, elevation_m=519.0, radius_km=8.0),
    City("lisbon", 38.7223, -9.1393, utc_offset_h=0, elevation_m=50.0, radius_km=7.0),
)}
