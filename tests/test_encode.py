"""The fast columnar encoder against the plain dict-based reference, byte for byte."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import make_block
from hypothesis import given
from hypothesis import strategies as st

from simulator.errors import UsageError
from simulator.sensors.batch import summarize
from simulator.sensors.encode import (
    NumberFormat,
    android_number,
    encode_lines,
    java_to_string,
    reference_line,
)

FORMATS = ["float32", "float64", "round0", "round3", "orgjson", "orgjson64"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_encoder_equals_reference(fmt: str, rng: np.random.Generator) -> None:
    block = make_block(rng, 80, nan_probability=0.05)
    block.validate()
    fast = encode_lines(block, NumberFormat(fmt))
    assert fast == [reference_line(block, i, NumberFormat(fmt)) for i in range(block.size)]


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12),
       nan=st.sampled_from([0.0, 0.3, 1.0]), baro=st.sampled_from([0.0, 0.5, 1.0]),
       fmt=st.sampled_from(["float32", "orgjson", "orgjson64"]))
def test_fast_encoder_equals_reference_on_random_blocks(seed: int, n: int, nan: float,
                                                        baro: float, fmt: str) -> None:
    block = make_block(np.random.default_rng(seed), n, max_readings=4, nan_probability=nan,
                       barometer_probability=baro)
    expected = [reference_line(block, i, NumberFormat(fmt)) for i in range(block.size)]
    assert encode_lines(block, NumberFormat(fmt)) == expected


def test_payload_shape_matches_review_section_4_2(rng: np.random.Generator) -> None:
    block = make_block(rng, 6, barometer_probability=1.0)
    env = json.loads(encode_lines(block)[0])
    assert set(env) == {"device_id", "user_id", "seq", "batch_id", "payload"}
    payload = env["payload"]
    assert set(payload) == {"timestamp", "summary", "batch", "location", "geohash",
                            "battery_level", "is_charging"}
    assert set(payload["summary"]) == {"count", "period_start", "period_end", "light",
                                       "accel_rms", "gyro_rms", "pressure"}
    assert set(payload["summary"]["light"]) == {"avg", "min", "max"}
    reading = payload["batch"][0]
    assert set(reading) == {"t", "light", "accel", "gyro", "pressure"}
    assert len(reading["accel"]) == 3 and len(reading["gyro"]) == 3
    assert set(payload["location"]) == {"lat", "lon", "accuracy_m"}
    assert payload["summary"]["period_start"].endswith("Z")


def test_no_barometer_omits_pressure_everywhere(rng: np.random.Generator) -> None:
    block = make_block(rng, 5, barometer_probability=0.0)
    for line in encode_lines(block):
        payload = json.loads(line)["payload"]
        assert "pressure" not in payload["summary"]
        assert all("pressure" not in r for r in payload["batch"])


def test_summary_is_computed_from_the_readings_in_the_batch(rng: np.random.Generator) -> None:
    block = make_block(rng, 20, barometer_probability=1.0)
    for line in encode_lines(block, NumberFormat("float64")):
        payload = json.loads(line)["payload"]
        readings = payload["batch"]
        summary = payload["summary"]
        assert summary["count"] == len(readings)
        light = [r["light"] for r in readings]
        assert summary["light"]["min"] == pytest.approx(min(light))
        assert summary["light"]["max"] == pytest.approx(max(light))
        assert summary["light"]["avg"] == pytest.approx(sum(light) / len(light))
        press = [r["pressure"] for r in readings]
        assert summary["pressure"]["avg"] == pytest.approx(sum(press) / len(press))
        dyn = [(sum(a * a for a in r["accel"]) ** 0.5 - 9.80665) ** 2 for r in readings]
        assert summary["accel_rms"] == pytest.approx((sum(dyn) / len(dyn)) ** 0.5)


def test_all_nan_light_gives_null_statistics(rng: np.random.Generator) -> None:
    block = make_block(rng, 3, nan_probability=1.0)
    summary = summarize(block)
    assert np.isnan(summary.light_avg).all()
    payload = json.loads(encode_lines(block)[0])["payload"]
    assert payload["summary"]["light"] == {"avg": None, "min": None, "max": None}


def test_number_format_changes_size_as_documented(rng: np.random.Generator) -> None:
    block = make_block(rng, 30, max_readings=30)
    size = {f: sum(map(len, encode_lines(block, NumberFormat(f)))) for f in FORMATS}
    assert size["float64"] > 1.2 * size["float32"]  # widened doubles print 16-17 digits
    assert size["round0"] < size["round3"] < size["float32"]
    assert size["orgjson"] < size["float32"] and size["orgjson64"] < size["float64"]
    # float32 values print as the shortest text that reads back as the same float32
    line = json.loads(encode_lines(block, NumberFormat("float32"))[0])
    value = line["payload"]["batch"][0]["light"]
    assert np.float32(value) == block.light[block.offsets[0]]


# ---------------------------------------------------------------------------------------
# orgjson: Android's JSONObject.numberToString (docs/payload.md has the sources)

F32_TINY = float(np.finfo(np.float32).tiny)
BELOW_MILLI = float(np.nextafter(np.float32(0.001), np.float32(0)))

# (value as a float32, what Android's org.json writes for a Float, and for a Double); the
# texts are JDK 25's (Float.toString, Double.toString) under org.json's rule
ANDROID_CASES = [
    (150.0, "150", "150"),  # integral: Long.toString, no ".0"
    (1.0652645e-4, "1.0652645E-4", "1.065264514181763E-4"),  # below 10^-3: exponent form
    (1e-7, "1.0E-7", "1.0000000116860974E-7"),  # one digit: d.0E-n
    (0.001, "0.001", "0.0010000000474974513"),  # 10^-3 itself is plain
    (BELOW_MILLI, "9.999999E-4", "9.999999310821295E-4"),
    (-2.5e-4, "-2.5E-4", "-2.500000118743628E-4"),
    (0.1, "0.1", "0.10000000149011612"),  # a Float is not widened
    (123456.7, "123456.7", "123456.703125"),
    (9999999.0, "9999999", "9999999"),  # below 10^7, integral
    (1e7, "10000000", "10000000"),  # Float.toString says 1.0E7; org.json writes the long
    (3e10, "30000001024", "30000001024"),  # the exact value, not the shortest digits
    (0.0, "0", "0"),
    (-0.0, "0", "-0"),  # only a Double equals org.json's NEGATIVE_ZERO
    (2.0**63, "9223372036854775807", "9223372036854775807"),  # (long) saturates, compares equal
    (1e19, "1.0E19", "9.999999980506448E18"),  # beyond the long range: toString
    (F32_TINY, "1.1754944E-38", "1.1754943508222875E-38"),  # 1.17549435E-38 before JDK 19
    (1.4e-45, "1.4E-45", "1.401298464324817E-45"),  # two digits when one would do
]


@pytest.mark.parametrize("value, as_float, as_double", ANDROID_CASES)
def test_android_number_on_known_values(value: float, as_float: str, as_double: str) -> None:
    f32 = float(np.float32(value))
    assert android_number(f32, double=False) == as_float
    assert android_number(f32, double=True) == as_double


def test_java_to_string_switches_to_exponent_form_at_the_documented_bounds() -> None:
    assert java_to_string(1e7, double=False) == "1.0E7"  # what json.org's library keeps
    assert java_to_string(9999999.0, double=False) == "9999999.0"
    assert java_to_string(150.0, double=False) == "150.0"
    assert java_to_string(0.001, double=True) == "0.001"
    assert java_to_string(0.00099, double=True) == "9.9E-4"
    assert java_to_string(-0.0, double=False) == "-0.0"
    assert java_to_string(1.5e7 + 0.5, double=True) == "1.50000005E7"


@pytest.mark.parametrize("fmt, column", [("orgjson", 1), ("orgjson64", 2)])
def test_the_fast_writer_writes_the_known_values(fmt: str, column: int) -> None:
    values = np.array([case[0] for case in ANDROID_CASES] + [np.nan, np.inf], np.float32)
    written = NumberFormat(fmt).sensor(values)
    expected = [case[column] for case in ANDROID_CASES] + ["null", "null"]
    assert NumberFormat(fmt).numbers(written) == f"[{','.join(expected)}]".encode()


def test_orgjson_lines_are_json_whose_values_read_back_exactly(
        rng: np.random.Generator) -> None:
    block = make_block(rng, 10, max_readings=30, nan_probability=0.05,
                       barometer_probability=1.0)
    for i, line in enumerate(encode_lines(block, NumberFormat("orgjson"))):
        payload = json.loads(line)["payload"]
        start = block.offsets[i]
        for k, reading in enumerate(payload["batch"]):
            sent = block.gyro[start + k]
            got = np.array([np.nan if v is None else v for v in reading["gyro"]], np.float32)
            assert np.array_equal(got, sent, equal_nan=True)


def test_orgjson_writes_a_planted_integral_light_and_tiny_gyro_the_android_way(
        rng: np.random.Generator) -> None:
    block = make_block(rng, 2, max_readings=3, barometer_probability=0.0)
    block.light[:] = 150.0
    block.gyro[:] = np.float32(1.0652645e-4)
    orgjson = encode_lines(block, NumberFormat("orgjson"))[0]
    float32 = encode_lines(block, NumberFormat("float32"))[0]
    assert b'"light":150,' in orgjson and b'"gyro":[1.0652645E-4,' in orgjson
    assert b'"light":150.0,' in float32 and b'"gyro":[0.00010652645,' in float32
    assert b'"min":150,"max":150}' in orgjson
    assert len(orgjson) < len(float32)


def test_orgjson_is_deterministic_and_differs_from_float32_only_in_number_text(
        rng: np.random.Generator) -> None:
    block = make_block(rng, 15, nan_probability=0.1)
    block.light[::2] = np.round(block.light[::2])  # whole lux: written without ".0"
    first = encode_lines(block, NumberFormat("orgjson"))
    assert first == encode_lines(block, NumberFormat("orgjson"))
    plain = encode_lines(block, NumberFormat("float32"))
    assert sum(map(len, first)) < sum(map(len, plain))
    for android_line, plain_line in zip(first, plain, strict=True):
        assert _same_numbers(json.loads(android_line), json.loads(plain_line))


def _same_numbers(a: object, b: object) -> bool:
    """Equal JSON trees, numbers compared as float32 (150 and 150.0 are the same Float)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same_numbers, a, b))
    if isinstance(a, int | float) and isinstance(b, float):  # lat/lon are doubles
        return bool(np.float32(a) == np.float32(b)) or float(a) == b
    return type(a) is type(b) and a == b


