"""`ggsim capacity`: usage errors exit 2 naming the option; `--quick` (what CI runs)
measures, compares every review cell, writes JSON and HTML, and exits 1 when a threshold
the user passed is broken."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from simulator.capacity.review import REVIEW_CELLS
from simulator.cli import main


@pytest.mark.parametrize(("args", "message"), [
    (["--users", "1k"], "expected whole numbers separated by commas"),
    (["--horizon", "decade"], "--horizon must be among day, month, 6months, year"),
    (["--seeds", "0"], "--seeds must be between 1 and 50"),
    (["--users", "0"], "--users must be positive"),
    (["--max-bytes-per-user-day", "-5"], "--max-bytes-per-user-day must be positive"),
])
def test_a_bad_option_is_a_usage_error_naming_it(args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    assert main(["capacity", *args, "--report", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_quick_compares_every_review_cell_and_fails_a_broken_threshold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["capacity", "--quick", "--progress", "never", "--report", str(tmp_path),
                   "--max-bytes-per-user-day", "1000", "--users", "1000,10000"])
    assert status == 1  # a user-day stores far more than 1,000 bytes
    result = orjson.loads((tmp_path / "capacity.json").read_bytes())
    assert [row["cell"]["key"] for row in result["comparison"]] == [c.key for c in REVIEW_CELLS]
    assert not result["passed"]
    assert all(not t["held"] and t["measured"] > 1000 for t in result["thresholds"])
    batches = next(r for r in result["comparison"]
                   if r["cell"]["key"] == "5.3 sensor_batches size 1K year")
    for compared in batches["by_variant"]:
        projection = compared["projection"]
        assert projection["low"] <= projection["estimate"] <= projection["high"]
        assert compared["verdict"]["text"]
    assert {row["users"] for row in result["growth"]} == {1000, 10000}
    by_key = {row["cell"]["key"]: row for row in result["comparison"]}
    for measured in ("5.3 aggregates_5m rows 1K month", "5.2 SQLite size 30 days",
                     "5.1 readings 10K users/day"):
        assert by_key[measured]["by_variant"][0]["projection"] is not None, measured
    # quick writes phone files of 7 and 30 days only: a year is not measured, not guessed
    assert by_key["5.2 SQLite size 365 days"]["by_variant"][0]["projection"] is None
    limits = result["extra"]["one_node"]["limits"]
    assert {limit["resource"].split(" ")[0] for limit in limits} >= {"ingest", "aggregation"}
    assert result["extra"]["ramp"]["knee"]["held_rate_per_s"] > 0
    checks = result["extra"]["scale checks"]
    assert {(c["variant"], c["table"]) for c in checks} >= {("as-is", "sensor_batches"),
                                                            ("recommended", "sensor_batches")}
    assert all(c["rows"] > 30_000 and c["verdict"] for c in checks)  # quick: 4 phones x 30 d
    page = (tmp_path / "capacity.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 7 and "5.3 sensor_batches size 1K year" in page
    notes = (tmp_path / "capacity.md").read_text(encoding="utf-8")
    assert "| 5.3 sensor_batches size 1K year | ~50GB |" in notes
    assert "The projection at month scale" in notes
    assert "Open-model ramp" in notes and "Where one node like the measured one ends" in notes
    assert "BROKEN" in capsys.readouterr().out
