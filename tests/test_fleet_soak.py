"""The soak's judgement: memory sampled while the fleet runs and latency per minute,
each fitted with a Theil-Sen trend after the warm-up. A real short run holds its
bounds; the same run with a planted leak in the load generator (every upload keeps
half a MiB) fails the generator's memory bound; synthetic series show each verdict."""

from __future__ import annotations

import asyncio
import mmap
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fleet_helpers import quick

from simulator.fleet import scenario as sc
from simulator.fleet import stack as stacks
from simulator.fleet.phone import Phone, PhoneLife
from simulator.fleet.runner import FleetRun
from simulator.fleet.soak import MIB, MemorySamples, judge_soak, memory_verdict
from simulator.fleet.timeline import Timeline
from simulator.report import html

LEAK_BYTES = 512 * 1024
SOAK = {"sample_s": 0.5, "max_memory_growth_mib": 16, "warmup_fraction": 0.0}


def soak_scenario(seed: int) -> sc.Scenario:
    return quick(seed=seed, duration_s=3600, speed=240,
                 fleet={"phones": 30, "full_phones": 10}, soak=SOAK)


class LeakyLife(PhoneLife):
    """A planted fault: the load generator keeps half a MiB per full upload."""

    kept: ClassVar[list[mmap.mmap]] = []

    async def full_upload(self, phone: Phone, *args: Any) -> None:
        # A fresh anonymous mapping, written: memory from malloc may be pages the process
        # already holds (after the whole test suite, CI's heap had plenty free), and
        # bytes(n)'s calloc'd zero pages are never touched, so neither grows the resident
        # set the soak samples.
        kept = mmap.mmap(-1, LEAK_BYTES)
        kept.write(b"\xa5" * LEAK_BYTES)
        LeakyLife.kept.append(kept)
        await super().full_upload(phone, *args)


class LeakyRun(FleetRun):
    life_type = LeakyLife


def _run(run_type: type[FleetRun], database_url: str, tmp_path: Path, seed: int) -> Any:
    scenario = soak_scenario(seed)  # its own seed: its own devices in the one database
    tmp_path.mkdir(parents=True)
    stack = stacks.embedded(scenario, database_url)
    try:
        return asyncio.run(run_type(scenario, stack, tmp_path).run())
    finally:
        stack.stop()


@pytest.mark.slow
def test_a_steady_run_holds_the_soak_bounds_and_a_leak_does_not(
        database_url: str, tmp_path: Path) -> None:
    steady = _run(FleetRun, database_url, tmp_path / "steady", seed=3)
    for name in ("soak_backend_memory", "soak_generator_memory", "soak_latency_trend"):
        assert steady.thresholds[name][0], steady.thresholds[name]
    assert steady.soak["backend"]["samples"] >= 10
    html.write(steady, tmp_path / "report.html")  # the plots with their trend bands
    page = (tmp_path / "report.html").read_text()
    assert "id='soak-memory'><svg" in page and "id='soak-latency'><svg" in page
    leaky = _run(LeakyRun, database_url, tmp_path / "leaky", seed=4)
    for kept in LeakyLife.kept:
        kept.close()
    LeakyLife.kept.clear()
    held, measured = leaky.thresholds["soak_generator_memory"]
    assert not held and not leaky.passed, measured
    assert leaky.soak["generator"]["slope_ci95_mib_per_min"][0] > 0  # the CI excludes 0


def _soak(**bounds: float) -> sc.Soak:
    return sc.Soak(**{"warmup_fraction": 0.2, **bounds})  # type: ignore[arg-type]


def test_memory_verdicts_on_synthetic_series() -> None:
    t = [float(s) for s in range(0, 600, 5)]
    flat = [200 * MIB + (i % 3) * MIB for i in range(len(t))]  # noise, no trend
    leak = [200 * MIB + int(s * 0.2 * MIB) for s in t]  # 12 MiB a minute
    warm = [(400 if s < 60 else 200) * MIB for s in t]  # high only during the warm-up
    assert memory_verdict("x", t, flat, _soak(max_memory_growth_mib=8))[0][0]
    assert not memory_verdict("x", t, leak, _soak(max_memory_growth_mib=8))[0][0]
    assert memory_verdict("x", t, warm, _soak(max_memory_growth_mib=8))[0][0]


def test_a_rising_latency_fails_and_a_level_one_holds() -> None:
    rising, level = Timeline(0), Timeline(0)
    for minute in range(60):
        for k in range(20):
            level.request(minute * 60_000, "/upload", 10.0 + (k % 5))
            rising.request(minute * 60_000, "/upload", 10.0 + minute * 0.2 + (k % 5))
    samples = MemorySamples([0.0, 1.0, 2.0], [], [1, 1, 1])
    held = judge_soak(samples, level, _soak(), 60.0)[0]["soak_latency_trend"]
    failed = judge_soak(samples, rising, _soak(), 60.0)[0]["soak_latency_trend"]
    assert held[0] and not failed[0], (held, failed)
