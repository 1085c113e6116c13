"""Shared by the fleet tests: a short scenario with overrides."""

from __future__ import annotations

from typing import Any

from simulator.fleet import scenario as sc


def quick(name: str = "t", **changes: Any) -> sc.Scenario:
    base: dict[str, Any] = {"name": name, "seed": 3, "start": "2024-01-08T08:00:00Z",
                            "duration_s": 1800, "speed": 600, "profile": "v3",
                            "fleet": {"phones": 6, "full_phones": 4},
                            "network": {"latency_ms_median": 20, "latency_ms_p99": 100}}
    for key, value in changes.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return sc.from_dict(base)
