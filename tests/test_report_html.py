"""The run's HTML report: a plot that would show nothing (no anomaly, nothing queued) is
replaced by a sentence saying so; with something to show, the plot is still drawn."""

from __future__ import annotations

import re
from pathlib import Path

from simulator.checks.ledgers import Example, Verdict
from simulator.fleet import scenario as sc
from simulator.fleet.result import RunResult
from simulator.fleet.timeline import Timeline
from simulator.report import html

NO_ANOMALIES = "Anomalies: none in this run."
NOTHING_QUEUED = "Upload queue: nothing was queued in this run."


def result(*, queued: bool = False, anomaly: bool = False,
           queue_drained_in_minute: bool = False) -> RunResult:
    timeline = Timeline(0)
    for i in range(10):  # ten batches, one a minute, delivered at once
        timeline.outcome(i * 60_000, f"b{i}", "delivered")
        timeline.request(i * 60_000, "/upload", 20.0)
    if queued:  # two batches wait in a queue from minute 3 to minute 6
        for batch in ("q1", "q2"):
            timeline.outcome(3 * 60_000, batch, "queued")
            timeline.outcome(6 * 60_000, batch, "delivered")
    if queue_drained_in_minute:  # queued and sent within minute 4: depth 0 at its end
        timeline.outcome(4 * 60_000 + 1_000, "q3", "queued")
        timeline.outcome(4 * 60_000 + 2_000, "q3", "delivered")
    verdict = Verdict(generated=10)
    verdict.buckets["delivered"] = 10
    if anomaly:
        verdict.add("lost write", Example(phone=2, at_ms=5 * 60_000, detail="row gone"))
    return RunResult(sc.from_dict({"name": "t", "speed": 100}), verdict, timeline, 10, {},
                     1.0, 600.0, 0, {"min_delivered_fraction": (True, "1.0")})


def page(run: RunResult, tmp_path: Path) -> str:
    path = tmp_path / "report.html"
    html.write(run, path)
    return path.read_text(encoding="utf-8")


def figure_ids(text: str) -> set[str]:
    return set(re.findall(r"<figure id='([a-z]+)'><svg", text))


def test_no_anomaly_and_nothing_queued_say_so_instead_of_empty_plots(tmp_path: Path) -> None:
    text = page(result(), tmp_path)
    assert NO_ANOMALIES in text and NOTHING_QUEUED in text
    assert figure_ids(text) == {"uploads", "latency", "pot"}
    assert "Anomalies over time" not in text
    assert "upload queues" not in text


def test_anomalies_and_a_queue_are_still_plotted(tmp_path: Path) -> None:
    text = page(result(queued=True, anomaly=True), tmp_path)
    assert NO_ANOMALIES not in text and NOTHING_QUEUED not in text
    assert "<p id='queue'" not in text and "<p id='anomalies'" not in text
    assert figure_ids(text) == {"uploads", "latency", "queue", "pot", "anomalies"}
    assert "Anomalies over time" in text and "upload queues" in text
    # the sections keep their order: the queue between latency and pot, anomalies last
    order = re.findall(r"<(?:figure|p) id='([a-z]+)'", text)
    assert order == ["uploads", "latency", "queue", "pot", "anomalies"]


def test_a_queue_empty_at_every_minute_end_is_not_called_nothing_queued(
        tmp_path: Path) -> None:
    text = page(result(queue_drained_in_minute=True), tmp_path)
    assert NOTHING_QUEUED not in text
    assert "Upload queue: empty at the end of every simulated minute (1 queued" in text
    assert "queue" not in figure_ids(text)


def test_anomalies_without_a_time_are_pointed_to_the_table(tmp_path: Path) -> None:
    run = result()
    run.verdict.add("overflow", Example(phone=None, at_ms=None, detail="queue full"))
    text = page(run, tmp_path)
    assert NO_ANOMALIES not in text
    assert "no example has a simulated time to plot" in text
    assert "anomalies" not in figure_ids(text)
