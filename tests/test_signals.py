"""Statistical tests of the sensor signals against the figures their models document.

Every assertion is tied to a figure in the docstrings of `simulator.sensors.models`,
`sky`, `traits` or `imperfections` (sources given there). Fleets are a few hundred phones
over a few hours from fixed seeds, so the tests are deterministic; bounds are set from
the documented figure with a tolerance of several standard errors, so they would hold for
other seeds too. Per-sample ground truth (what the owner is doing, where, how the phone
lies) is recomputed from the day plans with an independent lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from simulator.instants import parse_instant
from simulator.sensors import models
from simulator.sensors.batch import STANDARD_GRAVITY, BatchBlock, concat
from simulator.sensors.city import BERLIN
from simulator.sensors.generator import FleetConfig, FleetGenerator
from simulator.sensors.imperfections import Imperfections
from simulator.sensors.models import Pose
from simulator.sensors.personas import PERSONA_NAMES, Activity
from simulator.sensors.sky import Sky, sun_elevation_deg
from simulator.sensors.traits import draw_traits

F64 = npt.NDArray[np.float64]
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SUMMER = "2024-06-21T00:00:00Z"  # a Friday, the solstice
WINTER = "2024-12-18T00:00:00Z"  # a Wednesday, long nights
PHONES = 400
SEED = 7
INDOOR = (Activity.SLEEP, Activity.HOME, Activity.WORK)
MOVING = (Activity.WALK, Activity.VEHICLE)


def binomial_bounds(p: float, n: int, sigmas: float = 5.0) -> tuple[float, float]:
    """Range of an observed share around probability p over n trials."""
    half = sigmas * np.sqrt(p * (1 - p) / n)
    return p - half, p + half


# -- fleets and per-reading ground truth ------------------------------------------------

@cache
def fleet(start: str, hours: float = 24, phones: int = PHONES,
          imperfections: Imperfections | None = None, seed: int = SEED) -> FleetGenerator:
    return FleetGenerator(FleetConfig(
        seed=seed, phones=phones, start_ms=parse_instant(start), hours=hours,
        imperfections=Imperfections.none() if imperfections is None else imperfections))


@dataclass(frozen=True)
class Truth:
    """What was true when each reading was taken (arrays aligned with the readings)."""

    phone: npt.NDArray[np.int64]
    true_ms: npt.NDArray[np.int64]
    local_minute: F64
    activity: npt.NDArray[np.int64]
    pose: npt.NDArray[np.int64]
    running: npt.NDArray[np.bool_]
    level_u: F64
    xy: F64
    floor: npt.NDArray[np.int64]
    ground_m: F64
    elevation: F64


def reading_truth(gen: FleetGenerator, block: BatchBlock) -> Truth:
    """Ground truth of every reading of `block` (any imperfections, any phones)."""
    cfg = gen.config
    chunk = gen._chunk(range(cfg.phones))
    counts = block.counts
    phone = np.repeat(block.phone, counts)
    since_start = block.t_ms - np.repeat(block.period_start_ms, counts)  # skew cancels
    true_ms = np.repeat(block.order_ms, counts) + 10_000 * np.round(since_start / 10_000
                                                                    ).astype(np.int64)
    local = true_ms + cfg.city.utc_offset_h * HOUR_MS
    day, minute = local // DAY_MS, (local % DAY_MS) / 60_000.0
    n = phone.size
    activity = np.zeros(n, dtype=np.int64)
    pose_u, level_u, ground = np.zeros(n), np.zeros(n), np.zeros(n)
    running = np.zeros(n, dtype=bool)
    floor = np.zeros(n, dtype=np.int64)
    xy = np.zeros((n, 2))
    key = phone * 4 + (day - day.min())
    order = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, cuts):
        row, d = int(phone[group[0]]), int(day[group[0]])
        plan = gen._day(chunk, d)[0]
        starts = plan.start_min[row]
        seg = np.searchsorted(starts, minute[group], side="right") - 1
        end = np.where(seg + 1 < starts.size, starts[np.minimum(seg + 1, starts.size - 1)],
                       np.inf)
        frac = np.clip((minute[group] - starts[seg]) / np.maximum(end - starts[seg], 1e-9),
                       0.0, 1.0)
        activity[group] = plan.activity[row, seg]
        pose_u[group] = plan.pose_u[row, seg]
        level_u[group] = plan.level_u[row, seg]
        running[group] = plan.running[row, seg]
        floor[group] = plan.floor[row, seg]
        ground[group] = plan.ground_m[row, seg]
        a, b = plan.from_xy[row, seg], plan.to_xy[row, seg]
        xy[group] = a + (b - a) * frac[:, None]
    pose = models.pose_of(activity.astype(np.int8), pose_u)
    elevation = sun_elevation_deg(true_ms / 1000.0, cfg.city.lat, cfg.city.lon)
    return Truth(phone, true_ms, minute, activity, pose, running, level_u, xy, floor, ground,
                 elevation)


@dataclass(frozen=True)
class Hour:
    gen: FleetGenerator
    block: BatchBlock
    truth: Truth


@cache
def hour(start: str, utc_hour: int, phones: int = PHONES) -> Hour:
    """UTC hour `utc_hour` (counted from `start`) of a perfect-stream fleet."""
    gen = fleet(start, phones=phones)
    block = gen.block(range(phones), gen.config.start_ms // HOUR_MS + utc_hour)
    return Hour(gen, block, reading_truth(gen, block))


def magnitude(v: npt.NDArray[np.float32]) -> F64:
    return np.asarray(np.linalg.norm(v.astype(np.float64), axis=1))


def test_ground_truth_lookup_agrees_with_the_stream() -> None:
    """Sanity check of the helper: it recovers each reading's true time on the phone's
    10 s grid (t_ms is true time plus the phone's clock skew)."""
    h = hour(SUMMER, 11)
    block, truth = h.block, h.truth
    traits = h.gen._chunk(range(PHONES)).traits
    assert (block.t_ms - truth.true_ms == traits.clock_skew_ms[truth.phone]).all()
    assert ((truth.true_ms - traits.phase_ms[truth.phone]) % 10_000 == 0).all()
    assert (truth.activity >= 0).all() and (truth.activity <= 5).all()


# -- accelerometer and gyroscope ---------------------------------------------------------

def test_accelerometer_at_rest_reads_gravity() -> None:
    """Phones on the nightstand: |a| = 9.80665 m/s^2 up to calibration (bias 0.05 m/s^2 per
    axis, scale 0.3 %) and noise 0.02 m/s^2 RMS (LSM6DSO)."""
    h = hour(SUMMER, 1)  # 02:00 local
    asleep = h.truth.activity == Activity.SLEEP
    assert asleep.sum() > 50_000
    amag = magnitude(h.block.accel[asleep])
    assert abs(np.median(amag) - STANDARD_GRAVITY) < 0.1
    assert amag.std() < 0.1
    # per-axis noise from successive differences (x: the axis the slow pose drift leaves
    # alone for a phone lying flat)
    x = h.block.accel[:, 0].astype(np.float64)
    same = asleep[1:] & asleep[:-1] & (h.truth.phone[1:] == h.truth.phone[:-1]) & (
        np.diff(h.truth.true_ms) == 10_000)
    noise = np.diff(x)[same].std() / np.sqrt(2)
    assert 0.015 <= noise <= 0.03


def test_walking_and_running_shake_the_accelerometer() -> None:
    """Walking 2-3 m/s^2 per axis (Zijlstra & Hof 2003), running 8 m/s^2, vehicles 0.4."""
    still = hour(SUMMER, 1)
    moving = hour(SUMMER, 7)  # 08:00 local: commutes and runs
    rest_sd = magnitude(still.block.accel[still.truth.activity == Activity.SLEEP]).std()
    t = moving.truth
    walk = (t.activity == Activity.WALK) & ~t.running
    run = np.isin(t.activity, (Activity.WALK, Activity.OUTDOOR)) & t.running
    ride = t.activity == Activity.VEHICLE
    assert walk.sum() > 2000 and run.sum() > 500 and ride.sum() > 2000
    amag = magnitude(moving.block.accel)
    walk_sd, run_sd, ride_sd = amag[walk].std(), amag[run].std(), amag[ride].std()
    assert walk_sd > 10 * rest_sd
    assert 1.5 <= walk_sd <= 4.0
    assert run_sd > 2 * walk_sd
    assert 0.2 <= ride_sd <= 0.8
    # per-axis spread of walking (pocket 3, hand 2 m/s^2)
    axis_sd = moving.block.accel[walk & (t.pose == Pose.POCKET)].astype(np.float64).std(axis=0)
    assert 2.5 <= np.median(axis_sd) <= 3.7


def test_gyroscope_at_rest_is_its_bias_and_moves_with_the_owner() -> None:
    """Residual bias N(0, 0.003 rad/s) per axis, noise 4e-4 rad/s, resolution 0.00107;
    rotation walking 0.5-0.8 rad/s per axis, running 2.0."""
    still, moving = hour(SUMMER, 1), hour(SUMMER, 7)
    asleep = still.truth.activity == Activity.SLEEP
    rest = magnitude(still.block.gyro[asleep])
    assert np.median(rest) < 0.01
    traits = still.gen._chunk(range(PHONES)).traits
    phones = np.unique(still.truth.phone[asleep])
    mean = np.array([still.block.gyro[asleep & (still.truth.phone == p)].mean(axis=0)
                     for p in phones])
    assert np.abs(mean - traits.gyro_bias[phones]).max() < models.GYRO_RESOLUTION
    assert 0.0025 <= traits.gyro_bias.std() <= 0.0035
    t = moving.truth
    walk = (t.activity == Activity.WALK) & ~t.running
    run = np.isin(t.activity, (Activity.WALK, Activity.OUTDOOR)) & t.running
    gmag = magnitude(moving.block.gyro)
    assert np.median(gmag[walk]) > 50 * np.median(rest)
    assert 0.6 <= np.median(gmag[walk]) <= 1.5  # |omega| of 3 axes at 0.5-0.8 each
    assert np.median(gmag[run]) > 2 * np.median(gmag[walk])


# -- pressure ----------------------------------------------------------------------------

def test_standard_atmosphere_lapse_rate() -> None:
    """ICAO standard atmosphere: -0.12 hPa/m near sea level; 898.76 hPa at 1000 m."""
    h = np.array([0.0, 1.0, 34.0, 35.0])
    p = models.pressure_hpa(np.full(4, 1013.25), h)
    assert p[0] == pytest.approx(1013.25)
    assert -0.125 <= p[1] - p[0] <= -0.115
    assert -0.125 <= p[3] - p[2] <= -0.115
    assert models.pressure_hpa(np.array([1013.25]), np.array([1000.0]))[0] == pytest.approx(
        898.76, abs=0.05)
    storey = models.pressure_hpa(np.array([1013.25]), np.array([34.0]))[0] - \
        models.pressure_hpa(np.array([1013.25]), np.array([34.0 + models.STOREY_M]))[0]
    assert 0.40 <= storey <= 0.44


def test_pressure_falls_0_42_hpa_per_storey_across_the_fleet() -> None:
    """Sleeping phones at the same instant: regress pressure (weather removed) on the home
    floor and the ground elevation (traits): -0.42 hPa per storey, -0.12 hPa per metre;
    the residual is the BMP280 offset N(0, 0.5 hPa)."""
    h = hour(SUMMER, 1)
    traits = h.gen._chunk(range(PHONES)).traits
    t = h.truth
    sea_level = h.gen.sky.sea_level_pressure_hpa(t.true_ms / 1000.0)
    weather_free = h.block.pressure - models.pressure_hpa(sea_level, BERLIN.elevation_m)
    phones = [p for p in range(PHONES)
              if traits.has_barometer[p] and (t.activity[t.phone == p] == Activity.SLEEP).all()]
    assert len(phones) > 150
    level = np.array([np.median(weather_free[t.phone == p]) for p in phones])
    x = np.column_stack([traits.home_floor[phones], traits.home_ground_m[phones],
                         np.ones(len(phones))])
    coef, *_ = np.linalg.lstsq(x, level, rcond=None)
    assert -0.49 <= coef[0] <= -0.35
    assert -0.15 <= coef[1] <= -0.09
    assert 0.35 <= (level - x @ coef).std() <= 0.7


def test_pressure_noise_at_rest_and_in_vehicles() -> None:
    """BMP280 RMS noise 0.013 hPa at rest, 0.05 hPa in a moving vehicle."""
    for h, activity, low, high in ((hour(SUMMER, 1), Activity.SLEEP, 0.010, 0.017),
                                   (hour(SUMMER, 7), Activity.VEHICLE, 0.04, 0.06)):
        t = h.truth
        sel = (t.activity == activity) & h.block.has_pressure.repeat(h.block.counts)
        same = sel[1:] & sel[:-1] & (t.phone[1:] == t.phone[:-1]) & (
            np.diff(t.true_ms) == 10_000)
        assert same.sum() > 1000
        noise = np.diff(h.block.pressure.astype(np.float64))[same].std() / np.sqrt(2)
        assert low <= noise <= high, activity


def test_fleet_pressure_is_plausible_for_berlin() -> None:
    for utc_hour in (1, 11):
        block = hour(SUMMER, utc_hour).block
        p = block.pressure[block.has_pressure.repeat(block.counts)]
        assert p.size > 1000
        assert p.min() >= 950.0 and p.max() <= 1050.0
        assert np.isfinite(p).all()


def test_about_30_percent_of_phones_have_no_barometer() -> None:
    """traits.py: a barometer in about 70 % of phones; the stream says so per batch."""
    n = 3000
    weights = np.array([0.35, 0.25, 0.1, 0.1, 0.2])
    traits = draw_traits(SEED, np.arange(n, dtype=np.int64), BERLIN, PERSONA_NAMES, weights)
    low, high = binomial_bounds(0.3, n)
    assert low <= 1 - traits.has_barometer.mean() <= high
    h = hour(SUMMER, 1)
    chunk = h.gen._chunk(range(PHONES)).traits
    assert (h.block.has_pressure == chunk.has_barometer[h.block.phone]).all()
    low, high = binomial_bounds(0.3, PHONES)
    assert low <= 1 - chunk.has_barometer.mean() <= high


def test_stepping_out_of_the_front_door_changes_pressure_by_the_floor_only() -> None:
    """Leaving home on floor f for the street: +0.12 hPa/m x (3.5 f + 1.0 - 1.2) m, with the
    house on the street's ground; the BMP280 noise is 0.013 hPa."""
    residuals = []
    for utc_hour in (5, 6, 7):  # 06:00-09:00 local, people leave home
        h = hour(SUMMER, utc_hour)
        t = h.truth
        p = h.block.pressure.astype(np.float64)
        barometer = h.block.has_pressure.repeat(h.block.counts)
        step = (t.activity[:-1] == Activity.HOME) & (t.activity[1:] == Activity.WALK) & (
            t.phone[1:] == t.phone[:-1]) & (np.diff(t.true_ms) == 10_000) & barometer[1:]
        i = np.flatnonzero(step)
        expected = 0.1196 * (models.STOREY_M * t.floor[i] + 1.0 - 1.2)
        residuals.append(p[i + 1] - p[i] - expected)
    res = np.concatenate(residuals)
    assert res.size > 30
    assert np.median(np.abs(res)) < 0.15


# -- light -------------------------------------------------------------------------------

def test_outdoor_illuminance_model() -> None:
    """models.py: clear sky 400 + 120,000 sin(h)^1.25 (about 100,000 lux at 60 deg, 22,000
    at 15, 5,600-6,100 at 5; Android: sunlight 110,000-120,000, sunrise 400); tenfold per
    3 deg of depression after sunset, 0.001 lux floor (no moon); overcast 25 % of clear
    (Kasten & Czeplak 1980: 1 - 0.75 c^3.4)."""
    h = np.array([90.0, 60.0, 15.0, 5.0, 0.0, -6.0, -12.0, -30.0])
    clear = models.outdoor_lux(h, np.zeros_like(h))
    assert 110_000 <= clear[0] <= 121_000
    assert clear[1] == pytest.approx(100_000, rel=0.05)
    assert clear[2] == pytest.approx(22_000, rel=0.05)
    assert clear[3] == pytest.approx(5_800, rel=0.1)
    assert clear[4] == pytest.approx(400)
    assert 2.0 <= clear[5] <= 5.0  # civil twilight ends
    assert clear[6] == pytest.approx(clear[5] / 100)
    assert clear[7] == pytest.approx(0.001)
    assert (np.diff(clear) < 0).all()
    overcast = models.outdoor_lux(h, np.ones_like(h))
    assert np.allclose(overcast / clear, 0.25)
    half = models.outdoor_lux(np.array([45.0]), np.array([0.5]))[0]
    full = models.outdoor_lux(np.array([45.0]), np.array([0.0]))[0]
    assert half / full == pytest.approx(1 - 0.75 * 0.5**3.4)


def test_sun_elevation_at_berlin_solar_noon() -> None:
    """90 - 52.52 +- 23.44 deg at the solstices; solar noon at 13.4 deg E is about 11:06 UTC
    shifted by the equation of time (-1.7 min in June, +1.7 min in December)."""
    for day, noon_elevation, noon_utc_h in (("2024-06-21", 60.92, 11 + 8 / 60),
                                            ("2024-12-21", 14.04, 11 + 4.5 / 60),
                                            ("2024-03-20", 37.6, 11 + 13.5 / 60)):
        t = parse_instant(f"{day}T00:00:00Z") / 1000.0 + np.arange(0, 86_400, 30.0)
        elevation = sun_elevation_deg(t, BERLIN.lat, BERLIN.lon)
        assert elevation.max() == pytest.approx(noon_elevation, abs=0.1), day
        noon_h = (t[elevation.argmax()] % 86_400) / 3600
        assert noon_h == pytest.approx(noon_utc_h, abs=3 / 60), day
    # midsummer midnight: the sun only 14 deg below the horizon (nautical twilight)
    assert sun_elevation_deg(np.arange(0, 86_400, 60.0) + parse_instant(
        "2024-06-21T00:00:00Z") / 1000.0, BERLIN.lat, BERLIN.lon).min() == pytest.approx(
        -14.05, abs=0.1)


def test_scene_light_figures() -> None:
    """models.py: offices median 400 lux, homes 150 (lights on after dark), bedrooms at night
    about 0.3 lux, vehicles 20 % of outdoor light, shade 0.18, street lighting 10 lux;
    face down or pocket 0.2 %, in hand 60 %."""
    act = np.array([Activity.WORK, Activity.HOME, Activity.SLEEP, Activity.VEHICLE,
                    Activity.OUTDOOR, Activity.OUTDOOR, Activity.WALK], dtype=np.int8)
    face_up = np.full(act.shape, Pose.FACE_UP)
    level = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.5])
    night, night_lux = np.full(act.shape, -20.0), np.full(act.shape, 0.001)
    lux = models.scene_lux(act, face_up, level, night_lux, night)
    assert lux[0] == pytest.approx(400, rel=0.01)
    assert lux[1] == pytest.approx(150, rel=0.01)
    assert 0.1 <= lux[2] <= 1.0
    assert lux[3] == pytest.approx(1.0, abs=0.01)
    assert lux[4] == pytest.approx(10.0, abs=0.01) and lux[6] == pytest.approx(10.0, abs=0.01)
    day, day_lux = np.full(act.shape, 50.0), np.full(act.shape, 80_000.0)
    lux = models.scene_lux(act, face_up, level, day_lux, day)
    assert lux[3] == pytest.approx(16_000)
    assert lux[4] == pytest.approx(80_000) and lux[5] == pytest.approx(80_000 * 0.18)
    # daylight factor of the diffuse sky (capped at 20,000 lux): lights off
    assert lux[1] == pytest.approx(0.02 * models.DIFFUSE_CAP_LUX)
    for pose, factor in ((Pose.FACE_DOWN, 0.002), (Pose.POCKET, 0.002), (Pose.HAND, 0.6)):
        posed = models.scene_lux(act, np.full(act.shape, pose), level, day_lux, day)
        assert np.allclose(posed, lux * factor)


