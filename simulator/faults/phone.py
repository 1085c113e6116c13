"""Faults of the phone itself (not of its network): reboots, Doze, wall-clock jumps,
storage that cannot be written.

All of them are pure functions of (seed, phone, the fault's index), drawn with
`uniform_hash` on `Stream.FAULTS`, so the same scenario and seed give the same reboots,
the same dozing phones and the same jumps whatever the run's timing:

- reboots (`reboots_per_day`, fully simulated phones): a Poisson process per phone. At a
  reboot the app dies: the batch it was collecting in memory is lost, nothing is
  collected while the phone is off (`reboot_down_s`), and the app starts again when it
  is back;
- Doze (`doze` windows, a seeded share of the phones): a dozing phone's timers and jobs
  are deferred to the window's end (Android runs deferred work in a maintenance window);
- clock jumps (`clock_jumps`, a seeded share): the phone's wall clock is off by the sum
  of the jumps it has seen; simulated (true) time goes on unchanged;
- storage (`storage` windows, a seeded share of the fully simulated phones): the app's
  file is full or read-only for the window (`fleet.storage` applies it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.faults.options import Faults
from simulator.instants import DAY_MS
from simulator.seeds import Stream, uniform_hash

_REBOOT, _DOZE, _JUMP, _STORAGE = 10_000, 20_000, 30_000, 40_000  # within Stream.FAULTS


@dataclass(frozen=True)
class Reboot:
    """The phone is off during [at_ms, back_ms)."""

    at_ms: int
    back_ms: int


@dataclass
class PhoneFaults:
    """The phone fault model of one run."""

    seed: int
    faults: Faults
    start_ms: int
    end_ms: int

    def _draw(self, phone: int, family: int, k: int) -> float:
        return float(uniform_hash(self.seed, Stream.FAULTS, np.int64(phone),
                                  np.int64(family + k)))

    def _covers(self, phone: int, family: int, index: int, share: float) -> bool:
        return share >= 1.0 or self._draw(phone, family, index * 2 + 1) < share

    def reboots(self, phone: int) -> list[Reboot]:
        """The phone's reboots in the run, in order (none when the rate is 0)."""
        rate_per_ms = self.faults.reboots_per_day / DAY_MS
        if rate_per_ms <= 0:
            return []
        down_ms = int(self.faults.reboot_down_s * 1000)
        out: list[Reboot] = []
        at = float(self.start_ms)
        for k in range(10_000):  # bounded: 48 a day for a week is 336
            u = min(max(self._draw(phone, _REBOOT, k), 1e-12), 1 - 1e-12)
            at += -math.log(u) / rate_per_ms  # exponential gaps: a Poisson process
            if at >= self.end_ms:
                break
            out.append(Reboot(int(at), int(at) + down_ms))
            at += down_ms  # the phone cannot reboot while it is off
        return out

    def doze_end(self, phone: int, at_ms: int) -> int | None:
        """The end of the Doze window `phone` is in at `at_ms`, or None when awake."""
        t_s = (at_ms - self.start_ms) / 1000
        for i, window in enumerate(self.faults.doze):
            if window.at_s <= t_s < window.at_s + window.duration_s and self._covers(
                    phone, _DOZE, i, window.share):
                return self.start_ms + int((window.at_s + window.duration_s) * 1000)
        return None

    def storage_fault(self, phone: int, at_ms: int) -> str | None:
        """"full" or "read_only" while `phone`'s file cannot be written at `at_ms`."""
        t_s = (at_ms - self.start_ms) / 1000
        for i, window in enumerate(self.faults.storage):
            if window.at_s <= t_s < window.at_s + window.duration_s and self._covers(
                    phone, _STORAGE, i, window.share):
                return window.kind
        return None

    def clock_offset_ms(self, phone: int, at_ms: int) -> int:
        """How far the phone's wall clock is from true time at `at_ms`."""
        t_s = (at_ms - self.start_ms) / 1000
        return sum(int(jump.jump_s * 1000) for i, jump in enumerate(self.faults.clock_jumps)
                   if jump.at_s <= t_s and self._covers(phone, _JUMP, i, jump.share))

    @property
    def any(self) -> bool:
        f = self.faults
        return bool(f.reboots_per_day or f.doze or f.clock_jumps or f.storage)
