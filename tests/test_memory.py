"""The malloc tuning takes effect where the C library is glibc (as on every CI machine)."""

from __future__ import annotations

import platform

import pytest

from simulator.sensors.memory import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_takes_effect_on_glibc() -> None:
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process, then cached
