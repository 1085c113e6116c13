"""Identifiers and geohashes."""

from __future__ import annotations

import uuid

import numpy as np
import pygeohash
import pytest

from simulator.sensors import geohash, ids


def test_review_example_geohash_is_berlin() -> None:
    assert geohash.encode([52.5200], [13.4050], 6)[0] == b"u33dc0"


def test_geohash_matches_pygeohash_on_random_points(rng: np.random.Generator) -> None:
    lat = rng.uniform(-89.9, 89.9, 500)
    lon = rng.uniform(-179.9, 179.9, 500)
    for precision in (1, 6, 9):
        ours = geohash.encode(lat, lon, precision)
        for a, b, code in zip(lat, lon, ours, strict=True):
            assert code.decode() == pygeohash.encode(float(a), float(b), precision)


def test_batch_ids_are_uuid8_deterministic_and_distinct() -> None:
    phones = np.repeat(np.arange(100), 50)
    seqs = np.tile(np.arange(50), 100)
    a = ids.batch_ids(9, phones, seqs)
    assert (a == ids.batch_ids(9, phones, seqs)).all()
    assert len(set(a.tolist())) == a.size
    assert not (a == ids.batch_ids(10, phones, seqs)).any()
    parsed = uuid.UUID(a[0].decode())
    assert parsed.version == 8 and parsed.variant == uuid.RFC_4122


def test_device_id_reverses_to_seed_and_phone() -> None:
    dev = ids.device_ids(2**40 + 3, np.array([0, 7, 123_456_789]))
    assert [ids.parse_device_id(d) for d in dev] == [(2**40 + 3, 0), (2**40 + 3, 7),
                                                    (2**40 + 3, 123_456_789)]
    with pytest.raises(ValueError, match="not a simulator device id"):
        ids.parse_device_id("phone-1")


def test_batch_id_of_the_first_batch_of_seed_zero_is_not_degenerate() -> None:
    text = ids.batch_ids(0, np.array([0]), np.array([0]))[0].decode()
    assert not text.startswith("00000000")
