"""Thresholds of a run, including the check that the load generator kept its schedule."""

from __future__ import annotations

from simulator.checks.ledgers import Verdict
from simulator.fleet import scenario as sc
from simulator.fleet.result import RunResult, judge
from simulator.fleet.timeline import Timeline


def result(late_sim_ms: int, latency_ms: float, delivered: int = 10) -> RunResult:
    scenario = sc.from_dict({"name": "t", "speed": 100})
    timeline = Timeline(0)
    for i in range(100):
        timeline.dispatched(i * 1000, late_sim_ms)
        timeline.request(i * 1000, "/upload", latency_ms)
    verdict = Verdict(generated=10)
    verdict.buckets["delivered"] = delivered
    return RunResult(scenario, verdict, timeline, 100, {}, 1.0, 1.0, 0, {})


def test_a_punctual_generator_and_a_fast_server_pass() -> None:
    held = judge(result(late_sim_ms=10_000, latency_ms=20.0))  # 0.1 s late at 100x
    assert all(ok for ok, _ in held.values()), held


def test_a_saturated_generator_is_named_not_blamed_on_the_server() -> None:
    held = judge(result(late_sim_ms=500_000, latency_ms=20.0))  # 5 s late (wall) at 100x
    assert held["load_generator_keeps_up"][0] is False
    assert "5000 ms late" in held["load_generator_keeps_up"][1]
    assert held["p99_upload_latency_ms"][0] is True


def test_slow_uploads_and_undelivered_batches_fail_their_thresholds() -> None:
    held = judge(result(late_sim_ms=0, latency_ms=5_000.0, delivered=5))
    assert held["p99_upload_latency_ms"][0] is False
    assert held["min_delivered_fraction"][0] is False
