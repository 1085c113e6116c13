"""The sky (and ground) of a city: sun elevation, cloud cover, sea-level pressure, relief.

- Sun elevation: the low-precision solar coordinates of the Astronomical Almanac (also
  NOAA's "general solar position" formulae), accurate to about 0.01 degree for 1950-2050.
- Cloud cover in [0, 1]: a slow random process per city, a logistic function of a sum
  of sinusoids with periods 3 h to 4 days and seeded phases (smooth, a pure function of
  time, so any time window can be generated on its own).
- Sea-level pressure (hPa): 1013.25 plus synoptic weather, a sum of sinusoids with
  periods 16 h to 6 days (amplitudes 1-6 hPa, standard deviation about 6 hPa; the steepest
  change is about 1 hPa/h, within the 3-6 hPa in 3 h that meteorologists call rapid),
  plus the semidiurnal atmospheric tide S2 (about 0.5-1 hPa at mid latitudes, maxima
  near 10:00 and 22:00 local solar time; Dai & Wang 1999).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.seeds import Stream, generator

F64 = npt.NDArray[np.float64]
SEA_LEVEL_HPA = 1013.25
_HOUR_S = 3600.0


def sun_elevation_deg(epoch_s: F64, lat: float | F64, lon: float | F64) -> F64:
    """Solar elevation angle (degrees, refraction ignored) at each instant and place."""
    d = epoch_s / 86_400.0 - 10_957.5  # days since J2000.0 (2000-01-01 12:00 UTC)
    mean_lon = np.radians((280.460 + 0.9856474 * d) % 360.0)
    anomaly = np.radians((357.528 + 0.9856003 * d) % 360.0)
    ecl_lon = mean_lon + np.radians(1.915) * np.sin(anomaly) + np.radians(0.020) * np.sin(
        2 * anomaly)
    obliquity = np.radians(23.439 - 0.0000004 * d)
    declination = np.arcsin(np.sin(obliquity) * np.sin(ecl_lon))
    right_ascension = np.arctan2(np.cos(obliquity) * np.sin(ecl_lon), np.cos(ecl_lon))
    gmst_deg = (280.46061837 + 360.98564736629 * d) % 360.0
    hour_angle = np.radians(gmst_deg + lon) - right_ascension
    phi = np.radians(lat)
    sin_elev = np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.cos(
        hour_angle)
    return np.asarray(np.degrees(np.arcsin(np.clip(sin_elev, -1.0, 1.0))), dtype=np.float64)


def _wavevectors(rng: np.random.Generator, count: int) -> F64:
    wavelength_m = rng.uniform(3_000.0, 10_000.0, count)
    angle = rng.uniform(0, 2 * np.pi, count)
    k = 2 * np.pi / wavelength_m
    return np.stack([k * np.cos(angle), k * np.sin(angle)], axis=1)


@dataclass(frozen=True)
class Sky:
    """Seeded weather of one city; every method is a pure function of time."""

    lon: float
    cloud_periods_h: F64
    cloud_amplitudes: F64
    cloud_phases: F64
    cloud_bias: float
    pressure_periods_h: F64
    pressure_amplitudes: F64
    pressure_phases: F64
    terrain_wavevectors: F64  # (3, 2) radians per metre
    terrain_amplitudes: F64
    terrain_phases: F64

    @classmethod
    def seeded(cls, seed: int, city_index: int, lon: float) -> Sky:
        """The weather of city `city_index` under run seed `seed`."""
        rng = generator(seed, Stream.CITY, city_index)
        return cls(
            lon=lon,
            cloud_periods_h=np.array([3.0, 8.0, 36.0, 96.0]) * rng.uniform(0.8, 1.25, 4),
            cloud_amplitudes=np.array([0.6, 1.0, 1.5, 2.0]),
            cloud_phases=rng.uniform(0, 2 * np.pi, 4),
            cloud_bias=float(rng.normal(0.3, 0.5)),
            pressure_periods_h=np.array([16.0, 36.0, 72.0, 144.0]) * rng.uniform(0.8, 1.25, 4),
            pressure_amplitudes=np.array([1.0, 3.0, 5.0, 6.0]) * rng.uniform(0.5, 1.2, 4),
            pressure_phases=rng.uniform(0, 2 * np.pi, 4),
            terrain_wavevectors=_wavevectors(rng, 3),
            terrain_amplitudes=np.array([2.0, 3.0, 5.0]),
            terrain_phases=rng.uniform(0, 2 * np.pi, 3),
        )

    def ground_m(self, xy: F64) -> F64:
        """Ground elevation (m) relative to the city's at local positions `xy` (..., 2):
        gentle relief (three plane waves, 3-10 km wavelengths, +-10 m in all)."""
        phase = np.asarray(xy, dtype=np.float64) @ self.terrain_wavevectors.T
        waves = self.terrain_amplitudes * np.sin(phase + self.terrain_phases)
        return np.asarray(waves.sum(axis=-1), dtype=np.float64)

    def _waves(self, epoch_s: F64, periods_h: F64, amplitudes: F64, phases: F64) -> F64:
        hours = np.asarray(epoch_s, dtype=np.float64)[..., None] / _HOUR_S
        waves = amplitudes * np.sin(2 * np.pi * hours / periods_h + phases)
        return np.asarray(waves.sum(axis=-1), dtype=np.float64)

    def cloud_cover(self, epoch_s: F64) -> F64:
        """Fraction of sky covered, 0 (clear) .. 1 (overcast)."""
        x = self._waves(epoch_s, self.cloud_periods_h, self.cloud_amplitudes, self.cloud_phases)
        return 1.0 / (1.0 + np.exp(-(x + self.cloud_bias)))

    def sea_level_pressure_hpa(self, epoch_s: F64) -> F64:
        """Pressure reduced to sea level (hPa): weather plus the S2 tide."""
        weather = self._waves(epoch_s, self.pressure_periods_h, self.pressure_amplitudes,
                              self.pressure_phases)
        solar_hours = (np.asarray(epoch_s) / _HOUR_S + self.lon / 15.0) % 24.0
        tide = 0.6 * np.cos(2 * np.pi * (solar_hours - 10.0) / 12.0)
        return SEA_LEVEL_HPA + weather + tide