def test_light_at_night() -> None:
    """Sun below -12 deg: outdoors only street lighting (about 10 lux, EN 13201 2-15 lux);
    bedrooms about 0.3 lux; homes lit (150 lux); offices 400 lux."""
    evening = hour(WINTER, 17)  # 18:00 local in December: dark, people out
    t, light = evening.truth, evening.block.light
    dark = t.elevation < -12
    assert dark.all()
    outside = np.isin(t.activity, (Activity.OUTDOOR, Activity.WALK))
    assert outside.sum() > 2000
    assert light[outside].max() < 20.0
    in_hand = outside & (t.pose == Pose.HAND)
    assert 2.0 <= np.median(light[in_hand]) <= 15.0
    home_lit = (t.activity == Activity.HOME) & (t.pose == Pose.FACE_UP)
    assert 100.0 <= np.median(light[home_lit]) <= 250.0
    night = hour(WINTER, 1)  # 02:00 local
    t, light = night.truth, night.block.light
    asleep = t.activity == Activity.SLEEP
    assert asleep.sum() > 50_000
    assert light[asleep].max() < 5.0
    assert np.median(light[asleep & (t.pose == Pose.FACE_UP)]) <= 1.0
    office = (t.activity == Activity.WORK) & (t.pose == Pose.FACE_UP)  # night shift
    assert office.sum() > 1000
    assert 300.0 <= np.median(light[office]) <= 550.0


