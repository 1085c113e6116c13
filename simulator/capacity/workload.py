"""The uploads a capacity measurement stores: a generated fleet's envelopes, and each one
decoded by the backend's own parser into the values the API writes.

Invariant: `Upload.payload` is byte for byte what `POST /upload` stores in
`sensor_batches.batch_json` for the same request body (it comes from
`backend.payload.decode_upload`, the API's parser), so a bulk load of `Upload`s stores what
the API would have stored. Deterministic: the same (seed, phones, start, hours) gives the
same uploads in the same order (true window start, then phone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from simulator.backend.payload import decode_upload
from simulator.instants import DAY_MS as DAY_MS
from simulator.sensors import FleetConfig, FleetGenerator
from simulator.sensors.encode import iter_lines

ANY_TIME_MS = 2**62  # decode_upload's "now": no batch is in the future of it


@dataclass(frozen=True)
class Upload:
    """One upload: the request body and what the API derives from it."""

    body: bytes  # the envelope line, as POSTed
    device_id: str
    user_id: str
    batch_id: str
    seq: int | None
    timestamp_ms: int  # the payload's timestamp (the phone's clock)
    payload: bytes  # what batch_json stores
    samples: int  # readings in the batch

    @property
    def body_sha256(self) -> bytes:
        return hashlib.sha256(self.body).digest()


@dataclass(frozen=True)
class FleetSample:
    """What to generate: `phones` phones for `days` days from `start_ms`."""

    seed: int
    phones: int
    days: float
    start_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + round(self.days * DAY_MS)


def uploads(sample: FleetSample, *, first_day: int = 0, days: float | None = None,
            chunk_phones: int = 1000) -> Iterator[Upload]:
    """The sample's uploads from day `first_day` for `days` days (default: to its end)."""
    start = sample.start_ms + first_day * DAY_MS
    hours = 24 * (sample.days - first_day if days is None else days)
    config = FleetConfig(seed=sample.seed, phones=sample.phones, start_ms=start, hours=hours)
    for block in FleetGenerator(config).iter_blocks(chunk_phones=chunk_phones):
        for line in iter_lines(block):
            yield decoded(line.rstrip(b"\n"))


def decoded(body: bytes) -> Upload:
    """An envelope line as the API reads it."""
    envelope, payload = decode_upload(body, ANY_TIME_MS, 0)
    return Upload(body=body, device_id=envelope.device_id, user_id=envelope.user_id,
                  batch_id=envelope.batch_id, seq=envelope.seq, timestamp_ms=payload.timestamp,
                  payload=bytes(envelope.payload), samples=len(payload.batch))
