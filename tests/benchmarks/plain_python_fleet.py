"""Plain-Python baseline: the fleet written phone by phone, reading by reading.

This is the yardstick `bench_generate.py` holds the vectorised generator
(`simulator.sensors.generator` + `simulator.sensors.encode`) against: the same work done the
obvious way, with the standard library only (`random`, `math`, `struct`, `json`) and no
NumPy in the loop. For each phone, for each 5-minute window, for each 10 s sample it
computes the same models as the vectorised code (`simulator.sensors.models`, `sky`):

- sun elevation (Astronomical Almanac low-precision formula), cloud cover and sea-level
  pressure (sums of sinusoids), evaluated at window edges and interpolated inside, as the
  vectorised generator does;
- outdoor light with Kasten-Czeplak clouds, indoor/vehicle/shade scene light and pose
  attenuation, then the sensor's gain, noise, saturation and quantisation;
- gravity rotated by the pose with a slow drift, Gaussian motion spread by activity,
  sensor noise, calibration bias and scale, quantisation; gyroscope likewise;
- pressure from the ICAO standard atmosphere at the storey's altitude, plus noise;
- imperfections: missing, stuck, NaN, duplicated and swapped readings, timestamp jitter,
  app kills (Poisson per day) that lose the batch being collected;
- per batch: summary statistics, a GPS fix (log-normal accuracy, Gaussian error), a
  geohash encoded by hand, the battery level from the day's 5-minute battery grid, and a
  UUIDv8 batch id from a SplitMix64 hash of (seed, phone, seq).

The day plan is simpler than `simulator.sensors.plan` (the persona's rhythm with jittered
change times and walk/vehicle legs between places, no excursions), which the brief allows.
Each envelope has exactly the keys and nesting of `simulator.sensors.encode.reference_line`;
the values differ (other random streams), and floats pass through float32 before
`json.dumps` writes them (as the shortest *double*, so lines are longer than the
vectorised float32 output; see README.md).

Use: ``lines = serialise(build_envelopes(seed, phones, start_ms, hours))``.
"""

from __future__ import annotations

import json
import math
import random
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any, NamedTuple

from simulator.instants import MS_PER_S, READINGS_PER_BATCH, SAMPLE_INTERVAL_S
from simulator.sensors.city import BERLIN, METRES_PER_DEGREE_LAT, City
from simulator.sensors.personas import DEFAULT_MIX, PERSONAS, Persona

# -- constants (copied from the vectorised modules as plain Python numbers) ---------------

SLEEP, HOME, WORK, OUTDOOR, WALK, VEHICLE = range(6)
INDOOR = (SLEEP, HOME, WORK)
MOVING = (OUTDOOR, WALK, VEHICLE)
HAND = 3

SAMPLE_MS = SAMPLE_INTERVAL_S * MS_PER_S
BATCH_MS = READINGS_PER_BATCH * SAMPLE_MS
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SEQ_EPOCH_MS = 1_577_836_800_000
STANDARD_GRAVITY = 9.80665
STOREY_M = 3.5
ACCEL_NOISE = 0.02
GYRO_NOISE = 4e-4
ACCEL_RESOLUTION = 16 * STANDARD_GRAVITY / 65_536
GYRO_RESOLUTION = math.radians(4000.0) / 65_536
BATTERY_STEP_MIN = 5
WALK_SPEED_MPS = 1.35
RUN_SPEED_MPS = 2.8
VEHICLE_SPEED_MPS = 7.0
STOP_WALK_MIN = 5.0