def test_light_at_a_summer_noon_outdoors() -> None:
    """Sun at 60 deg: outdoors in the open tens of thousands of lux (in hand: 60 %), the
    sensor saturating at its full scale (40,000 / 65,535 / 88,000 lux); shade much darker."""
    h = hour(SUMMER, 11)
    t, light = h.truth, h.block.light
    assert t.elevation.min() > 55
    outside = np.isin(t.activity, (Activity.OUTDOOR, Activity.WALK)) & (t.pose == Pose.HAND)
    open_air, shade = outside & (t.level_u >= 0.3), outside & (t.level_u < 0.3)
    assert open_air.sum() > 1000 and shade.sum() > 300
    assert 10_000 <= np.median(light[open_air]) < 100_000
    assert np.median(light[shade]) < 0.5 * np.median(light[open_air])
    pocket = np.isin(t.activity, (Activity.OUTDOOR, Activity.WALK)) & (t.pose == Pose.POCKET)
    assert np.median(light[pocket]) < 0.01 * np.median(light[open_air])


def test_light_never_exceeds_the_sensor_full_scale() -> None:
    h = hour(SUMMER, 11)
    traits = h.gen._chunk(range(PHONES)).traits
    full_scale = traits.light_max_lux[h.truth.phone]
    assert (h.block.light <= full_scale).all()
    assert (h.block.light == full_scale).any()  # saturation happens at noon
    assert (h.block.light >= 0).all()
    assert set(np.unique(full_scale).tolist()) <= {40_000.0, 65_535.0, 88_000.0}


