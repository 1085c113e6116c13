"""`ggsim compare`: real runs' report directories side by side, and clear errors for
directories that are not ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fleet_helpers import quick

from simulator.cli import main
from simulator.errors import UsageError
from simulator.report.compare import load, rows
from simulator.run_command import run_scenario


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A clean run and a lossy one whose (impossible) latency threshold fails."""
    root = tmp_path_factory.mktemp("runs")
    clean = root / "clean"
    lossy = root / "lossy"
    run_scenario(quick(), report=clean)
    run_scenario(quick(network={"loss_probability": 0.3},
                       thresholds={"p99_upload_latency_ms": 0.001}), report=lossy)
    return [clean, lossy]


def test_each_row_is_what_its_runs_summary_says(two_runs: list[Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "compare.html"
    assert main(["compare", *map(str, two_runs), "--out", str(page), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["html"] == str(page)
    for row, directory in zip(shown["runs"], two_runs, strict=True):
        summary = json.loads((directory / "summary.json").read_text())
        assert row["run"] == directory.name
        assert (row["phones"], row["full_phones"]) == (6, 4)
        assert row["generated"] == summary["verdict"]["generated"] == 36
        assert row["delivered_fraction"] == summary["verdict"]["delivered_fraction"]
        assert row["latency_p99_ms"] == summary["performance"]["upload_latency_ms"]["p99"]
        assert row["passed"] is summary["passed"]
    assert [r["passed"] for r in shown["runs"]] == [True, False]
    text = page.read_text()
    assert text.count("<svg") == 4  # one figure per series, both runs in each
    assert "clean" in text and "lossy" in text and "FAIL" in text


def test_the_plotted_series_come_from_each_runs_timeline(two_runs: list[Path]) -> None:
    from simulator.report.compare import _series

    clean = load(two_runs[0])
    minutes, acknowledged = _series(clean, "acknowledged")
    assert sum(acknowledged) == 36  # every batch of the clean run, in the minute it landed
    assert minutes == sorted(minutes)


def test_a_run_without_a_timeline_is_listed_not_plotted(two_runs: list[Path],
                                                        tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(two_runs[0], old)
    (old / "timeline.json").unlink()
    page = tmp_path / "page.html"
    assert main(["compare", str(old), str(two_runs[1]), "--out", str(page)]) == 0
    assert "No timeline.json for old" in page.read_text()
    assert [r["run"] for r in rows([load(old)])] == ["old"]


def test_directory_names_are_shown_as_they_are_in_the_legend() -> None:
    from simulator.report.compare import _legend

    assert _legend("run-$1") == r"run-\$1"  # not mathtext
    assert _legend("_nightly") == " _nightly"  # not dropped from the legend


def test_the_same_directory_twice_gets_two_labels(two_runs: list[Path]) -> None:
    from simulator.report.compare import _labels

    labels = [r.label for r in _labels([load(two_runs[0]), load(two_runs[0])])]
    assert labels == ["clean", "clean (2)"]


@pytest.mark.parametrize(("files", "expected"), [
    ({}, "no summary.json"),
    ({"summary.json": b"{not json"}, "summary.json: not JSON"),
    ({"summary.json": b'{"scenario": "x"}'}, "no 'passed'"),
    ({"summary.json": b"[1, 2]"}, "no 'scenario'"),
])
def test_what_is_not_a_report_directory_is_named(tmp_path: Path, files: dict[str, bytes],
                                                 expected: str) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(UsageError, match=expected) as caught:
        load(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_a_bad_timeline_is_named(two_runs: list[Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(two_runs[0], broken)
    (broken / "timeline.json").write_bytes(b'{"minutes": []}')
    assert main(["compare", str(broken), "--out", str(tmp_path / "p.html")]) == 2
    assert "timeline.json: no 'minute'" in capsys.readouterr().err