POSE_CUM = [list(accumulate(row)) for row in (
    (0.70, 0.30, 0.00, 0.00, 0.00),  # SLEEP
    (0.55, 0.10, 0.10, 0.25, 0.00),  # HOME
    (0.60, 0.15, 0.10, 0.15, 0.00),  # WORK
    (0.00, 0.00, 0.60, 0.40, 0.00),  # OUTDOOR
    (0.00, 0.00, 0.60, 0.40, 0.00),  # WALK
    (0.00, 0.00, 0.45, 0.35, 0.20),  # VEHICLE
)]
POSE_PITCH_DEG = (0.0, 0.0, 80.0, 40.0, 70.0)
POSE_ROLL_DEG = (0.0, 180.0, 10.0, 0.0, 0.0)
POSE_LIGHT = (1.0, 0.002, 0.002, 0.6, 0.8)
LIGHT_CLASSES = ((0.4, 40_000.0, 1.0), (0.4, 65_535.0, 1.0), (0.2, 88_000.0, 0.01))

# imperfection rates: the defaults of `simulator.sensors.imperfections.Imperfections`
P_MISSING, P_STUCK, P_NAN, P_DUPLICATE, P_REORDER = 0.002, 0.001, 0.0001, 0.0005, 0.0005
JITTER_MS, KILLS_PER_DAY, KILL_MEDIAN_MIN = 50.0, 0.1, 20.0

_F32 = struct.Struct("f")
_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_NAN = float("nan")


def f32(x: float) -> float:
    """`x` rounded to the nearest float32 (what the phone's `float` holds)."""
    return _F32.unpack(_F32.pack(x))[0]


def _num(x: float) -> float | None:
    """JSON value of a float32 sensor number: null for NaN."""
    return None if x != x else f32(x)


# -- the sky ----------------------------------------------------------------------------


def sun_elevation_deg(epoch_s: float, lat: float, lon: float) -> float:
    """Solar elevation (degrees), the Astronomical Almanac's low-precision formula."""
    d = epoch_s / 86_400.0 - 10_957.5
    mean_lon = math.radians((280.460 + 0.9856474 * d) % 360.0)
    anomaly = math.radians((357.528 + 0.9856003 * d) % 360.0)
    ecl_lon = mean_lon + math.radians(1.915) * math.sin(anomaly) + math.radians(
        0.020) * math.sin(2 * anomaly)
    obliquity = math.radians(23.439 - 0.0000004 * d)
    declination = math.asin(math.sin(obliquity) * math.sin(ecl_lon))
    right_ascension = math.atan2(math.cos(obliquity) * math.sin(ecl_lon), math.cos(ecl_lon))
    gmst_deg = (280.46061837 + 360.98564736629 * d) % 360.0
    hour_angle = math.radians(gmst_deg + lon) - right_ascension
    phi = math.radians(lat)
    sin_elev = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(
        declination) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_elev))))


class Sky:
    """Cloud cover and sea-level pressure of one city as sums of seeded sinusoids."""

    def __init__(self, seed: int, lon: float) -> None:
        rng = random.Random(f"{seed}/city/0")
        self.lon = lon
        self.cloud = [(p * rng.uniform(0.8, 1.25), a, rng.uniform(0, 2 * math.pi))
                      for p, a in ((3.0, 0.6), (8.0, 1.0), (36.0, 1.5), (96.0, 2.0))]
        self.cloud_bias = rng.gauss(0.3, 0.5)
        self.pressure = [(p * rng.uniform(0.8, 1.25), a * rng.uniform(0.5, 1.2),
                          rng.uniform(0, 2 * math.pi))
                         for p, a in ((16.0, 1.0), (36.0, 3.0), (72.0, 5.0), (144.0, 6.0))]

    def cloud_cover(self, epoch_s: float) -> float:
        hours = epoch_s / 3600.0
        x = sum(a * math.sin(2 * math.pi * hours / p + ph) for p, a, ph in self.cloud)
        return 1.0 / (1.0 + math.exp(-(x + self.cloud_bias)))

    def sea_level_pressure_hpa(self, epoch_s: float) -> float:
        hours = epoch_s / 3600.0
        weather = sum(a * math.sin(2 * math.pi * hours / p + ph) for p, a, ph in self.pressure)
        solar_hours = (hours + self.lon / 15.0) % 24.0
        return 1013.25 + weather + 0.6 * math.cos(2 * math.pi * (solar_hours - 10.0) / 12.0)