def test_office_light_in_daytime_is_hundreds_of_lux() -> None:
    """EN 12464-1: 500 lux at the desk; daylit offices tens to hundreds of lux up to about
    1,500 near windows."""
    h = hour(SUMMER, 9)  # 10:00 local
    t = h.truth
    office = (t.activity == Activity.WORK) & (t.pose == Pose.FACE_UP)
    assert office.sum() > 5000
    assert np.median(h.block.light[office]) <= 1500


# -- the sky -----------------------------------------------------------------------------

def test_sea_level_pressure_weather() -> None:
    """sky.py: synoptic weather with standard deviation about 6 hPa (amplitudes 1-6 hPa);
    steepest change about 1 hPa/h, never 'rapid' (3 hPa in an hour)."""
    t = parse_instant("2024-01-01T00:00:00Z") / 1000.0 + np.arange(0, 30 * 86_400, 3600.0)
    for seed in range(5):
        p = Sky.seeded(seed, 0, BERLIN.lon).sea_level_pressure_hpa(t)
        assert 2.0 <= p.std() <= 12.0, seed
        assert np.abs(np.diff(p)).max() < 3.0, seed
        assert p.min() >= 970.0 and p.max() <= 1050.0
        assert abs(np.mean(p) - 1013.25) < 8.0


