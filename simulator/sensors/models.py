"""Physical models of what each phone sensor reads, vectorised over (phones, samples).

Every function is pure: arrays in, arrays out; randomness arrives as standard normal
arrays drawn by the caller from the seed tree. Figures and their sources:

Light (lux; Android SensorManager constants: sunlight 110,000-120,000, shade 20,000,
overcast 10,000, sunrise 400, cloudy 100, full moon 0.25, no moon 0.001):
- clear sky, sun up: 400 + 120,000 sin(h)^1.25 (h the solar elevation): 101,000 at
  h = 60 deg, 22,500 at 15 deg, 6,100 at 5 deg; twilight falls tenfold per 3 deg of
  depression (civil twilight ends near 4 lux at -6 deg); night floor 0.001 lux.
- clouds: Kasten & Czeplak (1980), transmission 1 - 0.75 c^3.4 for cloud cover c.
- shade: x 0.18 (diffuse only: 20,000 / 110,000); street lighting about 10 lux outdoors
  after dusk (EN 13201 residential roads 2-15 lux).
- indoors: artificial light log-normal, offices median 400 lux (EN 12464-1 asks 500 lux
  at the desk), homes 150 lux; daylight factor 2 % of the diffuse sky, capped at 20,000
  lux (BRE: 2-5 % for a well-lit room, defined against an overcast sky); bedrooms about
  0.3 lux plus 5 % of that daylight (curtains). In a vehicle 20 % of outdoor light.
- phone pose: face down or in a pocket passes about 0.2 % (0-2 lux), in hand 60 %.
- sensor: unit gain spread, 3 % multiplicative noise, saturation, quantisation.

Accelerometer (m/s^2, includes gravity as Android TYPE_ACCELEROMETER does): gravity
9.80665 rotated into the phone frame by the pose (pitch, roll) with slow drift; motion as
Gaussian spread per axis (a 10 s sample catches a random gait phase, so motion shows as
spread, not a spectrum): walking 2-3 m/s^2 (vertical gait acceleration amplitude about
0.3 g; Zijlstra & Hof 2003), running 8 m/s^2, vehicle vibration 0.4, handling 0.3;
noise 0.02 m/s^2 RMS (LSM6DSO: 1.8 mg at +-2 g); resolution 0.0024 m/s^2 (16 bit, +-8 g).

Gyroscope (rad/s): bias (see traits), noise 4e-4 rad/s RMS, rotation spread walking
0.5-0.8, running 2.0, vehicle 0.08, handling 0.15; resolution 0.00107 rad/s
(16 bit, +-2000 deg/s).

Pressure (hPa): sea-level pressure from the sky, reduced to altitude with the ICAO
standard atmosphere p = p0 (1 - 2.25577e-5 h)^5.25588 (-0.12 hPa/m near sea level);
3.5 m per storey; BMP280 RMS noise 0.013 hPa (standard resolution), more in a moving
vehicle (0.05 hPa, ventilation and speed).

Location: Android `getAccuracy()` is the 68 % radius; outdoors median 5 m, indoors median
20 m (Wi-Fi and cell positioning); the reported fix is off by a 2-D Gaussian whose 68 %
radius is that accuracy (sigma = accuracy / 1.515).

Battery (% per hour while the foreground service samples every 10 s): asleep 0.6,
idle 1.5, GPS in use (walking, outdoors, vehicle) 3, running 4, screen on (in hand) +6;
charging 40 %/h to 80 % then 15 %/h (constant-current then constant-voltage phase).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulator.sensors.batch import STANDARD_GRAVITY
from simulator.sensors.personas import INDOOR, MOVING, Activity

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]


class Pose:
    """Where the phone is: integer codes used in per-sample arrays."""

    FACE_UP = 0
    FACE_DOWN = 1
    POCKET = 2
    HAND = 3
    MOUNT = 4


# Cumulative pose probabilities by activity (rows: Activity; columns: Pose).
_POSE_CUM = np.cumsum(np.array([
    [0.70, 0.30, 0.00, 0.00, 0.00],  # SLEEP: on the nightstand
    [0.55, 0.10, 0.10, 0.25, 0.00],  # HOME
    [0.60, 0.15, 0.10, 0.15, 0.00],  # WORK
    [0.00, 0.00, 0.60, 0.40, 0.00],  # OUTDOOR
    [0.00, 0.00, 0.60, 0.40, 0.00],  # WALK
    [0.00, 0.00, 0.45, 0.35, 0.20],  # VEHICLE
]), axis=1)
_POSE_PITCH_DEG = np.array([0.0, 0.0, 80.0, 40.0, 70.0])
_POSE_ROLL_DEG = np.array([0.0, 180.0, 10.0, 0.0, 0.0])
_POSE_LIGHT = np.array([1.0, 0.002, 0.002, 0.6, 0.8])
# Artificial light by activity (Activity order: sleep, home, work, outdoor, walk, vehicle):
# median lux and log-normal spread over a stay's `level_u`; share of the window daylight.
_LAMP_LUX = np.array([0.3, 150.0, 400.0, 0.0, 0.0, 0.0])
_LAMP_SPREAD = np.array([2.0, 1.5, 0.9, 0.0, 0.0, 0.0])
_DAYLIGHT_SHARE = np.array([0.05, 1.0, 1.0, 0.0, 0.0, 0.0])
STOREY_M = 3.5
DIFFUSE_CAP_LUX = 20_000.0  # bright overcast / diffuse sky (SensorManager.LIGHT_SHADE)


def pose_of(activity: I8, pose_u: F64) -> npt.NDArray[np.int64]:
    """Pose code drawn from a per-segment uniform."""
    cum = _POSE_CUM[activity.astype(np.int64)]
    return np.asarray(np.minimum((pose_u[..., None] >= cum).sum(axis=-1), 4), dtype=np.int64)


def outdoor_lux(elevation_deg: F64, cloud: F64) -> F64:
    """Horizontal illuminance outdoors in the open."""
    sin_h = np.sin(np.radians(np.maximum(elevation_deg, 0.0)))
    day = 400.0 + 120_000.0 * sin_h**1.25
    twilight = 400.0 * 10.0 ** (np.maximum(elevation_deg, -30.0) / 3.0)
    lux = np.where(elevation_deg > 0, day, np.maximum(twilight, 0.001))
    return lux * (1.0 - 0.75 * cloud**3.4)


def scene_lux(activity: I8, pose: npt.NDArray[np.int64], level_u: F64, outdoor: F64,
              elevation_deg: F64) -> F64:
    """What reaches the sensor, before the sensor's own errors."""
    act = activity.astype(np.intp)
    dark = elevation_deg < -3.0
    # The daylight factor is defined against an overcast sky, i.e. diffuse light; direct
    # sun does not reach a desk away from the window, so cap the sky's contribution.
    daylight = 0.02 * np.minimum(outdoor, DIFFUSE_CAP_LUX)
    lamp = _LAMP_LUX[act] * np.exp(_LAMP_SPREAD[act] * (level_u - 0.5))
    lamp = np.where((activity == Activity.HOME) & (daylight >= 40.0), 0.0, lamp)
    indoors = _DAYLIGHT_SHARE[act] * daylight + lamp
    open_air = outdoor * np.where(level_u < 0.3, 0.18, 1.0) + np.where(dark, 10.0, 0.0)
    in_vehicle = 0.2 * outdoor + np.where(dark, 1.0, 0.0)
    lux = np.where(np.isin(activity, INDOOR), indoors,
                   np.where(activity == Activity.VEHICLE, in_vehicle, open_air))
    return np.asarray(lux * _POSE_LIGHT[pose], dtype=np.float64)


