"""`ggsim compare`: several runs side by side, for the people who compare them (a fix
profile against another, one fleet size against the next, a build against the last).

It reads what each run wrote to its report directory: `summary.json` (required) and
`timeline.json` (the per-minute series; runs without it get a table row and no lines).
It prints one table row per run and writes a self-contained HTML page whose plots lay
the runs over each other on the simulated minute: uploads acknowledged per minute,
upload latency p99, batches waiting in upload queues, phones whose pot is not in sync.

Invariant: a run's numbers are its own summary's and timeline's; the only arithmetic
here is summing (anomalies over kinds, acknowledged uploads over outcomes).
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from simulator.errors import UsageError

# (series key, title): the lines drawn for every run that has a timeline
# a batch the server acknowledged, whether or not the phone then saved it
ACKNOWLEDGED = ("saved", "dropped_save")
PLOTS = (("acknowledged", "Uploads acknowledged per minute"),
         ("latency_p99_ms", "Upload latency p99 (client-measured, wall ms)"),
         ("queue_depth", "Batches waiting in phones' upload queues"),
         ("pot_unsynced", "Phones whose daily pot is not in sync"))


@dataclass(frozen=True)
class RunReport:
    """One run's report directory, read."""

    label: str
    summary: dict[str, Any]
    series: dict[str, Any] | None


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None


def load(directory: str | Path) -> RunReport:
    """Read a report directory (as `ggsim run --report DIR` writes it); a clear error if
    it is not one."""
    where = Path(directory)
    if not where.is_dir():
        raise UsageError(f"{where}: no such report directory")
    summary_path = where / "summary.json"
    if not summary_path.is_file():
        raise UsageError(f"{where}: no summary.json (not a ggsim run report directory, "
                         "or its run did not finish)")
    summary = _checked_summary(_read_json(summary_path), summary_path)
    timeline = where / "timeline.json"
    series = _read_json(timeline) if timeline.is_file() else None
    if series is not None and not (isinstance(series, dict)
                                   and isinstance(series.get("minute"), list)):
        raise UsageError(f"{timeline}: no 'minute' list (not a ggsim run timeline)")
    return RunReport(where.name or str(where), summary, series)


_REQUIRED = ("scenario", "passed", "verdict", "performance")
# the objects `rows` reads keys of, where a summary has them
_OBJECTS = (("verdict",), ("performance",), ("fleet",), ("verdict", "anomalies"),
            ("performance", "upload_latency_ms"), ("performance", "dispatch_late_wall_ms"))


def _checked_summary(summary: Any, path: Path) -> dict[str, Any]:
    """`summary` once what `rows` reads of it has its shape: an object with the required
    keys, objects where keys are read, numbers as anomaly counts; else a `UsageError`
    naming `path` and the key."""
    for key in _REQUIRED:
        if not isinstance(summary, dict) or key not in summary:
            raise UsageError(f"{path}: no {key!r} (not a ggsim run summary)")
    for keys in _OBJECTS:
        value: Any = summary
        for key in keys:
            value = value.get(key, {}) if isinstance(value, dict) else value
        if not isinstance(value, dict):
            raise UsageError(f"{path}: {'.'.join(keys)!r} is not an object (not a ggsim "
                             "run summary)")
    counts = summary["verdict"].get("anomalies", {}).values()
    if not all(isinstance(n, int | float) for n in counts):
        raise UsageError(f"{path}: 'verdict.anomalies' holds a count that is not a number")
    checked: dict[str, Any] = summary
    return checked


def _labels(reports: list[RunReport]) -> list[RunReport]:
    """Directory names, with a number added where two are the same."""
    seen: dict[str, int] = {}
    out = []
    for report in reports:
        n = seen[report.label] = seen.get(report.label, 0) + 1
        out.append(report if n == 1 else RunReport(f"{report.label} ({n})", report.summary,
                                                   report.series))
    return out


