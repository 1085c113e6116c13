"""The one place random generators are made from the run seed.

Invariant: every random draw in the simulator comes from a `numpy.random.Generator`
built by `generator(seed, stream, *indices)`. The key (run seed, stream, indices) names
the consumer of the draws, so phone 7's stream is the same whether it is generated alone,
as part of 10,000 phones, or in chunks of any size: nothing depends on the order in which
generators are made. Keys are `SeedSequence` spawn keys, i.e. exactly the child that
`SeedSequence(seed).spawn()` would hand out at that position of the tree.

No code in the simulator may use the global NumPy or `random` state, or the wall clock.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from simulator.errors import UsageError

SEED_MAX = 2**63 - 1


class Stream(IntEnum):
    """Top-level branches of the seed tree, one per consumer of randomness."""

    PHONE_TRAITS = 1  # persona, places, sensor calibration: per phone, drawn once
    DAY_PLAN = 2  # the semi-Markov day of one phone on one local day
    SAMPLES = 3  # per-sample noise of one phone within one hour block
    CITY = 4  # regional weather and cloud cover of one city
    IMPERFECTIONS = 5  # missing, stuck, duplicated readings of one phone in one hour block
    RECORDING = 6  # noise added when replaying a recording


def check_seed(seed: int) -> int:
    """Return `seed` if it is a usable run seed, else raise `UsageError` saying why."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise UsageError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) <= SEED_MAX:
        raise UsageError(f"seed must be between 0 and {SEED_MAX}, got {seed}")
    return int(seed)


def seed_sequence(seed: int, stream: Stream, *indices: int) -> np.random.SeedSequence:
    """The `SeedSequence` of one consumer: (run seed, stream, indices) -> child."""
    key = (int(stream), *(int(i) for i in indices))
    if any(i < 0 for i in key):
        raise UsageError(f"seed-tree indices must be non-negative, got {key}")
    return np.random.SeedSequence(entropy=check_seed(seed), spawn_key=key)


def generator(seed: int, stream: Stream, *indices: int) -> np.random.Generator:
    """A fresh generator for one consumer; same key, same draws, always."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, stream, *indices)))


def key_u64(seed: int, stream: Stream, *indices: int) -> int:
    """A 64-bit integer derived from the key, for identifiers (not for sampling)."""
    return int(seed_sequence(seed, stream, *indices).generate_state(1, np.uint64)[0])
