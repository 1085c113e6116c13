"""Per-phone traits, drawn once per phone from its own seed.

Invariant: the traits of phone i depend only on (run seed, i, fleet options); they are
drawn from `generator(seed, Stream.PHONE_TRAITS, i)` as a fixed vector of uniforms, then
transformed vectorised over the fleet. Sources of each figure:

- clock skew: NTP-synchronised phones are within about a second (N(0, 1.5 s)); 2 % of
  phones have a clock minutes off (manual time, no network time).
- barometer: present in about 70 % of phones (flagships and most mid-range; many budget
  models omit it; the review calls pressure "new, optional").
- pressure offset: Bosch BMP280 datasheet, absolute accuracy +-1 hPa -> N(0, 0.5 hPa).
- accelerometer: ST LSM6DSO datasheet, zero-g offset +-20 mg before calibration; after
  factory calibration N(0, 0.05 m/s^2) per axis; sensitivity tolerance +-1 % -> N(1, 0.3 %).
- gyroscope: Android TYPE_GYROSCOPE is drift compensated; residual bias N(0, 0.003 rad/s)
  (raw bias up to +-1 deg/s = 0.017 rad/s, Bosch BMG160).
- light sensor: gain spread N(1, 10 %) between units; full scale 40,000 / 65,535 /
  88,000 lux by device class (ams TSL2591 reaches 88,000 lux; many phone sensors
  saturate lower), reported in 1 lux or 0.01 lux steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from simulator.seeds import Stream, per_phone_uniforms
from simulator.sensors.city import City
from simulator.sensors.personas import PERSONAS

N_UNIFORMS = 32
LIGHT_CLASSES_MAX_LUX = np.array([40_000.0, 65_535.0, 88_000.0])
LIGHT_CLASSES_RESOLUTION = np.array([1.0, 1.0, 0.01])
LIGHT_CLASSES_SHARE = np.array([0.4, 0.4, 0.2])

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Traits:
    """Per-phone traits for phones `phone` (arrays aligned with it)."""

    phone: npt.NDArray[np.int64]
    persona: npt.NDArray[np.int64]  # index into the fleet's persona names
    home_xy: F64  # (P, 2) metres from the city centre
    work_xy: F64
    home_floor: npt.NDArray[np.int64]
    work_floor: npt.NDArray[np.int64]
    home_ground_m: F64  # ground elevation relative to the city's
    work_ground_m: F64
    phase_ms: npt.NDArray[np.int64]  # batch windows start at phase + k * 300 s
    clock_skew_ms: npt.NDArray[np.int64]
    has_barometer: npt.NDArray[np.bool_]
    pressure_offset_hpa: F64
    accel_bias: F64  # (P, 3)
    accel_scale: F64
    gyro_bias: F64  # (P, 3)
    light_gain: F64
    light_max_lux: F64
    light_resolution: F64
    charge_overnight_probability: F64


def draw_traits(seed: int, phones: npt.NDArray[np.int64], city: City,
                persona_names: tuple[str, ...], persona_weights: F64,
                barometer_share: float = 0.7,
                ground_m: Callable[[F64], F64] | None = None) -> Traits:
    """Traits of `phones`; see the module docstring for the figures."""
    ground = ground_m if ground_m is not None else (lambda xy: np.zeros(len(xy)))
    u = per_phone_uniforms(seed, Stream.PHONE_TRAITS, phones, (N_UNIFORMS,))
    z = special.ndtri(np.clip(u, 1e-12, 1 - 1e-12))
    cum = np.cumsum(persona_weights / persona_weights.sum())
    persona = np.minimum(np.searchsorted(cum, u[:, 0], side="right"), len(cum) - 1)
    radius = city.radius_km * 1000.0 * np.sqrt(u[:, 1])
    angle = 2 * np.pi * u[:, 2]
    home = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    median_km = np.array([PERSONAS[persona_names[p]].home_work_km for p in persona])
    commute = np.minimum(median_km * np.exp(0.5 * z[:, 3]), 40.0) * 1000.0
    work_angle = 2 * np.pi * u[:, 4]
    work = home + np.stack([commute * np.cos(work_angle), commute * np.sin(work_angle)], axis=1)
    skew = np.where(u[:, 12] < 0.02, z[:, 13] * 300_000.0, z[:, 13] * 1_500.0)
    light_class = np.minimum(np.searchsorted(np.cumsum(LIGHT_CLASSES_SHARE), u[:, 21],
                                             side="right"), 2)
    charge = np.array([PERSONAS[persona_names[p]].charge_overnight_probability
                       for p in persona])
    return Traits(
        phone=phones,
        persona=persona.astype(np.int64),
        home_xy=home,
        work_xy=work,
        home_floor=np.floor(u[:, 5] * 6).astype(np.int64),
        work_floor=np.minimum(np.floor(np.exp(0.7 + 1.0 * z[:, 6])), 30).astype(np.int64),
        home_ground_m=ground(home),
        work_ground_m=ground(work),
        phase_ms=np.floor(u[:, 9] * 300_000).astype(np.int64),
        clock_skew_ms=np.round(skew).astype(np.int64),
        has_barometer=u[:, 10] < barometer_share,
        pressure_offset_hpa=0.5 * z[:, 11],
        accel_bias=0.05 * z[:, 14:17],
        accel_scale=1.0 + 0.003 * z[:, 17],
        gyro_bias=0.003 * z[:, 18:21],
        light_gain=np.exp(0.1 * z[:, 22]),
        light_max_lux=LIGHT_CLASSES_MAX_LUX[light_class],
        light_resolution=LIGHT_CLASSES_RESOLUTION[light_class],
        charge_overnight_probability=charge,
    )
