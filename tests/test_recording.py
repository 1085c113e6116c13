"""Replay of Sensor Logger exports: the fixture, the real iOS export and broken inputs."""

from __future__ import annotations

import bisect
import csv
import importlib.util
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import RecordingError, UsageError
from simulator.sensors import geohash, ids
from simulator.sensors.batch import STANDARD_GRAVITY, BatchBlock
from simulator.sensors.encode import encode_lines, reference_line
from simulator.sensors.recording import Recording, load_recording, recording_batches

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "recordings" / "synthetic-android-walk.zip"
IOS = Path("/work/shared/recordings/sensorlogger-ios-squats.zip")
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
TICK_NS = 10_000_000_000


# ---------------------------------------------------------------------------------------
# Helpers: an independent, plain-Python reading of the CSV files


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rows(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as zf:
        return list(csv.DictReader(io.StringIO(zf.read(name).decode())))


def _latest(rows: list[dict[str, str]], t_ns: int) -> dict[str, str] | None:
    """The last row whose time is at or before t_ns (rows are in time order)."""
    times = [int(r["time"]) for r in rows]
    i = bisect.bisect_right(times, t_ns) - 1
    return rows[i] if i >= 0 else None


def _xyz(row: dict[str, str] | None) -> np.ndarray:
    if row is None:
        return np.full(3, np.nan)
    return np.array([float(row["x"]), float(row["y"]), float(row["z"])])


def _write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _variant(tmp_path: Path, change: Callable[[dict[str, bytes]], None],
             name: str = "variant.zip") -> Path:
    files = _members(FIXTURE)
    change(files)
    return _write_zip(tmp_path / name, files)


def _mapped(rec: Recording, block: BatchBlock, start_ms: int, speed: float) -> list[int]:
    return [rec.start_ns + round((int(t) - start_ms) * 1_000_000 * speed) for t in block.t_ms]


@pytest.fixture(scope="module")
def rec() -> Recording:
    return load_recording(FIXTURE)


@pytest.fixture(scope="module")
def block(rec: Recording) -> BatchBlock:
    return recording_batches(rec, start_ms=START_MS, seed=7, phone=3)


# ---------------------------------------------------------------------------------------
# The synthetic Android fixture


def test_fixture_is_small_and_regenerates_byte_for_byte() -> None:
    assert FIXTURE.stat().st_size < 200_000
    spec = importlib.util.spec_from_file_location(
        "make_synthetic", ROOT / "fixtures" / "recordings" / "make_synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == _members(FIXTURE)


def test_fixture_loads_as_android_with_every_sensor(rec: Recording) -> None:
    assert rec.platform == "android" and rec.platform_from == "Metadata.csv"
    assert not rec.standardised
    assert rec.accel_from == "TotalAcceleration.csv"
    assert rec.sensors == {"accel", "gyro", "pressure", "light", "location", "battery"}
    total = _rows(FIXTURE, "TotalAcceleration.csv")
    assert rec.start_ns == int(total[0]["time"]) and rec.end_ns == int(total[-1]["time"])
    assert 717 < rec.duration_s < 720
    assert rec.metadata["device name"] == "Pixel 7 (synthetic)"


def test_batches_have_the_app_cadence(block: BatchBlock) -> None:
    block.validate()
    assert block.counts.tolist() == [30, 30, 12]  # 12 min -> 72 ticks
    np.testing.assert_array_equal(block.t_ms, START_MS + 10_000 * np.arange(72))
    np.testing.assert_array_equal(block.period_start_ms, START_MS + 300_000 * np.arange(3))
    np.testing.assert_array_equal(block.period_end_ms, block.period_start_ms + 300_000)
    np.testing.assert_array_equal(block.order_ms, block.period_start_ms)
    assert block.seq.tolist() == [0, 1, 2]
    phones = np.full(3, 3, dtype=np.int64)
    np.testing.assert_array_equal(block.device_id, ids.device_ids(7, phones))
    np.testing.assert_array_equal(block.user_id, ids.user_ids(7, phones))
    np.testing.assert_array_equal(block.batch_id, ids.batch_ids(7, phones, block.seq))


def test_readings_are_the_latest_csv_row_at_or_before_each_tick(
        rec: Recording, block: BatchBlock) -> None:
    total = _rows(FIXTURE, "TotalAcceleration.csv")
    gyro = _rows(FIXTURE, "Gyroscope.csv")
    light = _rows(FIXTURE, "Light.csv")
    baro = _rows(FIXTURE, "Barometer.csv")
    for k, t_ns in enumerate(_mapped(rec, block, START_MS, 1.0)):
        assert t_ns == rec.start_ns + k * TICK_NS
        np.testing.assert_array_equal(block.accel[k], _xyz(_latest(total, t_ns)).astype(np.float32))
        np.testing.assert_array_equal(block.gyro[k], _xyz(_latest(gyro, t_ns)).astype(np.float32))
        lux, hpa = _latest(light, t_ns), _latest(baro, t_ns)
        assert lux is not None and hpa is not None
        assert block.light[k] == np.float32(lux["lux"])
        assert block.pressure[k] == np.float32(hpa["pressure"])
    assert block.has_pressure.all()


def test_accel_includes_gravity_at_rest(block: BatchBlock) -> None:
    magnitude = np.linalg.norm(block.accel[:12], axis=1)  # first 2 min: flat on a table
    np.testing.assert_allclose(magnitude, STANDARD_GRAVITY, atol=0.1)
    assert (block.accel[:12, 2] > 9.5).all()  # Android frame: +z up when lying face up


def test_location_and_battery_per_batch(rec: Recording, block: BatchBlock) -> None:
    location = _rows(FIXTURE, "Location.csv")
    battery = _rows(FIXTURE, "Battery.csv")
    mapped = _mapped(rec, block, START_MS, 1.0)
    for i in range(block.size):
        last = mapped[int(block.offsets[i + 1]) - 1]
        fix = _latest(location, last)
        assert fix is not None
        assert block.lat[i] == float(fix["latitude"])
        assert block.lon[i] == float(fix["longitude"])
        assert block.accuracy_m[i] == np.float32(fix["horizontalAccuracy"])
        assert block.geohash[i] == geohash.encode(block.lat[i], block.lon[i], 6)
        assert block.geohash[i].startswith(b"u1x0")  # Hamburg, not the Berlin fallback
    assert block.battery_level.tolist() == [61, 60, 62]
    assert block.is_charging.tolist() == [False, True, True]
    assert _latest(battery, mapped[-1]) == battery[-1]


def test_speed_two_halves_the_simulated_duration(rec: Recording, block: BatchBlock) -> None:
    fast = recording_batches(rec, start_ms=START_MS, speed=2.0, seed=7, phone=3)
    assert fast.counts.tolist() == [30, 6]  # 36 ticks, 6 simulated minutes
    np.testing.assert_array_equal(fast.t_ms, START_MS + 10_000 * np.arange(36))
    # tick k at speed 2 maps to the recording time of tick 2k at speed 1
    np.testing.assert_array_equal(fast.accel, block.accel[::2])
    np.testing.assert_array_equal(fast.light, block.light[::2])
    slow = recording_batches(rec, start_ms=START_MS, speed=0.5)
    assert int(slow.counts.sum()) == 144


def test_time_shift_moves_only_simulated_time(rec: Recording, block: BatchBlock) -> None:
    shift = 86_400_000 + 123
    moved = recording_batches(rec, start_ms=START_MS + shift, seed=7, phone=3)
    np.testing.assert_array_equal(moved.t_ms, block.t_ms + shift)
    np.testing.assert_array_equal(moved.period_start_ms, block.period_start_ms + shift)
    np.testing.assert_array_equal(moved.accel, block.accel)
    np.testing.assert_array_equal(moved.battery_level, block.battery_level)


def test_encoding_matches_reference(block: BatchBlock) -> None:
    lines = encode_lines(block)
    assert lines == [reference_line(block, i) for i in range(block.size)]


def test_accelerometer_plus_gravity_when_total_acceleration_is_absent(
        tmp_path: Path) -> None:
    def drop(files: dict[str, bytes]) -> None:
        del files["TotalAcceleration.csv"]

    path = _variant(tmp_path, drop)
    rec = load_recording(path)
    assert rec.accel_from == "Accelerometer.csv + Gravity.csv"
    block = recording_batches(rec, start_ms=START_MS)
    linear, gravity = _rows(path, "Accelerometer.csv"), _rows(path, "Gravity.csv")
    for k, t_ns in enumerate(_mapped(rec, block, START_MS, 1.0)):
        row = _latest(linear, t_ns)
        assert row is not None
        expected = _xyz(row) + _xyz(_latest(gravity, int(row["time"])))
        np.testing.assert_array_equal(block.accel[k], expected.astype(np.float32))
    magnitude = np.linalg.norm(block.accel[1:12], axis=1)
    np.testing.assert_allclose(magnitude, STANDARD_GRAVITY, atol=0.1)


def test_accelerometer_without_gravity_is_an_error(tmp_path: Path) -> None:
    def drop(files: dict[str, bytes]) -> None:
        del files["TotalAcceleration.csv"], files["Gravity.csv"]

    with pytest.raises(RecordingError, match=r"Accelerometer\.csv.*without gravity"):
        load_recording(_variant(tmp_path, drop))


def test_other_accelerometer_sources(tmp_path: Path, block: BatchBlock) -> None:
    def only_uncalibrated(files: dict[str, bytes]) -> None:
        files["AccelerometerUncalibrated.csv"] = files.pop("TotalAcceleration.csv")
        del files["Accelerometer.csv"], files["Metadata.csv"]

    rec = load_recording(_variant(tmp_path, only_uncalibrated, "uncal.zip"))
    assert (rec.platform, rec.platform_from) == ("android", "files")  # Light.csv
    assert rec.accel_from == "AccelerometerUncalibrated.csv"
    np.testing.assert_array_equal(recording_batches(rec, start_ms=START_MS).accel, block.accel)

    def gravity_included(files: dict[str, bytes]) -> None:
        files["Accelerometer.csv"] = files.pop("TotalAcceleration.csv")
        del files["Gravity.csv"]

    rec = load_recording(_variant(tmp_path, gravity_included, "old.zip"))
    assert rec.accel_from == "Accelerometer.csv"  # evidently includes gravity: used as is
    np.testing.assert_array_equal(recording_batches(rec, start_ms=START_MS).accel, block.accel)


def test_missing_sensors_behave_like_a_phone_without_them(tmp_path: Path) -> None:
    def drop(files: dict[str, bytes]) -> None:
        for name in ("Light.csv", "Barometer.csv", "Gyroscope.csv", "Location.csv",
                     "Battery.csv"):
            del files[name]

    rec = load_recording(_variant(tmp_path, drop))
    assert rec.sensors == {"accel"}
    block = recording_batches(rec, start_ms=START_MS, fallback_lat=48.1, fallback_lon=11.6)
    assert np.isnan(block.light).all() and np.isnan(block.gyro).all()
    assert not block.has_pressure.any()
    assert (block.lat == 48.1).all() and (block.lon == 11.6).all()
    assert np.isnan(block.accuracy_m).all()
    assert block.battery_level.tolist() == [100, 100, 100]
    assert not block.is_charging.any()
    line = encode_lines(block)[0]
    assert b'"light":null' in line and b'"pressure"' not in line
    assert b'"gyro":[null,null,null]' in line and b'"accuracy_m":null' in line
    assert encode_lines(block) == [reference_line(block, i) for i in range(block.size)]


def test_sensor_without_a_value_yet_is_null(tmp_path: Path) -> None:
    def late_light(files: dict[str, bytes]) -> None:
        lines = files["Light.csv"].decode().splitlines(keepends=True)
        rows = [r for r in lines[1:] if float(r.split(",")[1]) > 25.0]
        files["Light.csv"] = (lines[0] + "".join(rows)).encode()

    block = recording_batches(load_recording(_variant(tmp_path, late_light)), start_ms=START_MS)
    assert np.isnan(block.light[:3]).all() and not np.isnan(block.light[3:]).any()


def test_export_inside_a_sub_folder(tmp_path: Path, block: BatchBlock) -> None:
    files = {f"2024-05-14_09-30-12/{name}": data for name, data in _members(FIXTURE).items()}
    files["__MACOSX/2024-05-14_09-30-12/._Gyroscope.csv"] = b"\x00\x05junk"
    rec = load_recording(_write_zip(tmp_path / "nested.zip", files))
    assert rec.folder == "2024-05-14_09-30-12"
    again = recording_batches(rec, start_ms=START_MS, seed=7, phone=3)
    assert encode_lines(again) == encode_lines(block)


def test_stale_rows_are_dropped_not_fatal(tmp_path: Path, block: BatchBlock) -> None:
    def repeat_old_row(files: dict[str, bytes]) -> None:
        lines = files["TotalAcceleration.csv"].decode().splitlines(keepends=True)
        lines.insert(40, lines[20])  # a re-delivered, older sample
        files["TotalAcceleration.csv"] = "".join(lines).encode()

    rec = load_recording(_variant(tmp_path, repeat_old_row))
    assert (np.diff(rec.accel.time_ns) >= 0).all()
    again = recording_batches(rec, start_ms=START_MS, seed=7, phone=3)
    np.testing.assert_array_equal(again.accel, block.accel)


@pytest.mark.parametrize("speed", [0, -1.0, float("nan"), float("inf")])
def test_speed_must_be_positive(rec: Recording, speed: float) -> None:
    with pytest.raises(UsageError, match="speed"):
        recording_batches(rec, start_ms=START_MS, speed=speed)


# ---------------------------------------------------------------------------------------
# The real iOS export


@pytest.fixture(scope="module")
def ios() -> Recording:
    if not IOS.exists():
        pytest.skip(f"{IOS} is not available")
    return load_recording(IOS)


def test_ios_export(ios: Recording) -> None:
    assert ios.platform == "ios"  # no Metadata.csv: inferred from the uncalibrated file in g
    assert ios.accel_from == "Accelerometer.csv + Gravity.csv"
    assert ios.sensors == {"accel", "gyro", "pressure"}
    magnitude = np.linalg.norm(ios.accel.values, axis=1)
    assert abs(float(magnitude.mean()) - STANDARD_GRAVITY) < 0.3

    block = recording_batches(ios, start_ms=START_MS)
    assert block.counts.tolist() == [11]  # 109 s of squats
    assert np.isnan(block.light).all()
    assert block.has_pressure.all()
    assert ((block.pressure > 990) & (block.pressure < 995)).all()  # hPa
    assert (block.lat == 52.52).all() and np.isnan(block.accuracy_m).all()
    assert block.battery_level.tolist() == [100]

    user, gravity = _rows(IOS, "Accelerometer.csv"), _rows(IOS, "Gravity.csv")
    for k, t_ns in enumerate(_mapped(ios, block, START_MS, 1.0)):
        # iOS signs are the opposite of Android's (CROSSPLATFORM.md)
        expected = -(_xyz(_latest(user, t_ns)) + _xyz(_latest(gravity, t_ns)))
        np.testing.assert_array_equal(block.accel[k], expected.astype(np.float32))

    dense = recording_batches(ios, start_ms=START_MS, speed=0.02)  # a tick every 0.2 s
    dense_magnitude = np.linalg.norm(dense.accel, axis=1)
    assert abs(float(np.nanmean(dense_magnitude)) - STANDARD_GRAVITY) < 0.3

    lines = encode_lines(block)
    assert lines == [reference_line(block, i) for i in range(block.size)]
    assert b'"light":null' in lines[0] and b'"pressure":{"avg":99' in lines[0]


# ---------------------------------------------------------------------------------------
# Broken inputs: each error names the file (and the line)


def _edit(name: str, edit: Callable[[list[str]], list[str]]
          ) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        lines = files[name].decode().split("\n")
        files[name] = "\n".join(edit(lines)).encode()
    return change


def _set_field(line: int, field: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        cells = lines[line - 1].split(",")
        cells[field] = value
        lines[line - 1] = ",".join(cells)
        return lines
    return edit


def _truncate_last(lines: list[str]) -> list[str]:
    # lines[-1] is "" after the final newline; cut the last row mid-number, no newline
    return [*lines[:-2], lines[-2][:-7]]


def _drop_field(lines: list[str]) -> list[str]:
    lines[6] = lines[6].rsplit(",", 1)[0]
    return lines


def _rename_column(lines: list[str]) -> list[str]:
    lines[0] = lines[0].replace("pressure", "presure")
    return lines


BROKEN = {
    "non-numeric value": ("TotalAcceleration.csv", _set_field(10, 3, "9.8O"),
                          r"TotalAcceleration\.csv, line 10\b.*'y'.*'9\.8O'"),
    "non-integer time": ("Light.csv", _set_field(5, 0, "1715671812.5e9"),
                         r"Light\.csv, line 5\b.*'time'"),
    "missing column": ("Barometer.csv", _rename_column,
                       r"Barometer\.csv, line 1\b.*missing column 'pressure'"),
    "wrong field count": ("Location.csv", _drop_field, r"Location\.csv, line 7\b.*10 fields"),
    "empty file": ("Battery.csv", lambda lines: [], r"Battery\.csv.*empty file"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_csv_names_file_and_line(tmp_path: Path, case: str) -> None:
    name, edit, message = BROKEN[case]
    path = _variant(tmp_path, _edit(name, edit))
    with pytest.raises(RecordingError, match=message) as info:
        load_recording(path)
    assert str(path) in str(info.value)


def test_truncated_last_line_names_it(tmp_path: Path) -> None:
    last_line = _members(FIXTURE)["Gyroscope.csv"].count(b"\n")
    path = _variant(tmp_path, _edit("Gyroscope.csv", _truncate_last))
    with pytest.raises(RecordingError, match=rf"Gyroscope\.csv, line {last_line}\b.*truncated"):
        load_recording(path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "recording.zip"
    path.write_bytes(_members(FIXTURE)["Accelerometer.csv"])
    with pytest.raises(RecordingError, match=r"recording\.zip: not a zip archive"):
        load_recording(path)


def test_truncated_zip(tmp_path: Path) -> None:
    path = tmp_path / "cut.zip"
    path.write_bytes(FIXTURE.read_bytes()[:50_000])
    with pytest.raises(RecordingError, match=r"cut\.zip: not a zip archive"):
        load_recording(path)


def test_empty_zip(tmp_path: Path) -> None:
    path = _write_zip(tmp_path / "empty.zip", {})
    with pytest.raises(RecordingError, match=r"empty\.zip: no motion sensor file.*no CSV"):
        load_recording(path)


def test_zip_without_motion_files(tmp_path: Path) -> None:
    def keep_slow_sensors(files: dict[str, bytes]) -> None:
        for name in ("Accelerometer.csv", "TotalAcceleration.csv", "Gravity.csv",
                     "Gyroscope.csv"):
            del files[name]

    with pytest.raises(RecordingError, match=r"no motion sensor file.*Barometer\.csv"):
        load_recording(_variant(tmp_path, keep_slow_sensors))