def _java_at_least_19() -> str | None:
    """A `java` launcher of JDK 19 or later (its Float.toString is the modelled one)."""
    candidates = [os.environ.get("JAVA_HOME", ""), *sorted(glob.glob("/usr/lib/jvm/*"))]
    for home in candidates:
        java = Path(home, "bin", "java")
        if not home or not java.exists():
            continue
        version = subprocess.run([str(java), "-version"], capture_output=True, text=True)
        match = re.search(r'version "(\d+)', version.stderr)
        if match and int(match[1]) >= 19:
            return str(java)
    return None


JAVA_NUMBER_TO_STRING = """
import java.io.*;
public class NumberToString {
    static final Double NEGATIVE_ZERO = -0d;
    // AOSP libcore org.json JSONObject.numberToString, the finite case
    static String numberToString(Number number) {
        if (number.equals(NEGATIVE_ZERO)) return "-0";
        long longValue = number.longValue();
        if (number.doubleValue() == (double) longValue) return Long.toString(longValue);
        return number.toString();
    }
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            int bits = Integer.parseUnsignedInt(line, 16);
            float f = Float.intBitsToFloat(bits);
            System.out.println(numberToString(f) + " " + numberToString((double) f));
        }
    }
}
"""


def test_orgjson_agrees_with_real_java(tmp_path: Path) -> None:
    """Float.toString and Double.toString of a JDK >= 19 under org.json's rule, on random
    float32 bit patterns and sensor-like values (skipped where no such JDK is installed)."""
    java = _java_at_least_19()
    if java is None:
        pytest.skip("no JDK 19 or later (JAVA_HOME or /usr/lib/jvm)")
    source = tmp_path / "NumberToString.java"
    source.write_text(JAVA_NUMBER_TO_STRING)
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        (rng.standard_normal(3000) * 10.0 ** rng.integers(-6, 8, 3000)).astype(np.float32),
        np.array([case[0] for case in ANDROID_CASES], np.float32)])
    values = values[np.isfinite(values)]
    run = subprocess.run([java, str(source)], input="".join(
        f"{bits:x}\n" for bits in values.view(np.uint32).tolist()),
        capture_output=True, text=True, check=True, timeout=120)
    java_float, java_double = zip(*(line.split() for line in run.stdout.splitlines()),
                                  strict=True)
    ours_float = NumberFormat("orgjson").numbers(values).decode()[1:-1].split(",")
    ours_double = NumberFormat("orgjson64").numbers(values.astype(np.float64))
    assert ours_float == list(java_float)
    assert ours_double.decode()[1:-1].split(",") == list(java_double)


@pytest.mark.parametrize("bad", ["float16", "round10", "", "ROUND2", "orgjson32"])
def test_unknown_number_format_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="number format"):
        NumberFormat(bad)


def test_the_writer_catches_a_column_not_written_exactly_once(rng: np.random.Generator) -> None:
    """Planted fault: a program that reads a per-line column on every reading."""
    from simulator.sensors import jsonl

    block = make_block(rng, 3, max_readings=4)
    builder = jsonl._Builder()
    per_line = builder.numbers(block.seq)  # 3 values, but read once per reading below
    with pytest.raises(AssertionError, match="exactly once"):
        builder.run(block, [builder.const(b"{")], [per_line], [builder.const(b"}\n")])
    fine = jsonl._Builder()
    column = fine.numbers(block.seq)
    text = fine.run(block, [fine.const(b"{"), column], [], [fine.const(b"}\n")]).lines()
    assert text == [b"{%d}\n" % s for s in block.seq.tolist()]
