"""One phone's live Sensor Logger stream turned into the uploads the app would make: the
same 10-second readings and 5-minute batches `recording_batches` gives from the finished
recording, sealed one by one while the stream comes in.

Sans-I/O: the caller hands in checked messages (`simulator.sensors.push`) and its wall
clock, and takes out sealed batches. Messages are put back in `messageId` order
(`simulator.sensors.push_order`); their samples go into `LiveFiles`, which the recording
importer reads as it reads a zip, so live and replayed batches come from one conversion.

Invariants:

- one session follows one device and one Sensor Logger session (the first message's);
  a message of another is refused (`PushError`, 409) and counted;
- batch w is sealed once the motion stream has passed its last tick by `seal_margin_s`
  (samples of the other sensors of that time have arrived by then: one push carries every
  sensor's samples of its period); `finish` seals the rest, the last one partial;
- a sample that cannot be applied in order is late: one older than its file's latest
  sample (the importer would drop it as a stale re-delivery) or at or before the sealed
  horizon (it would change a sealed batch). It is kept apart (`late_samples`, written to
  the zip as late-samples.jsonl, not to its CSV file) and counted, never silently dropped,
  so the recording's files stay in time order and replay to the batches that were sealed;
- `finish` derives every batch again from the whole recording and names the sealed ones
  whose bytes differ (`revised`): facts the importer takes from the whole recording (a
  sensor first seen later, the first battery row) can differ from what was known when a
  batch was sealed. On a stream whose sensors all report from the start it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

from simulator.errors import RecordingError
from simulator.instants import MS_PER_S, READINGS_PER_BATCH, SAMPLE_INTERVAL_S
from simulator.sensors.batch import BatchBlock, concat
from simulator.sensors.encode import encode_lines
from simulator.sensors.live_files import LiveFiles
from simulator.sensors.push import PushError, PushMessage, Sample
from simulator.sensors.push_order import OrderCounts, PushOrder
from simulator.sensors.recording import Recording, recording_batches
from simulator.sensors.recording_export import recording_from
from simulator.sensors.recording_files import ACCEL_FILES, NS_PER_S

TICK_NS = SAMPLE_INTERVAL_S * NS_PER_S
CHECK_EVERY_NS = 30 * NS_PER_S


@dataclass(frozen=True)
class LiveOptions:
    """How a live stream becomes batches. `start_ms` None: the first motion sample's time
    (the phone's own clock); `platform` "ios" or "android" is written to Metadata.csv, as
    the app's export states it (else the importer infers it from the files)."""

    seed: int = 0
    phone: int = 0
    start_ms: int | None = None
    platform: str = ""
    reorder_depth: int = 8
    reorder_wait_s: float = 2.0
    seal_margin_s: float = 10.0


@dataclass
class LiveCounts:
    """Samples and refusals of a session (the message order's counts are `order`)."""

    samples: int = 0
    late_samples: int = 0
    other_device: int = 0
    other_session: int = 0
    by_file: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveResult:
    """The end of a session: every batch, the ones revised after sealing, the recording."""

    batches: BatchBlock | None
    revised: tuple[int, ...]
    recording: Recording | None
    problem: str | None = None  # why no batch could be built, if none was


class LiveSession:
    """One device's push stream, in; its sealed batches, out (module invariants)."""

    def __init__(self, options: LiveOptions) -> None:
        self.options = options
        self.order: PushOrder[PushMessage] = PushOrder(options.reorder_depth,
                                                       options.reorder_wait_s)
        self.counts = LiveCounts()
        self.device_id: str | None = None
        self.session_id: str | None = None
        self.files: LiveFiles | None = None
        self.late_samples: list[tuple[int, Sample]] = []
        self.last: dict[str, Sample] = {}  # the latest sample applied, per file
        self.sealed: list[BatchBlock] = []
        self._sealed_count = 0
        self._horizon_ns = -1  # recording time of the last sealed tick
        self._newest: dict[str, int] = {}  # each file's latest sample time
        self._first_motion_ns: int | None = None
        self._last_motion_ns = -1
        self._start_ms: int | None = options.start_ms
        self._problem: str | None = None
        self._next_check_ns = 0

    @property
    def order_counts(self) -> OrderCounts:
        return self.order.counts

    @property
    def start_ms(self) -> int | None:
        """Simulated time of the first tick (fixed by the first seal)."""
        return self._start_ms

    def offer(self, message: PushMessage, now_s: float) -> str:
        """Take one message ("accepted", "duplicate" or "late"); `PushError` 409 if it is
        another device's or another session's."""
        if self.device_id is None:
            self.device_id, self.session_id = message.device_id, message.session_id
            self.files = LiveFiles(f"live:{message.device_id}", {
                "device id": message.device_id, "session id": message.session_id,
                "platform": self.options.platform, "appVersion": "ggsim live"})
        if message.device_id != self.device_id:
            self.counts.other_device += 1
            raise PushError(f"this ggsim live follows device {self.device_id!r}; "
                            f"{message.device_id!r} is another phone (start another "
                            "ggsim live for it)", 409)
        if message.session_id != self.session_id:
            self.counts.other_session += 1
            raise PushError(f"this ggsim live follows session {self.session_id!r} of the "
                            f"device; {message.session_id!r} is a new recording (restart "
                            "ggsim live to follow it)", 409)
        return self.order.offer(message.message_id, message, now_s)

    def advance(self, now_s: float) -> BatchBlock | None:
        """Apply the messages due by `now_s`; the batches sealed by them, if any."""
        for message in self.order.due(now_s):
            self._apply(message)
        if not self._may_seal():
            self._check_early()
            return None
        if self._problem is not None and self._last_motion_ns < self._next_check_ns:
            return None  # refused: tried again after more stream, not on every tick
        recording = self._recording()
        return self._seal(recording, final=False) if recording is not None else None

    @property
    def problem(self) -> str | None:
        """Why the stream cannot be built into batches (the importer refuses it, as it
        would the zip); None while it can. Samples keep being received and kept."""
        return self._problem

    def finish(self) -> LiveResult:
        """End of stream: apply everything held, seal every batch left, check the sealed
        ones against the whole recording's."""
        for message in self.order.drain():
            self._apply(message)
        recording = self._recording()
        sealed = concat(self.sealed) if self.sealed else None
        if recording is None:
            if self._problem is None and self.files is not None:
                self._problem = ("no motion sensor in the stream: enable TotalAcceleration, "
                                 "Accelerometer (with Gravity) or the uncalibrated "
                                 "accelerometer in Sensor Logger")
            # batches sealed before the stream became unreadable cannot be checked
            revised = tuple(range(sealed.size)) if sealed is not None else ()
            return LiveResult(sealed, revised, None, self._problem)
        before = [line for block in self.sealed for line in encode_lines(block)]
        self._seal(recording, final=True)
        whole = self._batches(recording)
        again = encode_lines(whole)
        revised = tuple(seq for seq, line in enumerate(before)
                        if seq >= len(again) or line != again[seq])
        return LiveResult(concat(self.sealed) if self.sealed else None, revised, recording)

    def zip_bytes(self) -> bytes:
        """The session as a Sensor Logger–style zip export (`LiveFiles.zip_bytes`), with the
        late samples as late-samples.jsonl."""
        if self.files is None:
            raise PushError("no message received: nothing to write", 409)
        late = b"".join(orjson.dumps({"messageId": mid, "file": s.file, "time": s.time_ns,
                                      "values": s.values}) + b"\n"
                        for mid, s in self.late_samples)
        return self.files.zip_bytes({"late-samples.jsonl": late} if late else None)

    def _apply(self, message: PushMessage) -> None:
        assert self.files is not None
        for sample in message.samples:
            newest = self._newest.get(sample.file, -1)
            if sample.time_ns < newest or sample.time_ns <= self._horizon_ns:
                self.counts.late_samples += 1
                self.late_samples.append((message.message_id, sample))
                continue
            self.files.add(sample)
            self.counts.samples += 1
            self.counts.by_file[sample.file] = self.counts.by_file.get(sample.file, 0) + 1
            self._newest[sample.file] = sample.time_ns
            self.last[sample.file] = sample
            if sample.file in ACCEL_FILES:
                if self._first_motion_ns is None:
                    self._first_motion_ns = sample.time_ns
                self._last_motion_ns = max(self._last_motion_ns, sample.time_ns)

    def _check_early(self) -> None:
        """Before the first seal, run the importer every `CHECK_EVERY_NS` of motion
        stream, so a stream it refuses is reported at once, not after five minutes."""
        if self._sealed_count or self._first_motion_ns is None:
            return
        if self._last_motion_ns >= self._next_check_ns:
            self._next_check_ns = self._last_motion_ns + CHECK_EVERY_NS
            self._recording()

    def _may_seal(self) -> bool:
        """Cheap test before the importer runs: has any motion file passed the next batch's
        last tick by the margin?"""
        if self._first_motion_ns is None:
            return False
        return self._last_motion_ns >= self._seal_point_ns(self._first_motion_ns,
                                                           self._sealed_count)

    def _seal_point_ns(self, start_ns: int, sealed: int) -> int:
        last_tick = (READINGS_PER_BATCH * (sealed + 1) - 1) * TICK_NS
        return start_ns + last_tick + int(self.options.seal_margin_s * NS_PER_S)

    def _recording(self) -> Recording | None:
        if self.files is None or not any(self.files.rows(name) for name in ACCEL_FILES):
            return None
        try:
            recording = recording_from(self.files)
        except RecordingError as exc:  # e.g. acceleration without gravity (UNITS.md)
            self._problem = str(exc)
            self._next_check_ns = self._last_motion_ns + CHECK_EVERY_NS
            return None
        self._problem = None
        if self._start_ms is None:
            self._start_ms = recording.start_ns // (NS_PER_S // MS_PER_S)
        return recording

    def _batches(self, recording: Recording) -> BatchBlock:
        assert self._start_ms is not None
        return recording_batches(recording, start_ms=self._start_ms, seed=self.options.seed,
                                 phone=self.options.phone)

    def _seal(self, recording: Recording, *, final: bool) -> BatchBlock | None:
        block = self._batches(recording)
        complete = block.size
        if not final:
            complete = self._sealed_count
            while (complete < block.size and recording.end_ns
                   >= self._seal_point_ns(recording.start_ns, complete)):
                complete += 1
        if complete <= self._sealed_count:
            return None
        new = block.take(np.arange(self._sealed_count, complete, dtype=np.intp))
        self.sealed.append(new)
        self._sealed_count = complete
        self._horizon_ns = (recording.start_ns
                            + (READINGS_PER_BATCH * complete - 1) * TICK_NS)
        return new
