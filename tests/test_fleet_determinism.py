"""A phone's stream is a pure function of (seed, phone index, time)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import UsageError
from simulator.instants import parse_instant
from simulator.sensors.encode import encode_lines
from simulator.sensors.generator import FleetConfig, FleetGenerator
from simulator.sensors.parallel import generate_lines

START = parse_instant("2024-03-04T22:00:00Z")  # a Monday night: crosses local midnight


def lines_of(phones: int, hours: float, start: int = START, seed: int = 5,
             chunk: int = 1000) -> dict[bytes, bytes]:
    """Lines keyed by batch id."""
    gen = FleetGenerator(FleetConfig(seed=seed, phones=phones, start_ms=start, hours=hours))
    out: dict[bytes, bytes] = {}
    for hour_lines in generate_lines(gen, chunk_phones=chunk, workers=1):
        for view in hour_lines:
            line = bytes(view)
            out[line[line.index(b'"batch_id":"') + 12:][:36]] = line
    return out


def phone_lines(lines: dict[bytes, bytes], phones: range) -> dict[bytes, bytes]:
    wanted = [f'-p{p:06d}"'.encode() for p in phones]
    return {k: v for k, v in lines.items() if any(w in v[:80] for w in wanted)}


def test_small_fleet_is_a_prefix_of_a_big_fleet() -> None:
    alone = lines_of(10, 3)
    among = phone_lines(lines_of(300, 3), range(10))
    assert alone and alone == among


def test_phone_chunking_does_not_change_bytes() -> None:
    assert lines_of(50, 2, chunk=7) == lines_of(50, 2, chunk=50)


def test_time_windows_compose() -> None:
    whole = lines_of(20, 4)
    parts = lines_of(20, 1.5) | lines_of(20, 2.5, start=START + 5_400_000)
    assert whole == parts


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a, b = lines_of(5, 1), lines_of(5, 1)
    assert list(a.values()) == list(b.values())
    c = lines_of(5, 1, seed=6)
    assert set(a.values()).isdisjoint(c.values())


def test_output_is_in_time_order_and_seq_increases_per_phone() -> None:
    gen = FleetGenerator(FleetConfig(seed=1, phones=40, start_ms=START, hours=3))
    last_seq: dict[int, int] = {}
    previous = -1
    for block in gen.iter_blocks(chunk_phones=15):
        assert (np.diff(block.order_ms) >= 0).all()
        assert block.order_ms[0] >= previous
        previous = int(block.order_ms[-1])
        for phone, seq in zip(block.phone.tolist(), block.seq.tolist(), strict=True):
            assert seq > last_seq.get(phone, -1)
            last_seq[phone] = seq


def test_parallel_workers_give_the_same_bytes() -> None:
    config = FleetConfig(seed=3, phones=900, start_ms=START, hours=3)
    serial = [b"".join(h) for h in generate_lines(FleetGenerator(config), workers=1,
                                                    chunk_phones=300)]
    parallel = [b"".join(h) for h in generate_lines(FleetGenerator(config), workers=2,
                                                      chunk_phones=300)]
    assert serial == parallel


def test_block_batches_hold_about_thirty_readings() -> None:
    gen = FleetGenerator(FleetConfig(seed=2, phones=200, start_ms=START, hours=1))
    block = gen.block(range(200), START // 3_600_000)
    block.validate()
    counts = block.counts
    assert np.median(counts) == 30
    assert counts.max() <= 32 and counts.min() >= 1
    assert len(encode_lines(block)) == block.size


def test_phones_late_in_a_big_chunk_match_themselves_alone_across_midnight() -> None:
    """Regression: the segment lookup used float keys offset by row (inexact for high rows)
    and joined two days only when some phone of the chunk crossed midnight."""
    config = FleetConfig(seed=5, phones=1000, start_ms=parse_instant("2024-03-05T22:00:00Z"),
                         hours=1)
    hour = config.hour_blocks[0]
    together = FleetGenerator(config).block(range(0, 1000), hour)
    late = range(985, 1000)
    alone = FleetGenerator(config).block(late, hour)
    mine = np.flatnonzero(together.phone >= late.start)
    assert mine.size == alone.size > 100
    assert encode_lines(together.take(mine)) == encode_lines(alone)


def test_chunks_without_batches_do_not_shift_the_merge() -> None:
    """Regression: a chunk with no window in the interval shifted every later line."""
    config = FleetConfig(seed=7, phones=8, start_ms=START, hours=0.04)
    by_one = [bytes(v) for h in generate_lines(FleetGenerator(config), chunk_phones=3,
                                                workers=1) for v in h]
    whole = [bytes(v) for h in generate_lines(FleetGenerator(config), chunk_phones=8,
                                               workers=1) for v in h]
    assert by_one == whole
    devices = [line[:60] for line in by_one]
    assert len(devices) == len(set(devices))


def test_an_interval_with_no_window_yields_no_lines() -> None:
    config = FleetConfig(seed=1, phones=1, start_ms=START, hours=0.001)
    assert [len(h) for h in generate_lines(FleetGenerator(config), workers=1)] in ([0], [1])


def test_a_scattered_set_of_phones_gives_each_phone_its_own_batches() -> None:
    """A load-test worker holds phones spread over the fleet: generated as one set, each
    phone's lines are byte-identical to the same phone's in a contiguous block, hour
    after hour (the set keeps its plans); a set out of order or out of the fleet is
    refused with what was asked."""
    config = FleetConfig(seed=9, phones=300, start_ms=parse_instant("2024-03-05T07:00:00Z"),
                         hours=2)
    scattered = [3, 41, 42, 150, 299]
    gen, whole = FleetGenerator(config), FleetGenerator(config)
    for hour in config.hour_blocks:
        mixed, block = gen.block(scattered, hour), whole.block(range(300), hour)
        mine = np.flatnonzero(np.isin(block.phone, scattered))
        assert set(mixed.phone.tolist()) == set(scattered)
        assert encode_lines(mixed) == encode_lines(block.take(mine))
    for wrong in ([41, 3], [3, 3], [299, 300], []):
        with pytest.raises(UsageError, match="ascending set of the fleet's 300 phones"):
            gen.block(wrong, config.hour_blocks[0])
