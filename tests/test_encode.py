"""The fast columnar encoder against the plain dict-based reference, byte for byte."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_block
from hypothesis import given
from hypothesis import strategies as st

from simulator.errors import UsageError
from simulator.sensors.batch import summarize
from simulator.sensors.encode import NumberFormat, encode_lines, reference_line

FORMATS = ["float32", "float64", "round0", "round3"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_encoder_equals_reference(fmt: str, rng: np.random.Generator) -> None:
    block = make_block(rng, 80, nan_probability=0.05)
    block.validate()
    fast = encode_lines(block, NumberFormat(fmt))
    assert fast == [reference_line(block, i, NumberFormat(fmt)) for i in range(block.size)]


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12),
       nan=st.sampled_from([0.0, 0.3, 1.0]), baro=st.sampled_from([0.0, 0.5, 1.0]))
def test_fast_encoder_equals_reference_on_random_blocks(seed: int, n: int, nan: float,
                                                        baro: float) -> None:
    block = make_block(np.random.default_rng(seed), n, max_readings=4, nan_probability=nan,
                       barometer_probability=baro)
    assert encode_lines(block) == [reference_line(block, i) for i in range(block.size)]


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
    # float32 values print as the shortest text that reads back as the same float32
    line = json.loads(encode_lines(block, NumberFormat("float32"))[0])
    value = line["payload"]["batch"][0]["light"]
    assert np.float32(value) == block.light[block.offsets[0]]


@pytest.mark.parametrize("bad", ["float16", "round10", "", "ROUND2"])
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
