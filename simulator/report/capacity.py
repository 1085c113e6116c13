"""`ggsim capacity`'s output: the comparison table on the terminal, the whole result as JSON,
and a self-contained HTML page with plots (growth curves with interval bands and the
review's figures marked; bytes per row by table and fork; the other measurements' plots).

Invariant: it only formats a `CapacityResult`; no number is computed here except unit
conversions for display.
"""

from __future__ import annotations

import dataclasses
import html
import io
import math
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from simulator.capacity import model
from simulator.capacity.pgsize import TableSize
from simulator.capacity.project import Interval
from simulator.capacity.run import CapacityResult
from simulator.report.html import svg

_SCALE = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))


def human(value: float, unit: str) -> str:
    """1234567 bytes -> '1.23 MB'; 8_640_000 rows -> '8.64M'."""
    if value != value or math.isinf(value):
        return "n/a"
    for prefix, size in _SCALE:
        if abs(value) >= size:
            number = f"{value / size:.3g}{prefix}"
            break
    else:
        number = f"{value:.3g}"
    if unit == "bytes":
        return number.replace("T", " TB").replace("G", " GB").replace("M", " MB").replace(
            "K", " KB") if number[-1] in "TGMK" else f"{number} B"
    return number


def interval_text(value: Interval | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if value.low == value.high:
        return f"{human(value.estimate, unit)} (n={value.samples}, no interval)"
    return f"{human(value.estimate, unit)} [{human(value.low, unit)}, {human(value.high, unit)}]"


def jsonable(value: Any) -> Any:
    """Dataclasses, dicts, tuples and numbers as JSON-ready values (TableSize with totals)."""
    if isinstance(value, TableSize):
        return {**{f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)},
                "total_bytes": value.total_bytes, "per_row": value.per_row()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "text") and callable(value.text):
            data["text"] = value.text()
        return data
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and (value != value or math.isinf(value)):
        return None
    if callable(value):
        return None
    return value


def as_json(result: CapacityResult) -> dict[str, Any]:
    data = {f.name: jsonable(getattr(result, f.name)) for f in dataclasses.fields(result)
            if f.name != "extra"}
    data["extra"] = {k: jsonable(v) for k, v in result.extra.items() if not callable(v)}
    data["passed"] = result.passed
    return data


def comparison_table(result: CapacityResult) -> Table:
    variants = list(result.units)
    table = Table(title="The review's §5 tables against this run's measurements",
                  show_lines=False)
    table.add_column("review cell")
    table.add_column("review")
    for variant in variants:
        table.add_column(f"{variant}: projection [95 % interval]")
        table.add_column("verdict")
    for row in result.comparison:
        cells = [row.cell.key, row.cell.text]
        for compared in row.by_variant:
            cells += [interval_text(compared.projection, row.unit),
                      compared.verdict.text() if compared.verdict else "-"]
        table.add_row(*cells)
    return table


def print_result(result: CapacityResult, console: Console) -> None:
    console.print(comparison_table(result))
    if result.contradictions:
        console.print("[bold]Where the review contradicts itself[/bold]")
        for c in result.contradictions:
            console.print(f"- {c.description}: {c.left_text} = {c.left:,.4g} against "
                          f"{c.right_text} = {c.right:,.4g} ({c.ratio:.3g}x)")
    growth = Table(title="Server storage (all tables but aggregates), projected")
    for column in ("schema", "users", "horizon", "retention", "total [95 % interval]"):
        growth.add_column(column)
    for row in result.growth:
        growth.add_row(row.variant, f"{row.users:,}", row.horizon,
                       "30 days + archive" if row.retention else "none",
                       interval_text(row.total, "bytes"))
    console.print(growth)
    for t in result.thresholds:
        console.print(f"threshold {t.name}: {t.measured:,.0f} against {t.limit:,.0f}: "
                      f"{'held' if t.held else 'BROKEN'}")
    console.print("took " + ", ".join(f"{name} {seconds:.0f} s"
                                      for name, seconds in result.timings_s.items()))


def _axes(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(width, height))


def _svg_closed(fig: Any) -> str:
    import matplotlib.pyplot as plt
    text = svg(fig)
    plt.close(fig)
    return text


