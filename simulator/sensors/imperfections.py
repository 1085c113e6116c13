"""How real phone streams are imperfect; each with a rate and a small realistic default.

Fault model (all drawn from the phone's own sample stream, so changing a rate changes
which readings are affected and nothing else):
- missing: a sensor event is not delivered in time and the tick has no reading;
- stuck: the sensor stops updating for a tick and the previous light and pressure
  values repeat;
- NaN: a driver glitch yields NaN (written as JSON null) for light or a gyro axis;
- duplicate: a reading is recorded twice (a timer firing twice);
- out of order: a reading is stored after its successor (two threads appending);
- timestamp jitter: Handler/AlarmManager delivery jitter, Gaussian (ms);
- app kills: the OS kills the foreground service (Poisson events per day, log-normal
  downtime); the batch being collected is lost with it, and sampling resumes on the
  same 5-minute grid (AlarmManager schedules are absolute).
Clock skew is a per-phone trait (`simulator.sensors.traits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from simulator.errors import UsageError


@dataclass(frozen=True)
class Imperfections:
    """Rates of each imperfection; `Imperfections.none()` gives a perfect stream."""

    missing_probability: float = 0.002
    stuck_probability: float = 0.001
    nan_probability: float = 0.0001
    duplicate_probability: float = 0.0005
    reorder_probability: float = 0.0005
    jitter_ms: float = 50.0
    kills_per_day: float = 0.1
    kill_median_min: float = 20.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise UsageError(f"imperfection {f.name} must be a finite number >= 0, "
                                 f"got {value!r}")
            if f.name.endswith("_probability") and value > 0.5:
                raise UsageError(f"imperfection {f.name} must be at most 0.5, got {value}")
        if self.kills_per_day > 48:
            raise UsageError(f"imperfection kills_per_day must be at most 48 (one each half "
                             f"hour), got {self.kills_per_day}")
        if self.kill_median_min > 1440:
            raise UsageError(f"imperfection kill_median_min must be at most 1440 (a day), "
                             f"got {self.kill_median_min}")

    def with_settings(self, settings: list[str]) -> Imperfections:
        """A copy with `NAME=VALUE` settings applied; unknown names are a `UsageError`."""
        known = {f.name for f in fields(self)}
        changes: dict[str, float] = {}
        for setting in settings:
            name, sep, value = setting.partition("=")
            if not sep or name not in known:
                raise UsageError(f"--imperfection {setting!r}: expected NAME=VALUE with NAME "
                                 f"one of {', '.join(sorted(known))}")
            try:
                changes[name] = float(value)
            except ValueError:
                raise UsageError(f"--imperfection {setting!r}: {value!r} is not a number"
                                 ) from None
        return replace(self, **changes)

    @classmethod
    def none(cls) -> Imperfections:
        """No imperfections at all (durations keep their defaults: only rates are zero)."""
        return cls(**{f.name: 0.0 for f in fields(cls) if not f.name.endswith("_min")})
