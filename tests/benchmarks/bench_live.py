"""Benchmark: what `ggsim live` costs per second of a real phone's stream, against the
recording importer reading the same session once from its zip, measured in the same run.

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    python tests/benchmarks/bench_live.py [--minutes 30] [--repeats 3]

Method:
- a synthetic phone session of `--minutes`: accelerometer, gravity and gyroscope at
  100 Hz (Sensor Logger's fastest rate), barometer and location at 1 Hz, battery every
  minute, pushed as one message per second (the app's batch period), built once;
- live: every message parsed (`parse_push`), offered and advanced as the receiver does,
  then `finish`; the CPU time (process time) of the whole session, and of the seal
  that costs most (the importer run over the whole session so far, which grows with it);
- baseline: the session's own zip (`zip_bytes`) read by `load_recording` and turned into
  batches by `recording_batches`, once;
- ratio: live total / baseline. Medians of `--repeats`. A live phone uses a share of a
  core of (live total / session length): that is the figure a fleet run with `--live`
  gives up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from simulator.sensors.live_session import LiveOptions, LiveSession
from simulator.sensors.push import parse_push
from simulator.sensors.recording import load_recording, recording_batches

T0 = 1_764_000_000 * 10**9


def session_messages(minutes: int) -> list[bytes]:
    """One push body per second of a `minutes` session (module docstring)."""
    rng = np.random.default_rng(7)
    bodies: list[bytes] = []
    for second in range(minutes * 60):
        base = T0 + second * 10**9
        payload: list[dict[str, Any]] = []
        for k in range(100):
            t = base + k * 10_000_000
            for name, offset in (("accelerometer", 0.0), ("gravity", 9.81), ("gyroscope", 0.0)):
                x, y, z = rng.normal(0, 0.3, 3)
                payload.append({"name": name, "time": t,
                                "values": {"x": float(x), "y": float(y), "z": float(z) + offset}})
        payload.append({"name": "barometer", "time": base,
                        "values": {"pressure": 1013.0 + float(rng.normal()),
                                   "relativeAltitude": 0.0}})
        payload.append({"name": "location", "time": base,
                        "values": {"latitude": 53.55, "longitude": 9.99,
                                   "horizontalAccuracy": 5.0, "altitude": 10.0}})
        if second % 60 == 0:
            payload.append({"name": "battery", "time": base,
                            "values": {"batteryLevel": 0.8, "batteryState": "unplugged"}})
        bodies.append(orjson.dumps({"messageId": second, "sessionId": "s", "deviceId": "d",
                                    "payload": payload}))
    return bodies


def live_once(bodies: list[bytes]) -> tuple[float, float, LiveSession]:
    """CPU seconds of the whole live session, and of its costliest seal."""
    session = LiveSession(LiveOptions())
    worst = 0.0
    began = time.process_time()
    for i, raw in enumerate(bodies):
        session.offer(parse_push(raw), float(i))
        step = time.process_time()
        sealed = session.advance(float(i))
        if sealed is not None:
            worst = max(worst, time.process_time() - step)
    session.finish()
    return time.process_time() - began, worst, session


def importer_once(zip_path: Path) -> float:
    began = time.process_time()
    recording = load_recording(zip_path)
    recording_batches(recording, start_ms=T0 // 10**6)
    return time.process_time() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bodies = session_messages(args.minutes)
    samples = sum(len(orjson.loads(b)["payload"]) for b in bodies)
    print(f"session: {args.minutes} min, {len(bodies):,} messages, {samples:,} samples",
          flush=True)
    live_s, worst_s, base_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            total, worst, session = live_once(bodies)
            zip_path = Path(tmp) / "session.zip"
            zip_path.write_bytes(session.zip_bytes())
            baseline = importer_once(zip_path)
            live_s.append(total)
            worst_s.append(worst)
            base_s.append(baseline)
            print(f"repeat {repeat + 1}: live {total:.2f} s CPU (worst seal {worst:.3f} s), "
                  f"importer once {baseline:.2f} s", flush=True)
    live, worst, base = (statistics.median(x) for x in (live_s, worst_s, base_s))
    print(f"median: live {live:.2f} s CPU for {args.minutes * 60} s of stream "
          f"({live / (args.minutes * 60):.1%} of a core), {samples / live:,.0f} samples/s; "
          f"costliest seal {worst * 1000:.0f} ms; importer once {base:.2f} s; "
          f"ratio live / importer {live / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