# -- sensor models (one reading at a time) ------------------------------------------------


def pose_of(activity: int, pose_u: float) -> int:
    cum = POSE_CUM[activity]
    return min(sum(1 for c in cum if pose_u >= c), 4)


def outdoor_lux(elevation: float, cloud: float) -> float:
    if elevation > 0:
        lux = 400.0 + 120_000.0 * math.sin(math.radians(elevation)) ** 1.25
    else:
        lux = max(400.0 * 10.0 ** (max(elevation, -30.0) / 3.0), 0.001)
    return lux * (1.0 - 0.75 * cloud ** 3.4)  # Kasten & Czeplak (1980)


def scene_lux(activity: int, pose: int, level_u: float, outdoor: float,
              elevation: float) -> float:
    dark = elevation < -3.0
    daylight = 0.02 * outdoor
    if activity == SLEEP:
        lux = 0.3 * math.exp(level_u * 2.0 - 1.0) + 0.2 * daylight
    elif activity == HOME:
        home = 150.0 * math.exp(0.5 * (level_u - 0.5) * 3.0)
        lux = daylight + (home if daylight < 40.0 else 0.0)
    elif activity == WORK:
        lux = daylight + 400.0 * math.exp(0.3 * (level_u - 0.5) * 3.0)
    elif activity == VEHICLE:
        lux = 0.2 * outdoor + (1.0 if dark else 0.0)
    else:
        lux = outdoor * (0.18 if level_u < 0.3 else 1.0) + (10.0 if dark else 0.0)
    return lux * POSE_LIGHT[pose]


def gravity(pose: int, pose_u: float, t_min: float, moving: bool
            ) -> tuple[float, float, float]:
    jitter = (math.modf(pose_u * 97.0)[0] - 0.5) * 20.0
    drift = (8.0 if moving else 1.0) * math.sin(2 * math.pi * t_min / 20.0 + 40.0 * pose_u)
    pitch = math.radians(POSE_PITCH_DEG[pose] + jitter + drift)
    roll = math.radians(POSE_ROLL_DEG[pose] + 0.5 * jitter)
    g = STANDARD_GRAVITY
    return (g * math.cos(pitch) * math.sin(roll), g * math.sin(pitch),
            g * math.cos(pitch) * math.cos(roll))


def motion_sigma(activity: int, pose: int, running: bool) -> tuple[float, float]:
    hand = pose == HAND
    if running:
        return 8.0, 2.0
    if activity == WALK:
        return (2.0, 0.5) if hand else (3.0, 0.8)
    if activity == OUTDOOR:
        return 1.5, 0.4
    if activity == VEHICLE:
        return 0.4, 0.08
    return (0.3, 0.15) if hand else (0.0, 0.0)


def quantise(value: float, step: float) -> float:
    return round(value / step) * step + 0.0


def pressure_hpa(sea_level: float, altitude_m: float) -> float:
    return sea_level * (1.0 - 2.25577e-5 * altitude_m) ** 5.25588  # ICAO


def battery_rate_pct_h(activity: int, pose: int, running: bool) -> float:
    if activity == SLEEP:
        base = 0.6
    elif running:
        base = 4.0
    elif activity in MOVING:
        base = 3.0
    else:
        base = 1.5
    return base + (6.0 if pose == HAND else 0.0)


# -- identifiers, geohash, time -------------------------------------------------------------


