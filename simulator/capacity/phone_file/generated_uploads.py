"""The uploads the phone makes (`PlannedUpload`), from the fleet generator: phone
`PHONE`'s 5-minute batches per day of upload (`_generate`), a generated week cycled over
the growth days (`_day_uploads`), and the outage's days in full with their envelopes
(`outage_uploads`).

Invariants:
- Deterministic: batches, ids and times are a function of the seed, the days and the
  start; nothing reads the wall clock.
- Growth days cycle a generated week: day d is the generator's day d mod 7, its ids and
  times re-derived for day d (`ids.batch_ids` of the shifted sequence number). A row's
  bytes depend on its values' lengths and integer sizes only (36-character ids,
  6-character geohashes, 6-byte times), so a cycled year has a generated year's bytes.
  The generator skips windows in which the app was killed, so a day has about 284
  uploads, not 288. Outage days are generated in full, with their real envelopes.
- A generated day starts with every window: generation begins an hour before the start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from simulator.capacity.phone_file.parameters import (
    DAY_MS,
    PHONE,
    START_MS,
    UPLOADS_PER_DAY,
)
from simulator.instants import WINDOW_MS
from simulator.sensors import FleetConfig, FleetGenerator, encode_lines, ids


@dataclass(frozen=True)
class PlannedUpload:
    """One 5-minute batch as the phone holds it: uploaded at `due_ms`."""

    due_ms: int
    batch_id: str
    timestamp_ms: int  # the window's start on the phone's clock
    samples: int
    geohash: str | None
    envelope: bytes  # the request body (b"" where only the local record matters)


@dataclass(frozen=True)
class _Sample:
    """Generated batches of phone `PHONE`, per day of upload."""

    due_ms: list[np.ndarray]
    timestamp_ms: list[np.ndarray]
    seq: list[np.ndarray]
    samples: list[np.ndarray]
    geohash: list[list[str]]
    envelopes: list[list[bytes]]


def _generate(seed: int, days: int, start_ms: int, envelopes: bool) -> _Sample:
    """The phone's batches whose upload is due in [start, start + days): generated from
    an hour earlier, so the first day has every window."""
    config = FleetConfig(seed=seed, phones=PHONE + 1, start_ms=start_ms - 3_600_000,
                         hours=24 * days + 1)
    parts: list[tuple[np.ndarray, ...]] = []
    lines: list[bytes] = []
    for block in FleetGenerator(config).iter_blocks():
        keep = block.phone == PHONE
        parts.append((block.order_ms[keep] + WINDOW_MS, block.period_start_ms[keep],
                      block.seq[keep], block.counts[keep], block.geohash[keep]))
        if envelopes:
            lines += [bytes(line).rstrip(b"\n") for line, k in
                      zip(encode_lines(block), keep.tolist(), strict=True) if k]
    due, stamp, seq, counts, geo = (np.concatenate(column) for column in zip(*parts,
                                                                            strict=True))
    day = (due - start_ms) // DAY_MS
    out = _Sample([], [], [], [], [], [])
    for d in range(days):
        pick = np.flatnonzero(day == d)
        out.due_ms.append(due[pick])
        out.timestamp_ms.append(stamp[pick])
        out.seq.append(seq[pick])
        out.samples.append(counts[pick])
        out.geohash.append([g.decode() for g in geo[pick]])
        out.envelopes.append([lines[i] for i in pick.tolist()] if envelopes else [])
    return out


def _day_uploads(sample: _Sample, seed: int, day: int) -> list[PlannedUpload]:
    """Day `day`'s uploads: the sample's day `day mod len(sample)`, moved to day `day`
    (times shifted by whole days, sequence numbers by 288 a day, ids re-derived)."""
    s = day % len(sample.due_ms)
    shift = day - s
    seqs = sample.seq[s] + shift * UPLOADS_PER_DAY
    batch_ids = ids.batch_ids(seed, np.full(seqs.shape, PHONE, dtype=np.int64), seqs)
    # an acknowledged upload leaves nothing of its envelope on the phone: no body needed
    return [PlannedUpload(int(due) + shift * DAY_MS, batch_id.decode(),
                          int(stamp) + shift * DAY_MS, int(n), geohash, b"")
            for due, batch_id, stamp, n, geohash in zip(
                sample.due_ms[s].tolist(), batch_ids, sample.timestamp_ms[s].tolist(),
                sample.samples[s].tolist(), sample.geohash[s], strict=True)]


def outage_uploads(seed: int, days: int, start_ms: int = START_MS) -> list[PlannedUpload]:
    """The generator's batches of `days` days from `start_ms`, with their envelopes."""
    sample = _generate(seed, days, start_ms, envelopes=True)
    result = []
    for d in range(days):
        for i, due in enumerate(sample.due_ms[d].tolist()):
            result.append(PlannedUpload(
                int(due), orjson.loads(sample.envelopes[d][i])["batch_id"],
                int(sample.timestamp_ms[d][i]), int(sample.samples[d][i]),
                sample.geohash[d][i], sample.envelopes[d][i]))
    return result