def test_semidiurnal_tide_peaks_at_ten_local_solar_time() -> None:
    """S2 tide: 0.5-1 hPa at mid latitudes, maxima near 10:00 and 22:00 local solar time."""
    sky = replace(Sky.seeded(3, 0, BERLIN.lon), pressure_amplitudes=np.zeros(4))
    t = parse_instant("2024-03-01T00:00:00Z") / 1000.0 + np.arange(0, 86_400, 60.0)
    tide = sky.sea_level_pressure_hpa(t) - 1013.25
    assert 0.5 <= tide.max() <= 1.0
    assert tide.min() == pytest.approx(-tide.max(), abs=0.01)
    solar_h = (t / 3600.0 + BERLIN.lon / 15.0) % 24.0
    peaks = solar_h[tide > tide.max() - 1e-4]
    assert np.min(np.abs(peaks[:, None] - np.array([10.0, 22.0])), axis=1).max() < 0.1


def test_cloud_cover_is_a_fraction_that_varies() -> None:
    t = parse_instant("2024-01-01T00:00:00Z") / 1000.0 + np.arange(0, 30 * 86_400, 600.0)
    for seed in range(5):
        c = Sky.seeded(seed, 0, BERLIN.lon).cloud_cover(t)
        assert ((c >= 0) & (c <= 1)).all()
        assert c.std() > 0.15
        assert c.min() < 0.2 and c.max() > 0.8  # clear and overcast spells in a month
        # smooth (periods of 3 h and more): changes within 10 minutes are small
        assert np.abs(np.diff(c)).max() < 0.15


