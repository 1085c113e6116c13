"""A phone whose app file is full or read-only (the `storage` fault), in a fleet run on
the real stack: the app behaves as the platform does (Kotlin's `insert()` returns -1, a
Flutter operation raises and is abandoned), and the run reports what it cost instead of
failing: the uploads that failed while the file took no queue entry are lost, named in
the verdict; the run has no runner error; uploads after the window are delivered."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleet_helpers import quick

from simulator.checks.ledgers import STORAGE_LOSS
from simulator.run_command import run_scenario

WINDOW = {"at_s": 300, "duration_s": 900}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["read_only", "full"])
def test_a_file_that_cannot_be_written_is_reported_not_a_crash(
        database_url: str, tmp_path: Path, kind: str) -> None:
    # the backend fails every upload in the window, so the phones must queue them
    scenario = quick(faults={"storage": [{**WINDOW, "kind": kind}],
                             "server_errors": [{**WINDOW, "probability": 1.0, "status": 503}]},
                     thresholds={"min_delivered_fraction": 0.1})
    result, _ = run_scenario(scenario, database_url=database_url, report=tmp_path)
    verdict = result.verdict
    assert "runner error" not in verdict.anomalies, verdict.examples
    lost = verdict.buckets["dropped_queue"]
    assert lost > 0 and verdict.anomalies[STORAGE_LOSS] == lost
    assert not result.passed  # a loss is an anomaly: the run says so
    # the rest: delivered before and after the window, nothing else lost
    assert verdict.buckets["delivered"] + lost == verdict.generated, verdict.buckets
    if kind == "read_only":  # Flutter's writes (the pot cache, sessions) raise too
        assert result.faults["storage_errors"] > 0


def test_without_the_fault_nothing_is_lost_to_storage(database_url: str,
                                                      tmp_path: Path) -> None:
    scenario = quick(faults={"server_errors": [{**WINDOW, "probability": 1.0,
                                                "status": 503}]})
    result, _ = run_scenario(scenario, database_url=database_url, report=tmp_path)
    assert STORAGE_LOSS not in result.verdict.anomalies
    assert result.faults["storage_errors"] == 0 and result.passed, result.verdict.anomalies
