"""Hard faults in a fleet run, each scenario shortened: the backend SIGKILLed
(`backend-sigkill`: the kills land while requests are in flight, every upload answered
2xx is stored exactly once, what got no answer is retried, nothing is stored twice) and
PostgreSQL shut down in immediate mode (`database-restart`: 503s, then everything
delivered); the three-ledger verdict says so."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import UsageError
from simulator.fleet import scenario as sc
from simulator.run_command import run_scenario


def shipped(name: str) -> dict[str, Any]:
    return tomllib.loads((sc.scenarios_dir() / f"{name}.toml").read_text())


def shortened(schema: str) -> sc.Scenario:
    data = shipped("backend-sigkill")
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


@pytest.mark.slow
def test_a_database_restart_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = shipped("database-restart")
    data.update(duration_s=900, fleet={"phones": 100, "full_phones": 10})
    data["faults"] = {"database_restarts": [{"at_s": 300, "down_s": 120}]}
    # no database_url: the fault restarts the embedded PostgreSQL the run starts
    result, _ = run_scenario(sc.from_dict(data), report=tmp_path)
    verdict = result.verdict
    assert result.faults["database_restarts"] == 1
    assert result.passed and verdict.anomaly_count == 0, verdict.anomalies
    assert verdict.buckets == {"delivered": verdict.generated}, verdict.buckets


def test_a_database_restart_needs_the_embedded_database(database_url: str,
                                                        tmp_path: Path) -> None:
    data = shipped("database-restart")
    data.update(duration_s=60)
    with pytest.raises(UsageError, match="embedded PostgreSQL"):
        run_scenario(sc.from_dict(data), database_url=database_url, report=tmp_path)
