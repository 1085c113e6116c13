"""Factories shared by the tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

from simulator.sensors.batch import BatchBlock

settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("dev")


def make_block(
    rng: np.random.Generator,
    n_batches: int = 5,
    *,
    max_readings: int = 32,
    nan_probability: float = 0.0,
    barometer_probability: float = 0.5,
) -> BatchBlock:
    """A random but well-formed BatchBlock (for encoder and summary tests)."""
    counts = rng.integers(1, max_readings + 1, n_batches)
    offsets = np.zeros(n_batches + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n = int(offsets[-1])
    start = 1_704_067_200_000 + np.sort(rng.integers(0, 86_400_000, n_batches))

    def f32(*shape: int, scale: float = 1.0, loc: float = 0.0) -> np.ndarray:
        values = (loc + scale * rng.standard_normal(shape)).astype(np.float32)
        if nan_probability:
            values[rng.random(shape) < nan_probability] = np.nan
        return values

    return BatchBlock(
        phone=rng.integers(0, 100, n_batches),
        seq=rng.integers(0, 10_000, n_batches),
        device_id=np.array([f"dev-{i}".encode() for i in range(n_batches)]),
        user_id=np.array([f"user-{i}".encode() for i in range(n_batches)]),
        batch_id=np.array([f"{i:08x}-0000-4000-8000-000000000000".encode()
                           for i in range(n_batches)]),
        order_ms=start,
        period_start_ms=start,
        period_end_ms=start + 300_000,
        offsets=offsets,
        t_ms=np.repeat(start, counts) + rng.integers(0, 300_000, n),
        light=np.abs(f32(n, scale=500.0)),
        accel=f32(n, 3, scale=3.0),
        gyro=f32(n, 3, scale=0.3),
        pressure=f32(n, scale=5.0, loc=1013.0),
        has_pressure=rng.random(n_batches) < barometer_probability,
        lat=52.5 + 0.1 * rng.standard_normal(n_batches),
        lon=13.4 + 0.1 * rng.standard_normal(n_batches),
        accuracy_m=np.abs(f32(n_batches, scale=10.0)),
        geohash=np.array([b"u33dc0"] * n_batches),
        battery_level=rng.integers(0, 101, n_batches),
        is_charging=rng.random(n_batches) < 0.3,
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
