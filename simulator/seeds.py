"""The one place random generators are made from the run seed.

Invariant: every random draw in the simulator comes from a `numpy.random.Generator`
built by `generator(seed, stream, *indices)`, or, for single draws per event, from the
counter-based `uniform_hash(seed, stream, *indices)`. The key (run seed, stream, indices) names
the consumer of the draws, so phone 7's stream is the same whether it is generated alone,
as part of 10,000 phones, or in chunks of any size: nothing depends on the order in which
generators are made. Keys are `SeedSequence` spawn keys, i.e. exactly the child that
`SeedSequence(seed).spawn()` would hand out at that position of the tree.

No code in the simulator may use the global NumPy or `random` state, or the wall clock.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

from simulator.errors import UsageError

SEED_MAX = 2**63 - 1


class Stream(IntEnum):
    """Top-level branches of the seed tree, one per consumer of randomness."""

    PHONE_TRAITS = 1  # persona, places, sensor calibration: per phone, drawn once
    DAY_PLAN = 2  # the semi-Markov day of one phone on one local day
    SAMPLES = 3  # per-sample noise of one phone within one hour block
    CITY = 4  # regional weather and cloud cover of one city
    KILLS = 5  # app kills of one phone on one local day (counter-based, `uniform_hash`)
    NIGHT = 7  # decisions that belong to a night, not a day (charging overnight)
    NETWORK = 8  # per request of one phone: latency, loss (counter-based)
    FAULTS = 9  # who is offline when, server error draws (counter-based)
    RUNTIME = 10  # a fully simulated phone's own choices: retry jitter, app kills


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


def per_phone_uniforms(seed: int, stream: Stream, phones: npt.NDArray[np.int64],
                       shape: tuple[int, ...], *indices: int) -> npt.NDArray[np.float64]:
    """(len(phones), *shape) uniforms, row i from `generator(seed, stream, phones[i],
    *indices)`: each phone's draws depend on nothing but its own key."""
    out = np.empty((len(phones), *shape))
    for row, phone in enumerate(phones.tolist()):
        out[row] = generator(seed, stream, phone, *indices).random(shape)
    return out


def mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit hash."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uniform_hash(seed: int, stream: Stream, *indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Uniforms in [0, 1), one per element of the broadcast `indices`, keyed like
    `generator` but counter-based: vectorised, for single draws per event (a night, a
    place) where making a generator per event would cost more than the draw."""
    with np.errstate(over="ignore"):
        h = mix64(np.asarray(np.uint64(check_seed(seed) & 0xFFFFFFFFFFFFFFFF)
                             + _GOLDEN * np.uint64(int(stream) + 1)))
        for index in indices:
            h = mix64(h + (np.asarray(index).astype(np.uint64) + np.uint64(1)) * _GOLDEN)
    return np.asarray((h >> np.uint64(11)).astype(np.float64) / float(1 << 53))


_MASK = (1 << 64) - 1
_GOLDEN_INT = int(_GOLDEN)


def _mix64_int(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def uniform_hash_scalar(seed: int, stream: Stream, *indices: int) -> float:
    """`uniform_hash` of one key, bit for bit, in plain integers: a phone's single runtime
    decision costs a microsecond or two instead of the tens numpy takes on scalars."""
    h = _mix64_int(((check_seed(seed) & _MASK) + _GOLDEN_INT * (int(stream) + 1)) & _MASK)
    for index in indices:
        h = _mix64_int((h + (((index & _MASK) + 1) & _MASK) * _GOLDEN_INT) & _MASK)
    return (h >> 11) / float(1 << 53)