# -- location ----------------------------------------------------------------------------

def test_location_fixes() -> None:
    """Android getAccuracy() is the 68 % radius; outdoors median 5 m, indoors 20 m; the
    fix is off by a 2-D Gaussian whose 68 % radius is that accuracy."""
    h = hour(SUMMER, 11)
    block, t = h.block, h.truth
    assert (block.geohash.astype("S3") == b"u33").all()
    last = block.offsets[1:] - 1  # location is taken at the end of each window
    indoor = np.isin(t.activity[last], INDOOR)
    assert indoor.sum() > 1000 and (~indoor).sum() > 500
    assert 18.0 <= np.median(block.accuracy_m[indoor]) <= 22.0
    assert 4.5 <= np.median(block.accuracy_m[~indoor]) <= 5.5
    y = (block.lat - BERLIN.lat) * 111_320.0
    x = (block.lon - BERLIN.lon) * 111_320.0 * np.cos(np.radians(BERLIN.lat))
    error = np.hypot(x - t.xy[last, 0], y - t.xy[last, 1])
    ratio = error / block.accuracy_m.astype(np.float64)
    assert 0.8 <= np.percentile(ratio, 68) <= 1.25
    low, high = binomial_bounds(0.68, ratio.size)
    assert low <= np.mean(ratio <= 1.0) <= high
    for sel in (indoor, ~indoor):
        assert 0.8 <= np.percentile(ratio[sel], 68) <= 1.25


# -- battery -----------------------------------------------------------------------------

def test_battery_levels_and_charging_at_night() -> None:
    """Charging overnight (persona: 50-90 % of nights), rarely by day."""
    levels = np.concatenate([hour(SUMMER, u).block.battery_level for u in (1, 2, 11, 14)])
    assert levels.min() >= 1 and levels.max() <= 100
    night = hour(SUMMER, 2).block.is_charging.mean()  # 03:00 local
    day = hour(SUMMER, 14).block.is_charging.mean()  # 15:00 local
    assert night >= 0.5
    assert day <= 0.2
    assert night >= 3 * day


