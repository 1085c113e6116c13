"""A self-contained HTML report: the summary and the per-minute plots as inline SVG
(matplotlib), no external files or scripts, so it can be attached to a CI run."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from simulator.fleet.result import RunResult
from simulator.fleet.timeline import QUEUED
from simulator.report.summary import as_json


def svg(figure: Any) -> str:
    """A matplotlib figure as inline SVG markup."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def figure(title: str) -> tuple[Any, Any]:
    """A report plot over the simulated minute: (figure, axes), matplotlib on Agg."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("simulated minute")
    ax.grid(alpha=0.3)
    return fig, ax


def queue_note(result: RunResult) -> str | None:
    """Instead of a flat queue plot: what to say when no batch waited at a minute's end."""
    timeline = result.timeline
    if any(timeline.queue_depth.values()):  # the plotted depths (carried forward)
        return None
    queued = sum(counts[k] for counts in timeline.outcomes.values() for k in QUEUED)
    if not queued:
        return "Upload queue: nothing was queued in this run."
    return (f"Upload queue: empty at the end of every simulated minute ({queued:,} "
            "queued in all, each gone within its minute).")


def anomalies_note(result: RunResult) -> str | None:
    """Instead of an empty anomaly plot: what to say when there is no point to draw."""
    verdict = result.verdict
    if not verdict.anomalies:
        return "Anomalies: none in this run."
    if any(ex.at_ms is not None for ex in verdict.examples.values()):
        return None
    return ("Anomalies over time: no example has a simulated time to plot; the table above "
            "lists them.")


def _figure(name: str, fig: Any) -> str:
    return f"<figure id='{name}'>{svg(fig)}</figure>"


def _note(name: str, text: str) -> str:
    return f"<p id='{name}' class='none'>{html.escape(text)}</p>"


def _plots(result: RunResult) -> list[str]:
    """The "Over time" section in order: a figure per plot, or a sentence in place of a
    plot that would show nothing (a flat queue, no anomaly)."""
    import matplotlib.pyplot as plt

    series = result.timeline.series()
    minutes = series["minute"]
    plots = []

    fig, ax = figure("Uploads per minute, by outcome")
    for kind, values in series["outcomes"].items():
        ax.plot(minutes, values, label=kind, linewidth=1)
    ax.legend(fontsize=7)
    plots.append(_figure("uploads", fig))
    fig, ax = figure("Upload latency (client-measured, wall ms)")
    for key, label in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
        points = [(m, v) for m, v in zip(minutes, series[key], strict=True) if v is not None]
        if points:
            ax.plot(*zip(*points, strict=True), label=label, linewidth=1)
    ax.legend(fontsize=7)
    plots.append(_figure("latency", fig))
    if (note := queue_note(result)) is not None:
        plots.append(_note("queue", note))
    else:
        fig, ax = figure("Batches waiting in phones' upload queues")
        ax.plot(minutes, series["queue_depth"], linewidth=1)
        plots.append(_figure("queue", fig))
    fig, ax = figure("Phones whose daily pot is not in sync (pot divergence)")
    ax.plot(minutes, series["pot_unsynced"], linewidth=1)
    plots.append(_figure("pot", fig))
    if (note := anomalies_note(result)) is not None:
        plots.append(_note("anomalies", note))
    else:
        anomalies = [ex.at_ms for ex in result.verdict.examples.values()
                     if ex.at_ms is not None]
        fig, ax = figure("Anomalies over time (first example of each kind)")
        ax.plot([(t - result.timeline.start_ms) / 60_000 for t in anomalies],
                [1] * len(anomalies), "o")
        ax.set_yticks([])
        plots.append(_figure("anomalies", fig))
    plt.close("all")
    return plots


def _trend_band(ax: Any, x: list[float], y: list[float], cut: float, label: str) -> None:
    """Plot `y` over `x` and, from `cut` on, its Theil-Sen trend with the 95 % band of
    the slope (lines through the median point), as `fleet/soak.py` judges it."""
    from scipy import stats

    ax.plot(x, y, linewidth=1, label=label)
    kept = [(a, b) for a, b in zip(x, y, strict=True) if a >= cut]
    if len(kept) < 3:
        return
    kx, ky = [a for a, _ in kept], [b for _, b in kept]
    fit = stats.theilslopes(ky, kx, alpha=0.95)
    x0, y0 = float(np.median(kx)), float(np.median(ky))
    ends = np.array([kx[0], kx[-1]])
    ax.plot(ends, y0 + fit.slope * (ends - x0), linestyle="--", linewidth=1,
            label=f"{label} trend")
    ax.fill_between(ends, y0 + fit.low_slope * (ends - x0), y0 + fit.high_slope * (ends - x0),
                    alpha=0.2)


def _soak_plots(result: RunResult) -> list[str]:
    """A soak's memory and latency, each with its judged trend and 95 % band."""
    import matplotlib.pyplot as plt

    soak = result.soak
    if soak is None:
        return []
    minutes = [t / 60 for t in soak["wall_s"]]
    cut = minutes[-1] * soak["warmup_fraction"] if minutes else 0.0
    fig, ax = figure("Resident memory (MiB) over wall minutes, trend after the warm-up")
    for name in ("backend", "generator"):
        if name in soak:
            rss = soak[name]["rss_mib"]
            _trend_band(ax, minutes[:len(rss)], rss, cut, name)
    ax.legend(fontsize=7)
    plots = [_figure("soak-memory", fig)]
    lat = result.timeline.latency_ms
    kept = sorted(m for m, values in lat.items() if values)
    fig, ax = figure("Median upload latency per simulated minute (ms), trend after the "
                     "warm-up")
    _trend_band(ax, [float(m) for m in kept], [float(np.median(lat[m])) for m in kept],
                kept[-1] * soak["warmup_fraction"] if kept else 0.0, "p50")
    ax.legend(fontsize=7)
    plots.append(_figure("soak-latency", fig))
    plt.close("all")
    return plots


def write(result: RunResult, path: Path) -> None:
    """Write the report to `path`."""
    data = as_json(result)
    verdict = "PASS" if result.passed else "FAIL"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v['measured'])}</td>"
                   f"<td>{'pass' if v['held'] else 'FAIL'}</td></tr>"
                   for k, v in data["thresholds"].items())
    anomalies = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{n}</td><td>"
        f"{html.escape(str(result.verdict.examples[k].detail))}</td></tr>"
        for k, n in sorted(result.verdict.anomalies.items())) or (
        "<tr><td colspan=3>none</td></tr>")
    figures = "".join(_plots(result) + _soak_plots(result))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ggsim run {html.escape(result.scenario.name)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em}}
.PASS{{color:green}}.FAIL{{color:#b00}}figure{{margin:1em 0}}</style></head><body>
<h1>{html.escape(result.scenario.name)}: <span class="{verdict}">{verdict}</span></h1>
<p>seed {result.scenario.seed}, profile {html.escape(result.scenario.profile)}, schema
{html.escape(result.scenario.schema)}; {result.sim_s:,.0f} simulated s in
{result.wall_s:,.1f} wall s.</p>
<h2>Thresholds</h2><table><tr><th>threshold</th><th>measured</th><th></th></tr>{rows}</table>
<h2>Anomalies</h2><table><tr><th>anomaly</th><th>count</th><th>example</th></tr>{anomalies}
</table>
<h2>Over time</h2>{figures}
<h2>Summary (JSON)</h2><pre>{html.escape(orjson.dumps(data, option=orjson.OPT_INDENT_2)
                                           .decode())}</pre>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
