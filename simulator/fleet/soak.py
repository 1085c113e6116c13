"""A soak: a long run at a steady rate, judged on whether it stays steady. While the fleet
runs, `sample_memory` reads the resident memory of the backend process and of this
process (the load generator) every `sample_s` wall seconds; at the end, `judge_soak`
fits a trend to what came after the warm-up and states it with its 95 % interval:

- memory: the Theil-Sen slope of each process's RSS over wall time, times the
  post-warm-up duration, is the growth the trend predicts over the soak; it must stay
  under `max_memory_growth_mib`;
- latency: the Theil-Sen slope of the per-minute median upload latency over simulated
  time, times the post-warm-up duration, must stay under `max_latency_growth_fraction`
  of the post-warm-up median.

Theil-Sen (the median of pairwise slopes, scipy) rather than least squares: a GC pause
or one slow minute does not tilt it. Invariant: the judgement reads only the samples
and the timeline; sampling never blocks the event loop for longer than two /proc reads.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil
from scipy import stats

from simulator.fleet.scenario import Soak
from simulator.fleet.timeline import Timeline

MIB = 1024 * 1024


@dataclass
class MemorySamples:
    """RSS in bytes at wall seconds since the run's start; backend None: not ours."""

    wall_s: list[float] = field(default_factory=list)
    backend: list[int] = field(default_factory=list)
    generator: list[int] = field(default_factory=list)


async def sample_memory(samples: MemorySamples, backend_pid: int | None,
                        interval_s: float) -> None:
    """Sample until cancelled (the run's end cancels it)."""
    began = time.monotonic()
    own = psutil.Process(os.getpid())
    backend = psutil.Process(backend_pid) if backend_pid is not None else None
    while True:
        samples.wall_s.append(time.monotonic() - began)
        samples.generator.append(own.memory_info().rss)
        if backend is not None:
            try:
                samples.backend.append(backend.memory_info().rss)
            except psutil.Error:  # restarted by a fault: the new process is not followed
                backend = None
        await asyncio.sleep(interval_s)


def _trend(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """Theil-Sen slope and its 95 % interval (0s with fewer than 3 points)."""
    if len(x) < 3:
        return 0.0, 0.0, 0.0
    fit = stats.theilslopes(y, x, alpha=0.95)
    return float(fit.slope), float(fit.low_slope), float(fit.high_slope)


def memory_verdict(name: str, wall_s: list[float], rss: list[int], soak: Soak
                   ) -> tuple[tuple[bool, str], dict[str, Any]]:
    """Whether `rss` kept within the bound after the warm-up; the figures."""
    cut = wall_s[-1] * soak.warmup_fraction if wall_s else 0.0
    kept = [(t, r / MIB) for t, r in zip(wall_s, rss, strict=False) if t >= cut]
    x, y = [t for t, _ in kept], [m for _, m in kept]
    slope, low, high = _trend(x, y)
    span = (x[-1] - x[0]) if len(x) > 1 else 0.0
    growth = slope * span
    figures = {"samples": len(rss), "after_warmup": len(kept),
               "first_mib": round(y[0], 1) if y else None,
               "last_mib": round(y[-1], 1) if y else None,
               "max_mib": round(max(y), 1) if y else None,
               "slope_mib_per_min": round(slope * 60, 3),
               "slope_ci95_mib_per_min": [round(low * 60, 3), round(high * 60, 3)],
               "trend_growth_mib": round(growth, 1)}
    held = len(kept) >= 3 and growth <= soak.max_memory_growth_mib
    return (held, f"{name} {growth:+.1f} MiB over {span / 60:.1f} min after warm-up "
                  f"(slope {slope * 60:+.2f} MiB/min, 95 % CI {low * 60:+.2f}.."
                  f"{high * 60:+.2f}; limit {soak.max_memory_growth_mib:g} MiB, "
                  f"{len(kept)} samples)"), figures


def latency_verdict(timeline: Timeline, soak: Soak, speed: float
                    ) -> tuple[tuple[bool, str], dict[str, Any]]:
    """Whether the per-minute median upload latency stayed level after the warm-up."""
    minutes = sorted(m for m, values in timeline.latency_ms.items() if values)
    cut = minutes[-1] * soak.warmup_fraction if minutes else 0
    kept = [m for m in minutes if m >= cut]
    medians = [float(np.median(timeline.latency_ms[m])) for m in kept]
    slope, low, high = _trend([float(m) for m in kept], medians)
    span = (kept[-1] - kept[0]) if len(kept) > 1 else 0
    level = float(np.median(medians)) if medians else 0.0
    growth = slope * span
    bound = soak.max_latency_growth_fraction * level
    figures = {"minutes": len(kept), "median_ms": round(level, 2),
               "slope_ms_per_wall_min": round(slope * speed, 4),
               "slope_ci95_ms_per_wall_min": [round(low * speed, 4), round(high * speed, 4)],
               "trend_growth_ms": round(growth, 2), "bound_ms": round(bound, 2)}
    held = len(kept) >= 3 and growth <= bound
    return (held, f"median upload latency {growth:+.2f} ms over the run after warm-up "
                  f"(level {level:.1f} ms; slope 95 % CI {low * speed:+.3f}..{high * speed:+.3f}"
                  f" ms per wall minute; limit +{bound:.2f} ms, "
                  f"{soak.max_latency_growth_fraction:.0%} of the level)"), figures


def judge_soak(samples: MemorySamples, timeline: Timeline, soak: Soak, speed: float
               ) -> tuple[dict[str, tuple[bool, str]], dict[str, Any]]:
    """The soak's thresholds and its figures for the summary."""
    thresholds: dict[str, tuple[bool, str]] = {}
    figures: dict[str, Any] = {"sample_s": soak.sample_s,
                               "warmup_fraction": soak.warmup_fraction,
                               "wall_s": samples.wall_s}
    processes = [("generator", samples.generator)]
    if samples.backend:
        processes.insert(0, ("backend", samples.backend))
    for name, rss in processes:
        thresholds[f"soak_{name}_memory"], figures[name] = memory_verdict(
            name, samples.wall_s[:len(rss)], rss, soak)
        figures[name]["rss_mib"] = [round(r / MIB, 1) for r in rss]
    thresholds["soak_latency_trend"], figures["latency"] = latency_verdict(
        timeline, soak, speed)
    return thresholds, figures
