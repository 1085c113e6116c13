"""The uploads to store, parsed once into typed columns (`build_corpus`), and the fleet
samples the capacity run stores (`quick_sample`, `full_sample`).

Invariants:
- Equal information: whatever the strict structs accept, the typed layouts can hold
  without loss (absent and null stay apart where the JSON has both); a payload they could
  not hold (an unknown or missing key, readings that disagree on having a barometer, a
  summary count that is not the number of readings) is refused up front with an
  `InvariantError` (a `ValueError`) naming the upload.
- `payloads` are byte for byte what the API stores; sensor values are float32 with NaN
  for a JSON null, in `CHANNELS` order.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from simulator.backend.store import device_hash
from simulator.capacity.layouts._types import _ISO_SECONDS, F32, I64, Bool
from simulator.capacity.layouts.tables import CHANNELS
from simulator.capacity.workload import FleetSample, Upload, decoded, uploads
from simulator.errors import InvariantError

SAMPLE_START_MS = 1_709_510_400_000  # 2024-03-04T00:00:00Z, a Monday


class _MinMax(msgspec.Struct, forbid_unknown_fields=True):
    avg: float | None
    min: float | None
    max: float | None


class _Summary(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    period_start: str
    period_end: str
    light: _MinMax
    accel_rms: float | None
    gyro_rms: float | None
    pressure: _MinMax | msgspec.UnsetType = msgspec.UNSET


_Triple = tuple[float | None, float | None, float | None]


class _Reading(msgspec.Struct, forbid_unknown_fields=True):
    t: int
    light: float | None
    accel: _Triple
    gyro: _Triple
    pressure: float | msgspec.UnsetType | None = msgspec.UNSET


class _Location(msgspec.Struct, forbid_unknown_fields=True):
    lat: float
    lon: float
    accuracy_m: float | None


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: int
    summary: _Summary
    batch: list[_Reading]
    location: _Location
    geohash: str
    battery_level: int | None
    is_charging: bool | None


_decode_payload = msgspec.json.Decoder(_Payload)


@dataclass(frozen=True)
class LayoutCorpus:
    """The batches to store, columnar: batch i owns readings `offsets[i]:offsets[i+1]`;
    `values[:, k]` is channel `CHANNELS[k]` as float32, NaN for a JSON null."""

    payloads: tuple[bytes, ...]  # batch_json, byte for byte what the API stores
    batch_uuid: tuple[uuid.UUID, ...]
    seq: tuple[int | None, ...]
    device_hash: tuple[str, ...]
    user_id: tuple[str, ...]
    timestamp_ms: I64
    typed: tuple[tuple[Any, ...], ...]  # per batch, the values of _TYPED_COLUMNS
    geohash: tuple[str, ...]
    offsets: I64
    t_ms: I64
    values: F32
    has_barometer: Bool

    @property
    def batches(self) -> int:
        return len(self.payloads)

    @property
    def readings(self) -> int:
        return int(self.offsets[-1])

    @property
    def payload_bytes_mean(self) -> float:
        return sum(map(len, self.payloads)) / self.batches


def quick_sample(seed: int = 1) -> FleetSample:
    """A few thousand batches (12 phones for a day): `--quick`."""
    return FleetSample(seed=seed, phones=12, days=1.0, start_ms=SAMPLE_START_MS)


def full_sample(seed: int = 1) -> FleetSample:
    """Tens of thousands of batches (100 phones for a day)."""
    return FleetSample(seed=seed, phones=100, days=1.0, start_ms=SAMPLE_START_MS)


def build_corpus(payloads: FleetSample | Iterable[bytes | Upload]) -> LayoutCorpus:
    """Parse upload envelopes (lines of `ggsim generate`, or `Upload`s) or generate a
    fleet sample's; `InvariantError` (a `ValueError`) names the first upload the typed
    layouts cannot hold."""
    source = uploads(payloads) if isinstance(payloads, FleetSample) else payloads
    builder = _CorpusBuilder()
    for i, item in enumerate(source):
        upload = item if isinstance(item, Upload) else decoded(bytes(item).rstrip(b"\n"))
        builder.add(i, upload)
    if not builder.payloads:
        raise InvariantError("no uploads to store: give at least one upload envelope")
    return builder.build()


class _CorpusBuilder:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.uploads: list[Upload] = []
        self.typed: list[tuple[Any, ...]] = []
        self.geohash: list[str] = []
        self.counts: list[int] = []
        self.t_ms: list[int] = []
        self.values: list[float] = []
        self.has_barometer: list[bool] = []

    def add(self, index: int, upload: Upload) -> None:
        try:
            payload = _decode_payload.decode(upload.payload)
            barometer = _barometer(payload)
            self.typed.append(_typed_values(payload, barometer))
        except (msgspec.MsgspecError, ValueError) as exc:
            raise InvariantError(f"upload {index} ({upload.batch_id}) cannot be stored in "
                                 f"the typed layouts without loss: {exc}") from None
        self.payloads.append(upload.payload)
        self.uploads.append(upload)
        self.geohash.append(payload.geohash)
        self.counts.append(len(payload.batch))
        self.has_barometer.append(barometer)
        for reading in payload.batch:
            self.t_ms.append(reading.t)
            self.values.extend(_reading_values(reading))

    def build(self) -> LayoutCorpus:
        offsets = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=offsets[1:])
        return LayoutCorpus(
            payloads=tuple(self.payloads),
            batch_uuid=tuple(uuid.UUID(u.batch_id) for u in self.uploads),
            seq=tuple(u.seq for u in self.uploads),
            device_hash=tuple(device_hash(u.device_id) for u in self.uploads),
            user_id=tuple(u.user_id for u in self.uploads),
            timestamp_ms=np.array([u.timestamp_ms for u in self.uploads], dtype=np.int64),
            typed=tuple(self.typed), geohash=tuple(self.geohash), offsets=offsets,
            t_ms=np.array(self.t_ms, dtype=np.int64),
            values=np.array(self.values, dtype=np.float32).reshape(-1, len(CHANNELS)),
            has_barometer=np.array(self.has_barometer, dtype=np.bool_))


def _barometer(payload: _Payload) -> bool:
    """Whether the batch carries pressure: the summary and every reading must agree."""
    has = not isinstance(payload.summary.pressure, msgspec.UnsetType)
    if any(isinstance(r.pressure, msgspec.UnsetType) == has for r in payload.batch):
        raise ValueError("summary.pressure and the readings' pressure keys disagree")
    if payload.summary.count != len(payload.batch):
        raise ValueError(f"summary.count is {payload.summary.count}, "
                         f"batch has {len(payload.batch)} readings")
    return has


def _typed_values(payload: _Payload, barometer: bool) -> tuple[Any, ...]:
    """The values of `_TYPED_COLUMNS` for one batch."""
    s = payload.summary
    pressure = s.pressure if isinstance(s.pressure, _MinMax) else _MinMax(None, None, None)
    return (_parse_iso(s.period_start), _parse_iso(s.period_end),
            payload.location.lat, payload.location.lon,
            s.light.avg, s.light.min, s.light.max, s.accel_rms, s.gyro_rms,
            pressure.avg, pressure.min, pressure.max, payload.location.accuracy_m,
            s.count, payload.battery_level, payload.is_charging, barometer)


def _parse_iso(text: str) -> datetime:
    instant = datetime.strptime(text, _ISO_SECONDS).replace(tzinfo=UTC)
    if instant.strftime(_ISO_SECONDS) != text:
        raise ValueError(f"{text!r} is not an ISO-8601 UTC instant in whole seconds")
    return instant


def _reading_values(reading: _Reading) -> list[float]:
    pressure = None if isinstance(reading.pressure, msgspec.UnsetType) else reading.pressure
    values = (reading.light, *reading.accel, *reading.gyro, pressure)
    return [math.nan if v is None else v for v in values]
