"""Load shapes for locust (`LoadTestShape`), each with a locustfile of its own under
`loadtests/`. This module and `user.py` are the only ones that import locust.

- `RampToBreak` (`loadtests/ramp_to_break.py`): more phones each step until a step
  breaks by `ggsim capacity`'s definition (`ramp.step_result`, `capacity.slo.find_knee`);
  the run then stops by itself and its summary has every step and the knee.
- `BoundaryBurst` (`loadtests/boundary_burst.py`): phones all started at once, on the
  5-minute boundaries or at their own phases.
- `Diurnal` (`loadtests/diurnal.py`): a fleet's simulated day, the phones online
  following the persona mix's awake share (`diurnal.DiurnalCurve`); each simulated hour's
  planned and running users and its uploads are in `hours`.

Invariant: a shape only reads locust's statistics and the run's settings; it stops the
run (tick returns None) when the ramp broke or ran out of steps.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape

from simulator.capacity.slo import Knee, StepResult, find_knee
from simulator.instants import HOUR_MS, parse_instant
from simulator.loadtest.diurnal import DiurnalCurve, DiurnalHour
from simulator.loadtest.ramp import Snapshot, classify, step_result


def snapshot(runner: Any, at_s: float) -> Snapshot:
    """Locust's cumulative `/upload` statistics now."""
    entry = runner.stats.get("/upload", "POST")
    kinds = {"4xx": 0, "5xx": 0, "timeout": 0, "connection": 0}
    for error in runner.stats.errors.values():
        if error.name == "/upload":
            kinds[classify(str(error.error))] += int(error.occurrences)
    return Snapshot(at_s, int(entry.num_requests),
                    int(entry.num_requests) - int(entry.num_failures), kinds["4xx"],
                    kinds["5xx"], kinds["timeout"], kinds["connection"],
                    dict(entry.response_times))


class RampToBreak(LoadTestShape):
    """See the module docstring; its steps and knee are in `steps` and `knee`."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[StepResult] = []
        self.knee: Knee | None = None
        self._step = -1
        self._before: Snapshot | None = None

    def tick(self) -> tuple[int, float] | None:
        from simulator.loadtest.user import STATE  # the run's settings, set at test start

        chosen = STATE.settings
        if chosen is None or self.runner is None:
            return None
        plan, now = chosen.ramp, self.get_run_time()
        step = plan.step_at(now)
        if step != self._step:  # the last step is over: judge it
            if self._before is not None:
                self.steps.append(step_result(self._before, snapshot(self.runner, now),
                                              plan.users(self._step),
                                              chosen.scenario.speed))
                self.knee = find_knee(self.steps, chosen.slo)
                if self.knee.broke_rate_per_s is not None:
                    return None
            self._step, self._before = step, None
        if step >= plan.max_steps:
            return None
        if self._before is None and now - step * plan.step_s >= plan.settle_s:
            self._before = snapshot(self.runner, now)
        return plan.users(step), float(max(plan.step_users, plan.first_users))


class BoundaryBurst(LoadTestShape):
    """`--burst-users` phones started at once and run for `--burst-s` seconds; with
    `--boundary aligned` they all send on the 5-minute boundaries (a thundering herd),
    by default at their own phases. Run both and lay the summaries side by side."""

    def tick(self) -> tuple[int, float] | None:
        from simulator.loadtest.user import STATE

        chosen = STATE.settings
        if chosen is None or self.get_run_time() >= chosen.burst_s:
            return None
        return chosen.burst_users, float(chosen.burst_users)


class Diurnal(LoadTestShape):
    """`--diurnal-phones` phones over `--diurnal-hours` simulated hours from the scenario's
    start (compressed by `--speed`), as many online as the curve says at each simulated
    minute; phones join at up to the whole fleet a simulated hour. Stops at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.hours: list[DiurnalHour] = []
        self._curve: DiurnalCurve | None = None
        self._start_ms = 0
        self._hour = -1
        self._uploads_before = 0

    def tick(self) -> tuple[int, float] | None:
        from simulator.loadtest.user import STATE

        chosen = STATE.settings
        if chosen is None or self.runner is None:
            return None
        plan = chosen.diurnal
        if self._curve is None:
            self._curve = plan.curve()
            self._start_ms = parse_instant(chosen.scenario.start)
        speed = chosen.scenario.speed
        elapsed_ms = int(self.get_run_time() * speed * 1000)
        hour = elapsed_ms // HOUR_MS
        uploads = int(self.runner.stats.get("/upload", "POST").num_requests)
        if hour != self._hour:  # the last simulated hour is over: record it
            if self.hours:
                self.hours[-1] = self.hours[-1].ended(int(self.runner.user_count),
                                                      uploads - self._uploads_before)
            self._hour, self._uploads_before = hour, uploads
            if hour < plan.hours:
                self.hours.append(DiurnalHour(hour, self._curve.users(
                    plan.phones, self._start_ms + hour * HOUR_MS)))
        if hour >= plan.hours:
            return None
        return self._curve.users(plan.phones, self._start_ms + elapsed_ms), \
            plan.spawn_rate(speed)