def sensor_lux(scene: F64, gain: F64, max_lux: F64, resolution: F64, z: F32) -> F32:
    """The light sensor's reading: gain, noise, saturation, quantisation."""
    raw = np.minimum(scene * gain * np.exp(0.03 * z), max_lux)
    return np.asarray(np.round(raw / resolution) * resolution + 0.0, dtype=np.float32)


def gravity(pose: npt.NDArray[np.int64], pose_u: F64, t_min: F64, moving: npt.NDArray[np.bool_]
            ) -> F32:
    """Gravity in the phone frame (..., 3) from pose angles with a slow drift (float32:
    the sensor's own precision, and twice as fast to compute)."""
    jitter = ((np.modf(pose_u * 97.0)[0] - 0.5) * 20.0).astype(np.float32)
    phase = (2 * np.pi / 20.0 * t_min + 40.0 * pose_u).astype(np.float32)
    amplitude = np.where(moving, np.float32(8.0), np.float32(1.0))
    pitch = np.radians(_POSE_PITCH_DEG.astype(np.float32)[pose] + jitter
                       + amplitude * np.sin(phase))
    roll = np.radians(_POSE_ROLL_DEG.astype(np.float32)[pose] + np.float32(0.5) * jitter)
    g = np.float32(STANDARD_GRAVITY)
    cos_pitch = np.cos(pitch)
    out = np.empty((*pitch.shape, 3), dtype=np.float32)
    out[..., 0] = g * cos_pitch * np.sin(roll)
    out[..., 1] = g * np.sin(pitch)
    out[..., 2] = g * cos_pitch * np.cos(roll)
    return out


