"""Identifiers that are reversible functions of (run seed, phone index, sequence number).

Invariant: from a line of output alone, a checker recovers the phone index (from
`device_id`) and the sequence number (`seq`), and can recompute the `batch_id`; so the
three-ledger check can say what the backend must hold without storing the phones' output.

- device id: ``sim-<seed as 16 hex digits>-p<phone, 6+ digits>``: stable per phone, and two
  runs with different seeds never share devices on one backend.
- user id: ``user-<seed hex>-<phone>``: one user per phone by default.
- batch id: a UUID (version 8, RFC 9562 "custom") whose 122 free bits are a hash of
  (seed, phone, seq); the same batch always has the same id, so a retry carries the same
  `Idempotency-Key`.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from simulator.seeds import mix64

_DEVICE_RE = re.compile(rb"sim-([0-9a-f]{16})-p(\d+)")
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def device_ids(seed: int, phones: npt.NDArray[np.int64]) -> npt.NDArray[np.bytes_]:
    """Device id of each phone index."""
    prefix = f"sim-{seed & 0xFFFFFFFFFFFFFFFF:016x}-p".encode()
    digits = np.char.zfill(phones.astype("S20"), 6)
    return np.char.add(prefix, digits)


def user_ids(seed: int, phones: npt.NDArray[np.int64]) -> npt.NDArray[np.bytes_]:
    """User id of each phone index (one user per phone)."""
    prefix = f"user-{seed & 0xFFFFFFFFFFFFFFFF:016x}-".encode()
    return np.char.add(prefix, np.char.zfill(phones.astype("S20"), 6))


def parse_device_id(device_id: bytes | str) -> tuple[int, int]:
    """(seed modulo 2**64, phone index) of a simulator device id; ValueError otherwise."""
    raw = device_id.encode() if isinstance(device_id, str) else device_id
    match = _DEVICE_RE.fullmatch(raw)
    if match is None:
        raise ValueError(f"not a simulator device id: {raw!r}")
    return int(match.group(1), 16), int(match.group(2))


def batch_ids(seed: int, phones: npt.NDArray[np.int64],
              seqs: npt.NDArray[np.int64]) -> npt.NDArray[np.bytes_]:
    """UUIDv8 text of each (phone, seq), as bytes; deterministic in (seed, phone, seq)."""
    s = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        # SplitMix64 steps: add the golden-ratio increment before each finaliser, so
        # (0, 0, 0) does not hash to the finaliser's fixed point 0.
        golden = np.uint64(0x9E3779B97F4A7C15)
        base = mix64(s + (phones.astype(np.uint64) + np.uint64(1)) * golden)
        hi = mix64(base + (seqs.astype(np.uint64) + np.uint64(1)) * golden)
        lo = mix64(hi + golden)
    # version 8 in the top nibble of byte 6, variant 10 in the top bits of byte 8
    hi = (hi & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x8000)
    lo = (lo & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
    raw = np.stack([hi, lo], axis=-1).astype(">u8").view(np.uint8).reshape(-1, 16)
    hexed = _HEX[raw].view("S32").reshape(-1)
    h = hexed.view(np.uint8).reshape(-1, 32)
    out = np.full((h.shape[0], 36), ord("-"), dtype=np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18] = h[:, 0:8], h[:, 8:12], h[:, 12:16]
    out[:, 19:23], out[:, 24:36] = h[:, 16:20], h[:, 20:32]
    return out.view("S36").reshape(-1)