def _mix(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def batch_uuid(seed: int, phone: int, seq: int) -> str:
    """UUIDv8 text from a SplitMix64 hash of (seed, phone, seq)."""
    base = _mix((seed + (phone + 1) * _GOLDEN) & _MASK64)
    hi = _mix((base + (seq + 1) * _GOLDEN) & _MASK64)
    lo = _mix((hi + _GOLDEN) & _MASK64)
    hi = (hi & 0xFFFFFFFFFFFF0FFF) | 0x8000
    lo = (lo & 0x3FFFFFFFFFFFFFFF) | 0x8000000000000000
    h = f"{hi:016x}{lo:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def geohash(lat: float, lon: float, precision: int = 6) -> str:
    """Standard geohash by bisection: bits alternate longitude, latitude."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    chars = []
    code = bits = 0
    even = True
    while len(chars) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                code, lon_lo = code * 2 + 1, mid
            else:
                code, lon_hi = code * 2, mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                code, lat_lo = code * 2 + 1, mid
            else:
                code, lat_hi = code * 2, mid
        even = not even
        bits += 1
        if bits == 5:
            chars.append(_BASE32[code])
            code = bits = 0
    return "".join(chars)


def iso(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms // 1000))


# -- phones and their days ----------------------------------------------------------------


@dataclass
class Phone:
    """One phone's traits (see `simulator.sensors.traits` for the figures)."""

    index: int
    persona: Persona
    home_xy: tuple[float, float]
    work_xy: tuple[float, float]
    home_floor: int
    work_floor: int
    home_ground_m: float
    work_ground_m: float
    phase_ms: int
    clock_skew_ms: int
    has_barometer: bool
    pressure_offset_hpa: float
    accel_bias: tuple[float, float, float]
    accel_scale: float
    gyro_bias: tuple[float, float, float]
    light_gain: float
    light_max_lux: float
    light_resolution: float


def draw_phone(seed: int, index: int, city: City, mix: Mapping[str, float],
               barometer_share: float) -> Phone:
    rng = random.Random(f"{seed}/traits/{index}")
    persona = PERSONAS[rng.choices(list(mix), weights=list(mix.values()))[0]]
    radius = city.radius_km * 1000.0 * math.sqrt(rng.random())
    angle = 2 * math.pi * rng.random()
    home = (radius * math.cos(angle), radius * math.sin(angle))
    commute = min(persona.home_work_km * math.exp(0.5 * rng.gauss(0, 1)), 40.0) * 1000.0
    work_angle = 2 * math.pi * rng.random()
    work = (home[0] + commute * math.cos(work_angle), home[1] + commute * math.sin(work_angle))
    skew = rng.gauss(0, 300_000.0) if rng.random() < 0.02 else rng.gauss(0, 1_500.0)
    u = rng.random()
    light = LIGHT_CLASSES[-1]
    for share, max_lux, resolution in LIGHT_CLASSES:
        if u < share:
            light = (share, max_lux, resolution)
            break
        u -= share
    return Phone(
        index=index, persona=persona, home_xy=home, work_xy=work,
        home_floor=int(rng.random() * 6),
        work_floor=min(int(math.exp(0.7 + rng.gauss(0, 1))), 30),
        home_ground_m=5.0 * rng.gauss(0, 1), work_ground_m=5.0 * rng.gauss(0, 1),
        phase_ms=int(rng.random() * BATCH_MS), clock_skew_ms=round(skew),
        has_barometer=rng.random() < barometer_share,
        pressure_offset_hpa=0.5 * rng.gauss(0, 1),
        accel_bias=(0.05 * rng.gauss(0, 1), 0.05 * rng.gauss(0, 1), 0.05 * rng.gauss(0, 1)),
        accel_scale=1.0 + 0.003 * rng.gauss(0, 1),
        gyro_bias=(0.003 * rng.gauss(0, 1), 0.003 * rng.gauss(0, 1), 0.003 * rng.gauss(0, 1)),
        light_gain=math.exp(0.1 * rng.gauss(0, 1)), light_max_lux=light[1],
        light_resolution=light[2],
    )


class Segment(NamedTuple):
    """One stretch of a day: minutes after local midnight, moving from `a` to `b`."""

    start: float
    end: float
    activity: int
    a: tuple[float, float]
    b: tuple[float, float]
    floor: int
    ground_m: float
    running: bool
    pose_u: float
    level_u: float
    charging: bool


@dataclass
class Day:
    """A phone's local day: segments, 5-minute battery grid, app-kill intervals."""

    segments: list[Segment]
    battery: list[float]
    kills: list[tuple[float, float]]


def plan_day(seed: int, phone: Phone, day: int) -> Day:
    """The persona's rhythm with jittered change times and travel legs between places."""
    rng = random.Random(f"{seed}/plan/{phone.index}/{day}")
    persona = phone.persona
    weekend = (day + 3) % 7 >= 5
    rhythm = persona.weekend if weekend else persona.weekday
    charge_p = persona.charge_overnight_probability
    segments: list[Segment] = []
    pos = phone.work_xy if int(rhythm[0][1]) == WORK else phone.home_xy
    t = 0.0
    for k, (start_h, act_enum) in enumerate(rhythm):
        act = int(act_enum)
        begin = 0.0 if k == 0 else max(t, start_h * 60.0 + 20.0 * rng.gauss(0, 1))
        if begin >= 1440.0:
            break
        running = act == OUTDOOR and rng.random() < persona.running_probability
        if act == WORK:
            dest = phone.work_xy
        elif act == OUTDOOR:
            angle, dist = 2 * math.pi * rng.random(), 300.0 + 900.0 * rng.random()
            dest = (pos[0] + dist * math.cos(angle), pos[1] + dist * math.sin(angle))
        else:
            dest = phone.home_xy
        trip_m = math.hypot(dest[0] - pos[0], dest[1] - pos[1])
        pose_u, level_u = rng.random(), rng.random()
        if trip_m > 1.0:  # travel legs: walk (or run), or walk + ride + walk
            if trip_m <= persona.walk_max_km * 1000.0:
                speed = RUN_SPEED_MPS if running else WALK_SPEED_MPS
                legs = [(WALK, trip_m / speed / 60.0, pos, dest)]
            else:
                f1 = min(STOP_WALK_MIN * 60 * WALK_SPEED_MPS / trip_m, 0.3)
                p1 = (pos[0] + (dest[0] - pos[0]) * f1, pos[1] + (dest[1] - pos[1]) * f1)
                p2 = (pos[0] + (dest[0] - pos[0]) * (1 - f1),
                      pos[1] + (dest[1] - pos[1]) * (1 - f1))
                legs = [(WALK, STOP_WALK_MIN, pos, p1),
                        (VEHICLE, trip_m / VEHICLE_SPEED_MPS / 60.0, p1, p2),
                        (WALK, STOP_WALK_MIN, p2, dest)]
            for kind, length, a, b in legs:
                segments.append(Segment(begin, begin + length, kind, a, b, 0, 0.0,
                                        running and kind == WALK, pose_u, level_u, False))
                begin += length
        at_work = act == WORK
        floor = phone.work_floor if at_work else (0 if act == OUTDOOR else phone.home_floor)
        ground = phone.work_ground_m if at_work else phone.home_ground_m
        u = rng.random()
        charging = (act == SLEEP and u < charge_p) or (at_work and u < 0.15)
        segments.append(Segment(begin, 1440.0, act, dest, dest, floor, ground, running,
                                rng.random(), rng.random(), charging))
        pos, t = dest, begin
    # each segment ends where the next begins; the last one at midnight
    segments = [s._replace(end=nxt.start) for s, nxt in pairwise(segments)] + segments[-1:]

    # battery: integrate drain/charge on the 5-minute grid from midnight
    level = 25.0 + 60.0 * rng.random()
    battery, s = [], 0
    for step in range(1440 // BATTERY_STEP_MIN):
        minute = step * BATTERY_STEP_MIN + BATTERY_STEP_MIN / 2
        while s + 1 < len(segments) and segments[s + 1].start <= minute:
            s += 1
        seg = segments[s]
        battery.append(level)
        if seg.charging:
            delta = 40.0 if level < 80.0 else 15.0
        else:
            delta = -battery_rate_pct_h(seg.activity, pose_of(seg.activity, seg.pose_u),
                                        seg.running)
        level = min(max(level + delta * BATTERY_STEP_MIN / 60.0, 1.0), 100.0)

    # app kills: Poisson count (at most 3), log-normal downtime
    u, count, p = rng.random(), 0, math.exp(-KILLS_PER_DAY)
    cdf = p
    while u > cdf and count < 3:
        count += 1
        p *= KILLS_PER_DAY / count
        cdf += p
    kills = []
    for _ in range(count):
        begin = 1440.0 * rng.random()
        kills.append((begin, begin + KILL_MEDIAN_MIN * math.exp(rng.gauss(0, 1))))
    return Day(segments, battery, kills)


# -- the per-reading loop -------------------------------------------------------------------


def phone_envelopes(seed: int, phone: Phone, start_ms: int, end_ms: int, city: City,
                    sky: Sky) -> list[tuple[int, int, dict[str, Any]]]:
    """(true window start, phone, envelope) of every batch of `phone` in [start, end)."""
    out: list[tuple[int, int, dict[str, Any]]] = []
    offset_ms = city.utc_offset_h * HOUR_MS
    lat0, lon0 = city.lat, city.lon
    metres_per_deg_lon = METRES_PER_DEGREE_LAT * math.cos(math.radians(lat0))
    device_id = f"sim-{seed:016x}-p{phone.index:06d}"
    user_id = f"user-{seed:016x}-{phone.index:06d}"
    bx, by, bz = phone.accel_bias
    gbx, gby, gbz = phone.gyro_bias
    scale, gain = phone.accel_scale, phone.light_gain
    max_lux, resolution = phone.light_max_lux, phone.light_resolution
    win = start_ms + (phone.phase_ms - start_ms) % BATCH_MS  # first window start >= start
    day_index, day, hour, rng = None, None, None, None
    prev_light = prev_pressure = 0.0
    seg_i = 0
    while win < end_ms:
        if win // HOUR_MS != hour:  # per-sample noise: a fresh stream per (phone, hour)
            hour = win // HOUR_MS
            rng = random.Random(f"{seed}/samples/{phone.index}/{hour}")
            gauss, uniform = rng.gauss, rng.random
        assert rng is not None
        # the sky at the window's edges, interpolated inside
        t0, t1 = win / 1000.0, (win + BATCH_MS) / 1000.0
        e0, e1 = sun_elevation_deg(t0, lat0, lon0), sun_elevation_deg(t1, lat0, lon0)
        c0, c1 = sky.cloud_cover(t0), sky.cloud_cover(t1)
        p0, p1 = sky.sea_level_pressure_hpa(t0), sky.sea_level_pressure_hpa(t1)
        samples: list[tuple[int, int, float, float, float, float, float, float, float, float]] = []
        last_killed = -1
        for j in range(READINGS_PER_BATCH):
            ms = win + j * SAMPLE_MS
            local = ms + offset_ms
            if local // DAY_MS != day_index:
                day_index = local // DAY_MS
                day = plan_day(seed, phone, day_index)
                seg_i = 0
            assert day is not None
            minute = (local - day_index * DAY_MS) / 60_000.0
            segments = day.segments
            while seg_i + 1 < len(segments) and segments[seg_i + 1].start <= minute:
                seg_i += 1
            seg = segments[seg_i]
            act, pose_u, level_u = seg.activity, seg.pose_u, seg.level_u
            pose = pose_of(act, pose_u)
            f = j / READINGS_PER_BATCH
            elevation = e0 + (e1 - e0) * f
            # light
            outdoor = outdoor_lux(elevation, c0 + (c1 - c0) * f)
            scene = scene_lux(act, pose, level_u, outdoor, elevation)
            raw = min(scene * gain * math.exp(0.03 * gauss(0.0, 1.0)), max_lux)
            light = round(raw / resolution) * resolution + 0.0
            # motion
            gx, gy, gz = gravity(pose, pose_u, minute, act in MOVING)
            sig_a, sig_g = motion_sigma(act, pose, seg.running)
            a_sd = math.sqrt(sig_a * sig_a + ACCEL_NOISE * ACCEL_NOISE)
            g_sd = math.sqrt(sig_g * sig_g + GYRO_NOISE * GYRO_NOISE)
            ax = quantise((gx + a_sd * gauss(0.0, 1.0)) * scale + bx, ACCEL_RESOLUTION)
            ay = quantise((gy + a_sd * gauss(0.0, 1.0)) * scale + by, ACCEL_RESOLUTION)
            az = quantise((gz + a_sd * gauss(0.0, 1.0)) * scale + bz, ACCEL_RESOLUTION)
            wx = quantise(gbx + g_sd * gauss(0.0, 1.0), GYRO_RESOLUTION)
            wy = quantise(gby + g_sd * gauss(0.0, 1.0), GYRO_RESOLUTION)
            wz = quantise(gbz + g_sd * gauss(0.0, 1.0), GYRO_RESOLUTION)
            # pressure
            if act in INDOOR:
                altitude = city.elevation_m + seg.ground_m + seg.floor * STOREY_M + 1.0
            else:
                altitude = city.elevation_m + 1.2
            p_sd = 0.05 if act == VEHICLE else 0.013
            pressure = (pressure_hpa(p0 + (p1 - p0) * f, altitude)
                        + phone.pressure_offset_hpa + p_sd * gauss(0.0, 1.0))
            # imperfections
            if uniform() < P_STUCK:
                light, pressure = prev_light, prev_pressure
            prev_light, prev_pressure = light, pressure
            if uniform() < P_NAN:
                light = _NAN
            if uniform() < P_NAN:
                wx = _NAN
            if any(a <= minute < b for a, b in day.kills):
                last_killed = j
            copies = 0 if uniform() < P_MISSING else (2 if uniform() < P_DUPLICATE else 1)
            t_ms = ms + phone.clock_skew_ms + round(JITTER_MS * gauss(0.0, 1.0))
            for _ in range(copies):
                samples.append((j, t_ms, light, ax, ay, az, wx, wy, wz, pressure))
        # a kill loses the readings collected in this window before it
        kept = [s for s in samples if s[0] > last_killed]
        if kept:
            for k in range(len(kept) - 1):  # a reading stored after its successor
                if uniform() < P_REORDER:
                    kept[k], kept[k + 1] = kept[k + 1], kept[k]
            out.append((win, phone.index, _envelope(
                seed, phone, win, kept, device_id, user_id, seg, minute, day,
                (gauss(0.0, 1.0), gauss(0.0, 1.0), gauss(0.0, 1.0)), lat0, lon0,
                metres_per_deg_lon)))
        win += BATCH_MS
    return out


def _stats(values: list[float]) -> dict[str, float | None]:
    valid = [v for v in values if v == v]
    if not valid:
        return {"avg": None, "min": None, "max": None}
    return {"avg": f32(sum(valid) / len(valid)), "min": f32(min(valid)), "max": f32(max(valid))}


def _rms(values: list[float]) -> float | None:
    valid = [v * v for v in values if v == v]
    return f32(math.sqrt(sum(valid) / len(valid))) if valid else None


def _envelope(seed: int, phone: Phone, win: int, kept: list[tuple[Any, ...]], device_id: str,
              user_id: str, seg: Segment, minute: float, day: Day,
              gps_z: tuple[float, float, float], lat0: float, lon0: float,
              metres_per_deg_lon: float) -> dict[str, Any]:
    """The upload envelope of one window, shaped as `encode.reference_line` writes it."""
    baro = phone.has_barometer
    readings = []
    lights, dynamic, rotation, pressures = [], [], [], []
    for _, t_ms, light, ax, ay, az, wx, wy, wz, pressure in kept:
        light, pressure = f32(light), f32(pressure)
        ax, ay, az, wx, wy, wz = f32(ax), f32(ay), f32(az), f32(wx), f32(wy), f32(wz)
        reading: dict[str, Any] = {
            "t": t_ms, "light": _num(light), "accel": [_num(ax), _num(ay), _num(az)],
            "gyro": [_num(wx), _num(wy), _num(wz)],
        }
        if baro:
            reading["pressure"] = _num(pressure)
        readings.append(reading)
        lights.append(light)
        dynamic.append(math.sqrt(ax * ax + ay * ay + az * az) - STANDARD_GRAVITY)
        rotation.append(math.sqrt(wx * wx + wy * wy + wz * wz))
        pressures.append(pressure)
    start = win + phone.clock_skew_ms
    summary: dict[str, Any] = {
        "count": len(kept), "period_start": iso(start), "period_end": iso(start + BATCH_MS),
        "light": _stats(lights), "accel_rms": _rms(dynamic), "gyro_rms": _rms(rotation),
    }
    if baro:
        summary["pressure"] = _stats(pressures)
    # location and battery at the window's last sample
    act = seg.activity
    if act in INDOOR:
        accuracy = math.exp(math.log(20.0) + 0.5 * gps_z[0])
    else:
        accuracy = math.exp(math.log(5.0) + 0.35 * gps_z[0])
    frac = min(max((minute - seg.start) / max(seg.end - seg.start, 1e-9), 0.0), 1.0)
    x = seg.a[0] + (seg.b[0] - seg.a[0]) * frac + accuracy / 1.515 * gps_z[1]
    y = seg.a[1] + (seg.b[1] - seg.a[1]) * frac + accuracy / 1.515 * gps_z[2]
    lat = lat0 + y / METRES_PER_DEGREE_LAT
    lon = lon0 + x / metres_per_deg_lon
    level = day.battery[min(int(minute // BATTERY_STEP_MIN), len(day.battery) - 1)]
    seq = (win - phone.phase_ms - SEQ_EPOCH_MS) // BATCH_MS
    return {
        "device_id": device_id,
        "user_id": user_id,
        "seq": seq,
        "batch_id": batch_uuid(seed, phone.index, seq),
        "payload": {
            "timestamp": start,
            "summary": summary,
            "batch": readings,
            "location": {"lat": round(lat, 6), "lon": round(lon, 6),
                         "accuracy_m": f32(accuracy)},
            "geohash": geohash(lat, lon, 6),
            "battery_level": round(level),
            "is_charging": seg.charging,
        },
    }


# -- entry points ---------------------------------------------------------------------------


def build_envelopes(seed: int, phones: int, start_ms: int, hours: float, city: City = BERLIN,
                    persona_mix: Mapping[str, float] = DEFAULT_MIX,
                    barometer_share: float = 0.7) -> list[dict[str, Any]]:
    """Every envelope of the fleet, phone by phone, then sorted into time order
    (true window start, then phone) as the generator writes them."""
    end_ms = start_ms + round(hours * HOUR_MS)
    sky = Sky(seed, city.lon)
    keyed: list[tuple[int, int, dict[str, Any]]] = []
    for index in range(phones):
        phone = draw_phone(seed, index, city, persona_mix, barometer_share)
        keyed.extend(phone_envelopes(seed, phone, start_ms, end_ms, city, sky))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [envelope for _, _, envelope in keyed]


def serialise(envelopes: list[dict[str, Any]]) -> list[bytes]:
    """One JSON line (newline included) per envelope, with the stdlib `json`."""
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    return [dumps(envelope).encode() + b"\n" for envelope in envelopes]