def motion_sigma(activity: I8, pose: npt.NDArray[np.int64], running: npt.NDArray[np.bool_]
                 ) -> tuple[F64, F64]:
    """Per-axis spread of (dynamic acceleration m/s^2, rotation rate rad/s)."""
    hand = pose == Pose.HAND
    walking = activity == Activity.WALK
    outdoor = activity == Activity.OUTDOOR
    vehicle = activity == Activity.VEHICLE
    accel = np.select([running, walking, outdoor, vehicle, hand],
                      [8.0, np.where(hand, 2.0, 3.0), 1.5, 0.4, 0.3], default=0.0)
    gyro = np.select([running, walking, outdoor, vehicle, hand],
                     [2.0, np.where(hand, 0.5, 0.8), 0.4, 0.08, 0.15], default=0.0)
    return accel, gyro


ACCEL_NOISE = 0.02
ACCEL_RESOLUTION = 16 * STANDARD_GRAVITY / 65_536
GYRO_NOISE = 4e-4
GYRO_RESOLUTION = np.radians(4000.0) / 65_536


def quantise(values: F64, step: float) -> F32:
    """Round to the sensor's least significant bit."""
    # + 0.0 turns -0.0 into 0.0, as a sensor's integer count would
    return np.asarray(np.round(values / step) * step + 0.0, dtype=np.float32)


def pressure_hpa(sea_level: F64, altitude_m: F64) -> F64:
    """ICAO standard atmosphere: pressure at `altitude_m` given sea-level pressure."""
    return sea_level * (1.0 - 2.25577e-5 * altitude_m) ** 5.25588


def battery_rate_pct_h(activity: I8, pose: npt.NDArray[np.int64],
                       running: npt.NDArray[np.bool_]) -> F64:
    """Drain (% per hour) while not charging."""
    base = np.select(
        [activity == Activity.SLEEP, running,
         np.isin(activity, MOVING)],
        [0.6, 4.0, 3.0], default=1.5)
    return base + np.where(pose == Pose.HAND, 6.0, 0.0)


def integrate_battery(start_pct: F64, drain_pct_h: F64, charging: npt.NDArray[np.bool_],
                      step_h: float) -> F64:
    """Battery level at the start of each grid step and after the last (P, T + 1): drain
    or charge, clipped to 1..100 %."""
    level = np.empty((drain_pct_h.shape[0], drain_pct_h.shape[1] + 1))
    current = start_pct.astype(np.float64).copy()
    for k in range(drain_pct_h.shape[1]):
        level[:, k] = current
        charge_rate = np.where(current < 80.0, 40.0, 15.0)
        delta = np.where(charging[:, k], charge_rate, -drain_pct_h[:, k]) * step_h
        current = np.clip(current + delta, 1.0, 100.0)
    level[:, -1] = current
    return level
