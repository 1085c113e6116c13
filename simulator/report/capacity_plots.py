"""The plots of `ggsim capacity`'s HTML report (inline SVG, matplotlib on Agg): growth
curves with interval bands and the review's figures marked, bytes per row by table and
fork, the ramp's latency against rate with the knee, layouts, aggregate cells, the phone
file. Invariant: only drawing; every number comes from the result.
"""

from __future__ import annotations

from typing import Any

from simulator.capacity import model
from simulator.capacity.result import CapacityResult
from simulator.report.html import svg


def _axes(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(width, height))


def _distinct_colours(count: int) -> list[Any]:
    """`count` colours no two alike (tab20, then tab20b): parts of one bar must differ."""
    import matplotlib
    palette = [matplotlib.colormaps[name](i / 20) for name in ("tab20", "tab20b")
               for i in range(20)]
    return [palette[i % len(palette)] for i in range(count)]


def _svg_closed(fig: Any) -> str:
    import matplotlib.pyplot as plt
    text = svg(fig)
    plt.close(fig)
    return text


def growth(result: CapacityResult) -> str:
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


def bytes_per_row(result: CapacityResult) -> str:
    fig, ax = _axes(9, 4.5)
    labels, bottoms = [], []
    for variant, runs in result.storage.items():
        for table, size in runs[-1].bulk.items():
            if size.rows >= 1000:
                labels.append(f"{variant}\n{table}")
                bottoms.append(size.per_row())
    parts = sorted({k for b in bottoms for k in b if k != "total"},
                   key=lambda k: (k.startswith("index"), k))
    colours = _distinct_colours(len(parts))
    left = [0.0] * len(labels)
    for part, colour in zip(parts, colours, strict=True):
        widths = [b.get(part, 0.0) for b in bottoms]
        ax.barh(labels, widths, left=left, label=part, color=colour,
                hatch="//" if part.startswith("index") else None, edgecolor="white")
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.set_xlabel("bytes per row (bulk fleet, after VACUUM)")
    ax.set_title("Bytes per row by table: heap forks, TOAST and each index", fontsize=10)
    ax.legend(fontsize=6, ncol=1, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.tick_params(labelsize=7)
    return _svg_closed(fig)


def month_scale(result: CapacityResult) -> str | None:
    months = result.extra.get("month scale")
    if not months:
        return None
    fig, ax = _axes(8, 3.4)
    for month in months:
        unit = result.units.get(month.variant)
        rows = [p.uploads for p in month.growth]
        line, = ax.plot(rows, [p.total_bytes["sensor_batches"] for p in month.growth], "o",
                        markersize=3, label=f"{month.variant}: measured, day by day")
        if unit is not None:
            per_row = unit.bytes_per_row["sensor_batches"]
            ax.plot(rows, [per_row.estimate * r for r in rows], color=line.get_color(),
                    linewidth=1, label=f"{month.variant}: projected from the seeds")
            ax.fill_between(rows, [per_row.low * r for r in rows],
                            [per_row.high * r for r in rows], color=line.get_color(),
                            alpha=0.2)
    ax.set_xlabel("sensor_batches rows")
    ax.set_ylabel("bytes (all forks, TOAST, indexes)")
    ax.set_title("A month by COPY against the projection (band: 95 % interval)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _svg_closed(fig)


def ramp(result: CapacityResult) -> str | None:
    ramp_result = result.extra.get("ramp")
    if ramp_result is None:
        return None
    fig, ax = _axes(8, 3.2)
    steps = sorted(ramp_result.steps, key=lambda step: step.offered_rate_per_s)
    rates = [s.offered_rate_per_s for s in steps]
    for key, label in (("latency_ms_p50", "p50"), ("latency_ms_p99", "p99")):
        ax.plot(rates, [getattr(s, key) for s in steps], "o-", label=label)
    knee = ramp_result.knee
    if knee.broke_rate_per_s is not None:
        ax.axvline(knee.broke_rate_per_s, color="#b00", linestyle="--",
                   label=f"broke at {knee.broke_rate_per_s:,.0f}/s")
    if knee.held_rate_per_s is not None:
        ax.axvline(knee.held_rate_per_s, color="green", linestyle=":",
                   label=f"held at {knee.held_rate_per_s:,.0f}/s")
    ax.axhline(ramp_result.thresholds.latency_ms_p99_max, color="grey", linewidth=0.8,
               label="SLO p99")
    ax.axvline(ramp_result.ten_k_users_average_per_s, color="black", linewidth=0.8,
               label="10K users' average")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered uploads/s (open model)")
    ax.set_ylabel("latency ms")
    ax.set_title("Ramp: latency against offered rate, knee marked", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _svg_closed(fig)


def layouts(result: CapacityResult) -> str | None:
    report = result.extra.get("layouts")
    if report is None:
        return None
    measured = [r for r in report.layouts if r.measured]
    fig, ax = _axes(8, 2.6)
    ax.barh([r.layout for r in measured], [r.bytes_per_user_day for r in measured])
    for i, r in enumerate(measured):
        ax.annotate(f"{r.ingest_batches_per_s:,.0f} batches/s", (r.bytes_per_user_day, i),
                    fontsize=7, xytext=(3, -3), textcoords="offset points")
    ax.set_xlabel("bytes per user-day")
    ax.set_title("Storage layouts: bytes per user-day (and COPY ingest rate)", fontsize=10)
    return _svg_closed(fig)


def aggregate_cells(result: CapacityResult) -> str | None:
    report = result.extra.get("aggregates")
    if report is None:
        return None
    fig, ax = _axes(8, 3.2)
    phones = [r.phones for r in report.table]
    ax.plot(phones, [r.cells_per_window_mean for r in report.table], "o-",
            label="cells per 5-min window")
    ax.plot(phones, [r.cells_per_day for r in report.table], "s-", label="cells per day")
    ax.axhline(3, color="grey", linestyle="--", label="review: 3 per window")
    ax.axhline(30, color="black", linestyle=":", label="review: 30 per day")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("phones")
    ax.set_title("Aggregate cells grow with the fleet (measured)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _svg_closed(fig)


def phone_file(result: CapacityResult) -> str | None:
    reports = result.extra.get("phone")
    if not reports:
        return None
    fig, ax = _axes(8, 3.2)
    lines: dict[str, list[tuple[int, int]]] = {}
    for point in reports[0].growth:
        v = point.variant
        lines.setdefault(f"v{v.schema_version} {v.maintenance} {v.auto_vacuum}", []).append(
            (point.days, point.file_bytes))
    for label, points in lines.items():
        ax.plot(*zip(*sorted(points), strict=True), "o-", label=label, linewidth=1)
    for row in result.comparison:
        if row.cell.quantity == "phone_file_bytes":
            ax.plot([row.cell.days], [row.cell.value], "kx", markersize=8)
    ax.set_xlabel("days of use")
    ax.set_ylabel("file bytes")
    ax.set_title("The phone's SQLite file (x: review §5.2)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return _svg_closed(fig)


def all_plots(result: CapacityResult) -> list[str]:
    made = [growth(result), bytes_per_row(result), month_scale(result), ramp(result),
            layouts(result), aggregate_cells(result), phone_file(result)]
    return [svg_text for svg_text in made if svg_text is not None]