def test_battery_drains_over_a_working_day() -> None:
    """Drain 0.6-4 %/h (+6 %/h with the screen on) while not charging: 08:00 to 16:00
    local costs a non-charging phone several per cent."""
    morning, afternoon = hour(SUMMER, 7), hour(SUMMER, 15)
    gen = morning.gen
    local_day = (gen.config.start_ms + HOUR_MS) // DAY_MS
    plan = gen._day(gen._chunk(range(PHONES)), int(local_day))[0]
    end = np.concatenate([plan.start_min[:, 1:], np.full((PHONES, 1), np.inf)], axis=1)
    charging = (plan.charging & (plan.start_min < 17.2 * 60) & (end > 7.9 * 60)).any(axis=1)
    first: dict[int, int] = {}
    for p, lv in zip(morning.block.phone.tolist(), morning.block.battery_level.tolist(),
                     strict=True):
        first.setdefault(p, lv)  # the block is in time order
    last = dict(zip(afternoon.block.phone.tolist(), afternoon.block.battery_level.tolist(),
                    strict=True))
    drops = np.array([first[p] - last[p] for p in range(PHONES)
                      if not charging[p] and first[p] >= 40])
    assert drops.size > 100
    assert (drops > 0).mean() >= 0.95
    assert 5 <= np.median(drops) <= 40


def test_battery_level_is_continuous_across_midnight() -> None:
    """Charging at most 40 %/h, draining at most 10 %/h: two readings 5 minutes apart
    differ by a few per cent at most, midnight or not."""
    before, after = hour(SUMMER, 22).block, hour(SUMMER, 23).block  # 23:00 and 00:00 local
    midnight = parse_instant(SUMMER) + 23 * HOUR_MS
    window_end = before.order_ms + 290_000  # location and battery are taken here
    last_before = {p: lv for p, lv, e in zip(before.phone.tolist(),
                                              before.battery_level.tolist(),
                                              window_end.tolist(), strict=True) if e < midnight}
    first_after: dict[int, int] = {}
    blocks = concat([before, after])
    for p, lv, e in zip(blocks.phone.tolist(), blocks.battery_level.tolist(),
                        (blocks.order_ms + 290_000).tolist(), strict=True):
        if e >= midnight:
            first_after.setdefault(p, lv)
    jumps = np.array([abs(first_after[p] - last_before[p]) for p in last_before])
    assert jumps.size > 300
    assert np.median(jumps) <= 3
    assert np.percentile(jumps, 99) <= 6


# -- imperfections -----------------------------------------------------------------------

def test_perfect_stream_has_every_reading_once_in_order() -> None:
    h = hour(SUMMER, 7)
    block = h.block
    block.validate()
    assert (block.counts == 30).all()
    assert block.size == 12 * PHONES
    assert np.isfinite(block.light).all() and np.isfinite(block.gyro).all()
    batch = np.repeat(np.arange(block.size), block.counts)
    inside = batch[1:] == batch[:-1]
    assert (np.diff(block.t_ms)[inside] == 10_000).all()
    assert (block.t_ms[block.offsets[:-1]] == block.period_start_ms).all()


