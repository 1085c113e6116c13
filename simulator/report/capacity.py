"""`ggsim capacity`'s output: the comparison table on the terminal, the whole result as JSON,
and a self-contained HTML page with plots (growth curves with interval bands and the
review's figures marked; bytes per row by table and fork; the other measurements' plots).

Invariant: it only formats a `CapacityResult`; no number is computed here except unit
conversions for display.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from simulator.capacity.pgsize import TableSize
from simulator.capacity.result import CapacityResult
from simulator.report.capacity_plots import all_plots
from simulator.report.capacity_sections import sections
from simulator.report.units import interval_text


def jsonable(value: Any) -> Any:
    """Dataclasses, dicts, tuples and numbers as JSON-ready values (TableSize with totals)."""
    if isinstance(value, TableSize):
        return {**{f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)},
                "total_bytes": value.total_bytes, "per_row": value.per_row()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "text") and callable(value.text):
            data["text"] = value.text()
        for name in getattr(value, "JSON_PROPERTIES", ()):  # derived figures a reader wants
            data[name] = jsonable(getattr(value, name))
        return data
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, float) and (value != value or math.isinf(value)):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def as_json(result: CapacityResult) -> dict[str, Any]:
    data = {f.name: jsonable(getattr(result, f.name)) for f in dataclasses.fields(result)
            if f.name != "extra"}
    data["extra"] = {k: jsonable(v) for k, v in result.extra.items()}
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
    for section in sections(result.extra):
        console.print(section.table())
    for t in result.thresholds:
        console.print(f"threshold {t.name}: {t.measured:,.0f} against {t.limit:,.0f}: "
                      f"{'held' if t.held else 'BROKEN'}")
    console.print("took " + ", ".join(f"{name} {seconds:.0f} s"
                                      for name, seconds in result.timings_s.items()))


def write_html(result: CapacityResult, path: Path) -> None:
    console = Console(record=True, width=160, file=io.StringIO())
    print_result(result, console)
    tables = console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")
    figures = "".join(f"<figure>{f}</figure>" for f in all_plots(result))
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
    for section in sections(result.extra):
        lines += ["", section.markdown()]
    lines += ["", "Time per measurement: " + ", ".join(
        f"{name} {seconds:.0f} s" for name, seconds in result.timings_s.items()) + "."]
    return "\n".join(lines) + "\n"