def _growth_plot(result: CapacityResult) -> str:
    fig, ax = _axes(8, 4)
    days = [1, 7, 30, 60, 90, 180, 270, 365]
    for variant, unit in result.units.items():
        for users in result.options.users:
            totals = [model.total(model.server_bytes(unit, users, d, retention=False))
                      for d in days]
            line, = ax.plot(days, [t.estimate for t in totals], label=f"{variant}, {users:,}")
            ax.fill_between(days, [t.low for t in totals], [t.high for t in totals],
                            color=line.get_color(), alpha=0.2)
    for row in result.comparison:
        if row.cell.quantity == "sensor_batches_bytes" and row.cell.users == 1000:
            ax.plot([row.cell.days], [row.cell.value], "kx", markersize=9)
            ax.annotate(f"review: {row.cell.text}", (row.cell.days, row.cell.value),
                        fontsize=7, textcoords="offset points", xytext=(4, -10))
    ax.set_yscale("log")
    ax.set_xlabel("days")
    ax.set_ylabel("bytes on the server")
    ax.set_title("Server storage by schema and users (bands: 95 % interval over seeds)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _svg_closed(fig)


def _bytes_per_row_plot(result: CapacityResult) -> str:
    fig, ax = _axes(8, 3.5)
    labels, bottoms = [], []
    for variant, runs in result.storage.items():
        for table, size in runs[-1].bulk.items():
            if size.rows >= 1000:
                labels.append(f"{variant}\n{table}")
                bottoms.append(size.per_row())
    parts = sorted({k for b in bottoms for k in b if k != "total"})
    left = [0.0] * len(labels)
    for part in parts:
        widths = [b.get(part, 0.0) for b in bottoms]
        ax.barh(labels, widths, left=left, label=part)
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.set_xlabel("bytes per row (bulk fleet, after VACUUM)")
    ax.set_title("Bytes per row by table: heap forks, TOAST and each index", fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    ax.tick_params(labelsize=7)
    return _svg_closed(fig)


def write_html(result: CapacityResult, path: Path) -> None:
    console = Console(record=True, width=160, file=io.StringIO())
    print_result(result, console)
    tables = console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")
    figures = "".join(f"<figure>{f}</figure>" for f in (_growth_plot(result),
                                                         _bytes_per_row_plot(result)))
    method = html.escape(
        "Server sizes are PostgreSQL's own accounting (pg_relation_size per fork, the TOAST "
        "relation, every index, partitions summed) after VACUUM (ANALYZE), on uploads the "
        "project generates, stored through the bundled backend's API and by COPY of the "
        "same rows; growth is the slope of size against rows over the bulk days; intervals "
        "are percentile bootstraps over the seeds.")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ggsim capacity</title>
<style>body{{font-family:sans-serif;max-width:75em;margin:2em auto}}</style></head><body>
<h1>ggsim capacity</h1><p>{method}</p>
<p>PostgreSQL {html.escape(result.server.get('version', '?'))};
seeds {len(result.options.seed_list)}; {'quick' if result.options.quick else 'full'} run.</p>
{figures}{tables}
<h2>Result (JSON)</h2><pre>{html.escape(orjson.dumps(as_json(result),
                                                      option=orjson.OPT_INDENT_2).decode())}</pre>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def markdown(result: CapacityResult, command: str, commit: str) -> str:
    """The comparison, contradictions, growth and timings as Markdown (for docs/capacity.md:
    pasted as the command wrote it)."""
    variants = list(result.units)
    lines = [f"Produced by `{command}` on commit {commit}, PostgreSQL "
             f"{result.server.get('version', '?')}, {len(result.options.seed_list)} seeds "
             f"per variant.", "",
             "| review cell | review | " + " | ".join(f"{v} [95 % interval] | verdict"
                                                     for v in variants) + " |",
             "|---|---|" + "---|---|" * len(variants)]
    for row in result.comparison:
        cells = [row.cell.key, row.cell.text]
        for compared in row.by_variant:
            cells += [interval_text(compared.projection, row.unit),
                      compared.verdict.text() if compared.verdict else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Where the review contradicts itself:", ""]
    lines += [f"- {c.description}: {c.left_text} = {c.left:,.4g} against {c.right_text} = "
              f"{c.right:,.4g} ({c.ratio:.3g}x)" for c in result.contradictions]
    lines += ["", "| schema | users | horizon | retention | server bytes [95 % interval] |",
              "|---|---|---|---|---|"]
    lines += [f"| {r.variant} | {r.users:,} | {r.horizon} | "
              f"{'30 days + archive' if r.retention else 'none'} | "
              f"{interval_text(r.total, 'bytes')} |" for r in result.growth]
    lines += ["", "Time per measurement: " + ", ".join(
        f"{name} {seconds:.0f} s" for name, seconds in result.timings_s.items()) + "."]
    return "\n".join(lines) + "\n"