def readings(block: BatchBlock) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(batch index, sample index 0..29) of every reading, whatever the jitter."""
    batch = np.repeat(np.arange(block.size), block.counts)
    since = block.t_ms - np.repeat(block.period_start_ms, block.counts)
    return batch, np.round(since / 10_000).astype(np.int64)


def test_missing_duplicate_and_jitter_rates() -> None:
    """Defaults: 0.2 % of readings missing, 0.05 % duplicated, 50 ms timestamp jitter."""
    imp = Imperfections(kills_per_day=0.0)
    gen = fleet(SUMMER, hours=3, phones=300, imperfections=imp)
    block = concat(list(gen.iter_blocks()))
    assert block.size == 300 * 3 * 12
    batch, sample = readings(block)
    since = block.t_ms - np.repeat(block.period_start_ms, block.counts)
    jitter = since - 10_000 * sample
    assert 45.0 <= jitter.std() <= 55.0
    assert np.abs(jitter).max() < 1000
    key = batch * 30 + sample
    distinct, copies = np.unique(key, return_counts=True)
    n = block.size * 30
    low, high = binomial_bounds(imp.missing_probability, n)
    assert low <= (n - distinct.size) / n <= high
    low, high = binomial_bounds(imp.duplicate_probability, distinct.size)
    assert low <= (copies - 1).sum() / distinct.size <= high
    assert copies.max() == 2


def test_stuck_nan_and_reordered_readings_at_their_rates() -> None:
    """Stuck ticks repeat the previous light and pressure; NaN hits light or a gyro axis;
    a reordered reading swaps with its successor. Changing these rates changes nothing
    else (imperfections.py)."""
    rate = 0.01
    imp = replace(Imperfections.none(), stuck_probability=rate, nan_probability=rate,
                  reorder_probability=rate)
    faulty = concat(list(fleet(WINTER, hours=2, phones=200, imperfections=imp).iter_blocks()))
    clean = concat(list(fleet(WINTER, hours=2, phones=200).iter_blocks()))
    assert np.array_equal(faulty.counts, clean.counts)
    n = clean.t_ms.size
    batch = np.repeat(np.arange(faulty.size), faulty.counts)
    swapped = (np.diff(faulty.t_ms) < 0) & (batch[1:] == batch[:-1])
    assert swapped.sum() > 0
    low, high = binomial_bounds(rate * 29 / 30 * (1 - rate), n)
    assert low <= swapped.sum() / n <= high
    order = np.lexsort((faulty.t_ms, batch))  # undo the swaps
    assert np.array_equal(faulty.t_ms[order], clean.t_ms)
    assert np.array_equal(faulty.accel[order], clean.accel)
    light, gyro, pressure = faulty.light[order], faulty.gyro[order], faulty.pressure[order]
    low, high = binomial_bounds(rate, n)
    assert low <= np.isnan(light).mean() <= high
    assert low <= np.isnan(gyro[:, 0]).mean() <= high
    assert not np.isnan(gyro[:, 1:]).any() and not np.isnan(pressure).any()
    # stuck: pressure (never NaN) differs from the clean stream exactly where stuck
    by_phone = np.lexsort((clean.t_ms, np.repeat(clean.phone, clean.counts)))
    p_clean, p_faulty = clean.pressure[by_phone], pressure[by_phone]
    l_clean, l_faulty = clean.light[by_phone], light[by_phone]
    stuck = np.flatnonzero(p_faulty != p_clean)
    assert stuck.min() > 0
    assert np.array_equal(p_faulty[stuck], p_clean[stuck - 1])
    lit = ~np.isnan(l_faulty[stuck])
    assert np.array_equal(l_faulty[stuck][lit], l_clean[stuck - 1][lit])
    low, high = binomial_bounds(rate * (1 - 1 / 360), n)
    assert low <= stuck.size / n <= high


def test_app_kills_lose_batches() -> None:
    """kills_per_day Poisson kills (at most 3 a day), log-normal downtime of median 20 min;
    the batch being collected dies with the app, later ticks of the window survive."""
    def run(kills: float) -> BatchBlock:
        imp = replace(Imperfections.none(), kills_per_day=kills,
                      kill_median_min=Imperfections().kill_median_min)
        return concat(list(fleet(SUMMER, hours=24, phones=100, imperfections=imp
                                 ).iter_blocks()))

    few, many = run(0.5), run(3.0)
    full = 100 * 288
    assert many.size < few.size < full
    assert set(many.batch_id.tolist()) < set(few.batch_id.tolist())
    # expected loss: E[min(Poisson(3), 3)] = 2.33 kills x about 33 min mean downtime / day
    assert 0.025 <= 1 - many.size / full <= 0.10
    # readings lost from a surviving window are its first ones (up to the restart)
    _, sample = readings(many)
    partial = np.flatnonzero(many.counts < 30)
    assert partial.size > 0
    for b in partial.tolist():
        got = sample[many.offsets[b]:many.offsets[b + 1]]
        assert np.array_equal(got, np.arange(30 - got.size, 30))


def test_clock_skew() -> None:
    """traits.py: NTP-synchronised clocks N(0, 1.5 s); 2 % of phones minutes off."""
    h = hour(SUMMER, 1)
    block = h.block
    skew = block.period_start_ms - block.order_ms
    traits = h.gen._chunk(range(PHONES)).traits
    assert (skew == traits.clock_skew_ms[block.phone]).all()  # constant per phone
    assert (block.period_end_ms - block.period_start_ms == 300_000).all()
    n = 3000
    weights = np.array([0.35, 0.25, 0.1, 0.1, 0.2])
    skews = draw_traits(SEED, np.arange(n, dtype=np.int64), BERLIN, PERSONA_NAMES,
                        weights).clock_skew_ms
    assert 0.85 <= np.median(np.abs(skews)) / 1000 <= 1.2  # 0.674 x 1.5 s
    off = np.abs(skews) > 60_000
    low, high = binomial_bounds(0.02 * 0.84, n)  # 2 % x P(|N(0, 5 min)| > 1 min)
    assert low <= off.mean() <= high
    assert np.abs(skews).max() > 120_000
