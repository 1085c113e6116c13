"""The pure parts of `ggsim live`: checking a push message, putting messages back in
order, keeping samples as export files, and sealing batches (with the check that catches a
sealed batch the whole recording would build differently)."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from push_stream import body, push_messages

from simulator.sensors.encode import encode_lines
from simulator.sensors.live_files import LiveFiles, cell_text
from simulator.sensors.live_session import LiveOptions, LiveSession
from simulator.sensors.push import PushError, Sample, parse_push
from simulator.sensors.push_order import PushOrder
from simulator.sensors.recording import load_recording, recording_batches
from simulator.sensors.recording_files import ExportFolder

FIXTURE = Path(__file__).parents[1] / "fixtures" / "recordings" / "synthetic-android-walk.zip"
T = 1_715_671_812_495_000_000


def message(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"messageId": 0, "sessionId": "s", "deviceId": "d", "payload": [
        {"name": "accelerometer", "time": T, "values": {"x": 0.1, "y": 0.2, "z": 9.8}}]}
    return {**base, **overrides}


def entry(**overrides: Any) -> dict[str, Any]:
    return message(payload=[{"name": "accelerometer", "time": T,
                             "values": {"x": 0.1, "y": 0.2, "z": 9.8}, **overrides}])


@pytest.mark.parametrize(("raw", "status", "says"), [
    (b"not json", 400, "not JSON"),
    (b"[1, 2]", 400, "JSON list"),
    (body(message(messageId=-1)), 422, "messageId"),
    (body(message(messageId=True)), 422, "messageId"),
    (body(message(sessionId="")), 422, "sessionId"),
    (body(message(deviceId=7)), 422, "deviceId"),
    (body(message(payload={"a": 1})), 422, "payload must be a list"),
    (body(message(payload=[3])), 422, "payload[0] must be an object"),
    (body(entry(name="../etc")), 422, "name"),
    (body(entry(time="soon")), 422, "time"),
    (body(entry(time=12)), 422, "between 2000 and 2100"),
    (body(entry(time=None)), 422, "time must be integer"),
    (body(entry(values=[1, 2])), 422, "values must be an object"),
    (body(entry(values={"x": 1, "y": 2})), 422, "lacks z"),
    (body(entry(values={"x": "1", "y": 2, "z": 3})), 422, "values.x must be a number"),
    (body(entry(values={"x": 1, "y": 2, "z": 3, "time": 4})), 422, "column name"),
    (body(entry(values={"x": 1, "y": 2, "z": [3]})), 422, "scalar"),
    (body(entry(name="location", values={"latitude": 91.0, "longitude": 0})), 422, "±90"),
    (body(entry(name="battery", values={"batteryLevel": 62})), 422, "fraction"),
])
def test_a_malformed_push_is_refused_with_what_is_wrong(raw: bytes, status: int,
                                                        says: str) -> None:
    with pytest.raises(PushError) as caught:
        parse_push(raw)
    assert caught.value.status == status and says in str(caught.value), str(caught.value)


def test_a_valid_push_parses_with_its_files() -> None:
    parsed = parse_push(orjson.dumps(message(payload=[
        {"name": "totalacceleration", "time": float(T), "accuracy": 3,
         "values": {"x": 1, "y": None, "z": 9.81}},
        {"name": "wifi", "time": T, "values": {"ssid": "x", "rssi": -40}}])))
    assert [(s.file, s.time_ns) for s in parsed.samples] == [
        ("TotalAcceleration.csv", int(float(T))), ("wifi.csv", T)]  # a JavaScript double
    assert parsed.samples[0].values == {"x": 1, "y": None, "z": 9.81}


def test_push_order_counts_duplicates_reordering_gaps_and_late_arrivals() -> None:
    order: PushOrder[int] = PushOrder(depth=2, wait_s=5.0)
    assert order.offer(3, 3, 0.0) == "accepted"  # joined a running session at 3
    assert order.offer(5, 5, 0.0) == "accepted"
    assert order.offer(3, 3, 0.0) == "duplicate"
    assert order.due(0.0) == [3]  # 4 is waited for
    assert order.offer(6, 6, 1.0) == "accepted"
    assert order.due(1.0) == [5, 6]  # two held behind 4: given up
    assert order.counts.missing == 1
    assert order.offer(4, 4, 2.0) == "late" and order.due(2.0) == [4]
    assert order.offer(2, 2, 2.0) == "late"  # before the join: never waited for
    assert order.due(2.0) == [2]
    assert (order.counts.missing, order.counts.late, order.counts.reordered) == (0, 2, 2)
    assert order.offer(8, 8, 3.0) == "accepted" and order.due(7.9) == []
    assert order.due(8.0) == [8] and order.counts.missing == 1  # 7: waited 5 s
    assert order.offer(10, 10, 9.0) == "accepted" and order.drain() == [10]
    assert order.counts.missing == 2 and order.counts.duplicates == 1


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_cell_reads_back_as_the_float_the_phone_sent(value: float) -> None:
    assert float(cell_text(value)) == value


def test_live_files_read_as_their_zip_reads_and_write_the_same_bytes_twice() -> None:
    samples = [Sample("Battery.csv", T + i, {"batteryLevel": 0.5 + i / 1e7,
                                             "batteryState": " charging, full"})
               for i in range(5)] + [Sample("Battery.csv", T + 9, {"batteryLevel": None,
                                                                   "extra": True}),
                Sample("TotalAcceleration.csv", T, {"x": 0.0, "y": 0.0, "z": 9.8})]
    files = [LiveFiles("live:d", {"device id": "d"}) for _ in range(2)]
    for live in files:
        for sample in samples:
            live.add(sample)
    raw = files[0].zip_bytes()
    assert raw == files[1].zip_bytes()
    exported = ExportFolder(zipfile.ZipFile(io.BytesIO(raw)), "z").read("battery.csv")
    table = files[0].read("Battery.csv")
    assert exported.header == table.header
    for column in ("batteryLevel",):
        assert [x if not math.isnan(x) else None for x in exported.floats(column)] == \
               [x if not math.isnan(x) else None for x in table.floats(column)]
    assert exported.text("batteryState") == table.text("batteryState")
    assert exported.text("extra") == table.text("extra") == [""] * 5 + ["true"]


def _session_batches(messages: list[dict[str, Any]]) -> tuple[LiveSession, Any]:
    session = LiveSession(LiveOptions(seed=1))
    for i, m in enumerate(messages):
        session.offer(parse_push(body(m)), float(i))
        session.advance(float(i))
    return session, session.finish()


def test_batches_seal_as_the_stream_passes_them_and_equal_the_importers() -> None:
    session, result = _session_batches(push_messages(FIXTURE))
    recording = load_recording(FIXTURE)
    assert session.start_ms == recording.start_ns // 1_000_000
    expected = recording_batches(recording, start_ms=session.start_ms, seed=1)
    assert [block.size for block in session.sealed] == [1, 1, 1]
    assert encode_lines(result.batches) == encode_lines(expected)
    assert result.revised == ()


def test_a_sealed_batch_the_whole_recording_builds_differently_is_named() -> None:
    """Planted: the barometer first reports after batch 0 is sealed, so batch 0 was built
    for a phone without one; the whole recording has one."""
    messages = push_messages(FIXTURE)
    for m in messages[:35]:
        m["payload"] = [e for e in m["payload"] if e["name"] != "barometer"]
    _, result = _session_batches(messages)
    assert result.revised == (0,)


def test_a_sample_at_or_before_a_sealed_batch_is_set_aside() -> None:
    messages = push_messages(FIXTURE)
    stale = {"name": "light", "time": messages[3]["payload"][0]["time"],
             "values": {"lux": 1e5}}
    messages[40]["payload"].append(stale)  # 400 s in: batch 0 (to 290 s) is sealed
    session, _ = _session_batches(messages)
    assert session.counts.late_samples == 1
    assert session.late_samples[0][1].values == {"lux": 1e5}
    with zipfile.ZipFile(io.BytesIO(session.zip_bytes())) as zf:
        assert orjson.loads(zf.read("late-samples.jsonl"))["values"] == {"lux": 1e5}
        assert b"100000.0" not in zf.read("Light.csv")


def test_a_stream_the_importer_refuses_is_reported_at_once_and_kept() -> None:
    """Acceleration without gravity (Accelerometer alone): the importer refuses it as it
    refuses such a zip, so the session says why, early, and keeps every sample."""
    messages = push_messages(FIXTURE)
    for m in messages:
        m["payload"] = [e for e in m["payload"]
                        if e["name"] not in ("gravity", "totalacceleration")]
    session = LiveSession(LiveOptions())
    for i, m in enumerate(messages[:3]):
        session.offer(parse_push(body(m)), float(i))
        session.advance(float(i))
    assert session.problem is not None and "without gravity" in session.problem
    for i, m in enumerate(messages[3:], start=3):
        session.offer(parse_push(body(m)), float(i))
        session.advance(float(i))
    result = session.finish()
    assert result.batches is None and result.problem == session.problem
    assert session.counts.samples == sum(len(m["payload"]) for m in messages)


@pytest.mark.parametrize(("raw", "says"), [
    (body(entry(name="Metadata")), "not a sensor"),
    (body(message(deviceId="phone\r1")), "control character"),
    (body(entry(name="battery", values={"batteryLevel": 0.5, "batteryState": "a\rb"})),
     "control character"),
])
def test_what_the_zip_could_not_hold_is_refused(raw: bytes, says: str) -> None:
    with pytest.raises(PushError, match=says):
        parse_push(raw)


def test_messages_one_then_zero_at_the_start_are_reordered_not_late() -> None:
    order: PushOrder[int] = PushOrder(depth=8, wait_s=2.0)
    assert order.offer(1, 1, 0.0) == "accepted" and order.due(0.0) == []
    assert order.offer(0, 0, 0.1) == "accepted" and order.due(0.1) == [0, 1]
    assert (order.counts.late, order.counts.reordered, order.counts.joined_at) == (0, 1, 0)


def test_a_refused_stream_is_not_rebuilt_on_every_tick(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    import simulator.sensors.live_session as live_session
    runs = []
    real = live_session.recording_from
    monkeypatch.setattr(live_session, "recording_from",
                        lambda files: runs.append(1) or real(files))
    messages = push_messages(FIXTURE)
    for m in messages:
        m["payload"] = [e for e in m["payload"]
                        if e["name"] not in ("gravity", "totalacceleration")]
    session = LiveSession(LiveOptions())
    for i, m in enumerate(messages):
        session.offer(parse_push(body(m)), float(i))
        for tick in range(5):  # the ticker calls advance between messages too
            session.advance(i + tick / 5)
    # at most once per 30 s of stream (72 messages of 10 s), not 360 ticks
    assert 0 < len(runs) <= 72 * 10 // 30 + 1, len(runs)
