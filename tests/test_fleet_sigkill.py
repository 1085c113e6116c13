"""The backend SIGKILLed mid-run (scenario `backend-sigkill`, shortened): the kills land
while requests are in flight, every upload answered 2xx is stored exactly once, what got
no answer is retried, and nothing is stored twice; the three-ledger verdict says so."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from simulator.fleet import scenario as sc
from simulator.run_command import run_scenario


def shortened(schema: str) -> sc.Scenario:
    data = tomllib.loads((sc.scenarios_dir() / "backend-sigkill.toml").read_text())
    data.update(duration_s=1200, schema=schema)
    data["faults"] = {
        "server_errors": [{"at_s": 120, "duration_s": 160, "probability": 1.0,
                           "status": 503}],
        "restarts": [{"at_s": 300, "down_s": 20, "signal": "SIGKILL"},
                     {"at_s": 800, "down_s": 30, "signal": "SIGKILL"}]}
    return sc.from_dict(data)


@pytest.mark.slow
@pytest.mark.parametrize("schema", ["recommended", "as-is"])
def test_nothing_acknowledged_is_lost_when_the_backend_is_killed(
        database_url: str, tmp_path: Path, schema: str) -> None:
    result, _ = run_scenario(shortened(schema), database_url=database_url, report=tmp_path)
    verdict = result.verdict
    assert result.faults["backend_kills"] == 2
    assert result.faults["requests_in_flight_at_kills"] >= 1  # the kills cut requests
    assert "lost acknowledged upload" not in verdict.anomalies, verdict.examples
    assert "missing upload" not in verdict.anomalies, verdict.examples
    # every batch reached the backend: the cut requests were retried
    assert verdict.buckets == {"delivered": verdict.generated}, verdict.buckets
    if schema == "recommended":  # idempotency keys: a retried commit is replayed
        assert result.passed and verdict.anomaly_count == 0, verdict.anomalies
    else:  # no keys (review §4.1): a commit whose 2xx was cut may be stored again
        assert set(verdict.anomalies) <= {"duplicate upload"}, verdict.anomalies