def rows(reports: list[RunReport]) -> list[dict[str, Any]]:
    """One row per run: what the table and `--json` show."""
    out = []
    for r in reports:
        s, verdict, perf = r.summary, r.summary["verdict"], r.summary["performance"]
        fleet = s.get("fleet", {})
        latency = perf.get("upload_latency_ms", {})
        late = perf.get("dispatch_late_wall_ms", {})
        out.append({
            "run": r.label, "scenario": s["scenario"], "profile": s.get("profile"),
            "schema": s.get("schema"), "seed": s.get("seed"),
            "phones": fleet.get("phones"), "full_phones": fleet.get("full_phones"),
            "speed": perf.get("speed_achieved"), "wall_s": perf.get("wall_s"),
            "generated": verdict.get("generated"),
            "delivered_fraction": verdict.get("delivered_fraction"),
            "anomalies": sum(verdict.get("anomalies", {}).values()),
            "latency_p50_ms": latency.get("p50"), "latency_p99_ms": latency.get("p99"),
            "dispatch_late_p99_wall_ms": late.get("p99"),
            "passed": bool(s["passed"])})
    return out


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    if key == "delivered_fraction":
        return f"{value:.4f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


COLUMNS = (("run", "run"), ("scenario", "scenario"), ("profile", "profile"),
           ("phones", "phones"), ("full_phones", "full"), ("speed", "speed"),
           ("wall_s", "wall s"), ("generated", "generated"),
           ("delivered_fraction", "delivered"), ("anomalies", "anomalies"),
           ("latency_p50_ms", "p50 ms"), ("latency_p99_ms", "p99 ms"),
           ("dispatch_late_p99_wall_ms", "p99 late ms"), ("passed", "verdict"))


def print_table(table_rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Runs compared")
    for key, title in COLUMNS:
        table.add_column(title, justify="left" if key in ("run", "scenario", "profile")
                         else "right")
    for row in table_rows:
        table.add_row(*(_cell(key, row[key]) for key, _ in COLUMNS))
    console.print(table)


def _series(report: RunReport, key: str) -> tuple[list[int], list[float]]:
    """(minutes, values) of one run's series, gaps (minutes without uploads) dropped."""
    assert report.series is not None
    minutes = report.series["minute"]
    if key == "acknowledged":
        outcomes = report.series.get("outcomes", {})
        values = [sum(counts) for counts in zip(
            *(outcomes.get(k, [0] * len(minutes)) for k in ACKNOWLEDGED), strict=True)]
    else:
        values = report.series.get(key, [])
    points = [(m, v) for m, v in zip(minutes, values, strict=False) if v is not None]
    return [m for m, _ in points], [float(v) for _, v in points]


def _legend(label: str) -> str:
    """A directory name as matplotlib shows it: "$" would start mathtext, and a label
    starting with "_" is left out of the legend."""
    label = label.replace("$", r"\$")
    return f" {label}" if label.startswith("_") else label


def _plots(reports: list[RunReport]) -> list[str]:
    import matplotlib.pyplot as plt

    from simulator.report.html import figure, svg

    drawn = [r for r in reports if r.series is not None]
    if not drawn:
        return []
    figures = []
    for key, title in PLOTS:
        fig, ax = figure(title)
        for report in drawn:
            ax.plot(*_series(report, key), label=_legend(report.label), linewidth=1)
        ax.legend(fontsize=7)
        figures.append(svg(fig))
    plt.close("all")
    return figures


def write_html(reports: list[RunReport], table_rows: list[dict[str, Any]],
               path: Path) -> None:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='{_cell(key, row[key]) if key == 'passed' else ''}'>"
            f"{html.escape(_cell(key, row[key]))}</td>" for key, _ in COLUMNS) + "</tr>"
        for row in table_rows)
    missing = [r.label for r in reports if r.series is None]
    note = (f"<p>No timeline.json for {html.escape(', '.join(missing))}: not plotted.</p>"
            if missing else "")
    figures = "".join(f"<figure>{s}</figure>" for s in _plots(reports))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ggsim compare</title>
<style>body{{font-family:sans-serif;max-width:72em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em}}
.PASS{{color:green}}.FAIL{{color:#b00}}figure{{margin:1em 0}}</style></head><body>
<h1>Runs compared</h1>
<table><tr>{head}</tr>{body}</table>{note}
<h2>Over time</h2>{figures}
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def compare(directories: list[str], *, out: str | None = None,
            json_output: bool = False) -> int:
    """`ggsim compare`: the table (or JSON) on stdout, the HTML page at `out`."""
    reports = _labels([load(d) for d in directories])
    table_rows = rows(reports)
    page = Path(out) if out else Path("ggsim-compare.html")
    try:
        write_html(reports, table_rows, page)
    except OSError as exc:
        raise UsageError(f"{page}: {exc.strerror}") from None
    if json_output:
        sys.stdout.write(orjson.dumps({"runs": table_rows, "html": str(page)},
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console = Console()
        print_table(table_rows, console)
        console.print(f"plots: {page}")
    return 0
