"""The other measurements of `ggsim capacity` as titled tables (`Section`), rendered once to
the terminal (rich) and to Markdown, so the two never say different things.

Invariant: only formatting; every number comes from the measurement's own result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table

from simulator.report.units import human


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""

    def table(self) -> Table:
        table = Table(title=self.title, caption=self.note or None)
        for header in self.headers:
            table.add_column(header)
        for row in self.rows:
            table.add_row(*row)
        return table

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + (f"\n\n{self.note}\n" if self.note else "\n")


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def scale_checks(checks: list[Any]) -> Section:
    def span(value: Any) -> str:
        return (f"{human(value.estimate, 'bytes')} [{human(value.low, 'bytes')}, "
                f"{human(value.high, 'bytes')}]")
    rows = tuple((c.variant, c.table, f"{c.rows:,}", human(c.measured_bytes, "bytes"),
                  span(c.from_early_days), c.verdict,
                  f"{span(c.from_seeds)}: {c.ratio_to_seeds:.3g}x",
                  f"{c.month_bytes_per_row.estimate:,.0f} [{c.month_bytes_per_row.low:,.0f}, "
                  f"{c.month_bytes_per_row.high:,.0f}]", f"{c.month_r_squared:.5f}")
                 for c in checks)
    early = checks[0].early_days if checks else 0
    return Section("The projection at month scale: a month of one fleet by COPY", (
        "schema", "table", "rows", "measured", f"its first {early} days extrapolated [95 %]",
        "verdict", "the seeds' bytes per row x rows: measured /", "month's bytes per row "
        "[95 %]", "r²"), rows,
        "verdict: the month's own first days (the same phones) extrapolated to its rows, so "
        "only scale differs; the seeds' projection is other phones, so its ratio also holds "
        "fleet composition; the month's slope is fitted to all its daily sizes")


def month_copy(months: list[Any]) -> Section:
    rows = []
    for m in months:
        days = len(m.copy_s)
        rows.append((m.variant, f"{m.sample.phones} x {days} days", f"{m.rows:,}",
                     *(f"{m.copy_rows_per_s(d):,.0f}" for d in (0, days // 2, days - 1)),
                     f"{m.seconds:,.0f}"))
    return Section("COPY as the month's tables grow (rows a second, per-upload tables)", (
        "schema", "fleet", "rows", "day 1", "mid-month", "last day", "took s"), tuple(rows),
        "one seed; generation, VACUUM and sizing are outside the COPY times")


def layouts(report: Any) -> Section:
    rows = []
    for r in report.layouts:
        if not r.measured:
            rows.append((r.layout, "not measured", r.not_measured_reason or "", "", ""))
            continue
        rows.append((r.layout, human(r.bytes_per_batch, "bytes"),
                     human(r.bytes_per_user_day, "bytes"),
                     f"{human(r.heap_bytes, 'bytes')} / {human(r.toast_bytes, 'bytes')} / "
                     f"{human(sum(r.index_bytes.values()), 'bytes')}",
                     f"{r.ingest_batches_per_s:,.0f}"))
    return Section("Storage layouts (§4.2), the same batches", (
        "layout", "per batch", "per user-day", "heap / TOAST / indexes", "COPY batches/s"),
        tuple(rows), f"{report.batches:,} batches; each layout with a primary key and "
        "(device, time) and (time) indexes only, so jsonb_pglz here is smaller than the "
        "real sensor_batches; ingest: median of the repeats, same server, same run.")


def payload_drivers(report: Any) -> Section:
    rows = tuple((v.number_format, "yes" if v.barometer else "no", str(v.readings_per_batch),
                  f"{v.payload_bytes_mean:,.0f}", f"{v.stored_bytes_mean:,.0f}",
                  f"{v.payload_bytes_mean / v.stored_bytes_mean:.2f}",
                  f"{v.table_bytes_per_row:,.0f}") for v in report.sizes)
    return Section("What drives the payload: JSON bytes and what PostgreSQL stores", (
        "numbers", "barometer", "readings", "JSON bytes", "stored (pg_column_size)",
        "ratio", "table bytes per row"), rows,
        f"{report.phones} phones x {report.hours:g} h, seed {report.seed}; TOAST "
        f"compression {report.toast_compression}; table bytes: heap, TOAST and no index")


def aggregate_cells(report: Any) -> Section:
    rows = tuple((f"{r.phones:,}", f"{r.cells_per_window_mean:,.1f}", f"{r.cells_per_day:,.0f}",
                  human(r.rows_5m_per_30_day_month, "rows"),
                  human(r.rows_daily_per_30_day_month, "rows")) for r in report.table)
    return Section("Aggregate cells touched by generated fleets", (
        "phones", "cells per 5-min window", "cells per day", "5m rows a month",
        "daily rows a month"), rows, "the review's 26K and 900 rows a month mean 3 cells per "
        "window and 30 a day")


def phone_growth(reports: list[Any]) -> Section:
    first = reports[0]
    rows = tuple((f"v{p.variant.schema_version}", p.variant.maintenance,
                  p.variant.auto_vacuum, str(p.days), f"{p.contributions_rows:,}",
                  human(p.file_bytes, "bytes"), f"{p.bytes_per_contribution_row:,.0f}")
                 for p in first.growth)
    return Section("The phone's SQLite file", ("schema", "maintenance", "auto-vacuum", "days",
                                                "contributions", "file", "bytes per row"),
                   rows, f"seed {first.seed}; sizes of the other seeds are in the JSON")


def phone_outages(reports: list[Any]) -> Section:
    rows = tuple((f"v{o.variant.schema_version}", f"cap {o.variant.queue_cap_entries}"
                  if o.variant.queue_cap_entries else "no cap", o.variant.maintenance,
                  str(o.days_offline), f"{o.queue_rows:,}",
                  f"{o.lost_uploads:,}", human(o.lost_bytes, "bytes"),
                  human(o.file_bytes, "bytes")) for o in reports[0].outages)
    return Section("The upload queue during an outage (review C2, §5.5)", (
        "schema", "queue", "maintenance", "days offline", "queued", "lost for good", "lost bytes",
        "file"), rows)


def ramp(result: Any) -> Section:
    rows = tuple((f"{s.offered_rate_per_s:,.0f}", f"{s.achieved_send_rate_per_s:,.0f}",
                  f"{s.completed_per_s:,.0f}", _ms(s.latency_ms_p50), _ms(s.latency_ms_p99),
                  str(s.errors_5xx + s.errors_timeout + s.errors_connection),
                  "held" if v.held else f"broke: {v.cause.value if v.cause else ''}")
                 for s, v in zip(result.steps, result.knee.verdicts, strict=True))
    return Section("Open-model ramp: uploads/s against the backend", (
        "offered/s", "sent/s", "answered/s", "p50 ms", "p99 ms", "errors", "SLO"), rows,
        result.knee.summary)


def burst(result: Any) -> Section:
    rows = tuple((o.label, f"{o.uploads:,}", f"{o.clear_s:,.1f}", _ms(o.latency_ms_p99),
                  str(o.errors)) for o in (result.aligned, result.jittered))
    return Section(f"One 5-minute window of {result.phones:,} phones", (
        "schedule", "uploads", "cleared in s", "p99 ms", "errors"), rows, result.jitter_source)


def aggregation_job(result: Any) -> Section:
    rows = tuple((f"{r.users:,}", f"{r.behind_min:g}", f"{r.table_rows:,}", f"{r.new_rows:,}",
                  f"{sorted(r.run_s)[len(r.run_s) // 2]:.3f}") for r in result.rows)
    fits = "; ".join(
        f"{f.model}, table holding {f.table}: a run takes a minute at "
        + (f"{f.users_at_minute:,.0f} users [{f.users_at_minute_low or 0:,.0f}, "
           f"{f.users_at_minute_high or 0:,.0f}]" if f.users_at_minute else "no fleet size")
        + (" (extrapolated)" if f.extrapolated else "") for f in result.fits)
    return Section("The aggregation job (§4.3, every minute): one run", (
        "users", "minutes behind", "table rows", "new rows", "median s"), rows, fits)


def pot_reads(result: Any) -> Section:
    rows = tuple((f"{r.users:,}", f"{r.daily_pots_rows:,}", _ms(r.step.latency_ms_p50),
                  _ms(r.step.latency_ms_p99), str(r.step.errors_5xx)) for r in result.rows)
    return Section("Pot reads (GET /daily-pot)", ("users", "daily_pots rows", "p50 ms",
                                                   "p99 ms", "5xx"), rows)


def phone_queries(report: Any) -> Section:
    rows = tuple((r.query, r.variant, str(r.days), f"{r.contributions_rows:,}",
                  f"{r.latency_us_median:,.0f}",
                  ", ".join([*(f"scan {t}" for t in r.plan.scanned),
                             *(f"walk {i}" for i in r.plan.index_walks),
                             *(f"search {i}" for i in r.plan.searched)]) or "-")
                 for r in report.phone.rows)
    return Section("Appendix B's slow queries on the phone's file", (
        "query", "file", "days", "contributions", "median us", "plan"), rows,
        f"SQLite {report.phone.sqlite_version}; the app never runs ANALYZE")


def backend_queries(report: Any) -> Section:
    rows = []
    for tiles in report.tiles:
        load = tiles.load
        for q in tiles.queries:
            rows.append((f"{load.users:,}", f"{load.loaded_rows_5m:,}"
                         + (" (capped)" if load.capped else ""), q.query,
                         _ms(q.latency_ms_median), _ms(q.latency_ms_p99),
                         ", ".join(q.plan.indexes) or "seq scan",
                         "yes" if q.answers_match else "NO"))
    user = report.user_coverage
    q = user.query
    rows.append((f"{user.users + user.background_users:,}", f"{user.table_rows:,} batches",
                 q.query, _ms(q.latency_ms_median), _ms(q.latency_ms_p99),
                 ", ".join(q.plan.indexes) or "seq scan", "yes" if q.answers_match else "NO"))
    return Section("Tile coverage on the backend at 1K/10K/100K users' aggregate volumes", (
        "users", "rows loaded", "query", "median ms", "p99 ms", "indexes", "answer checked"),
        tuple(rows), " ".join(report.notes))


def one_node(node: Any) -> Section:
    rows = tuple((limit.resource,
                  f"{limit.users:,.0f}" if limit.users is not None else "not known",
                  f"[{limit.users_low:,.0f}, {limit.users_high:,.0f}]"
                  if limit.users_low is not None and limit.users_high is not None else "",
                  limit.how) for limit in node.limits)
    first = node.first
    return Section("Where one node like the measured one ends", (
        "resource", "users", "95 % interval", "from"), rows,
        f"first to run out: {first.resource}" if first else "")


def sections(extra: dict[str, Any]) -> list[Section]:
    """Every section whose measurement is in `extra`, in reading order."""
    makers = (("scale checks", scale_checks), ("month scale", month_copy),
              ("payload drivers", payload_drivers), ("layouts", layouts),
              ("aggregates", aggregate_cells), ("phone", phone_growth),
              ("phone", phone_outages), ("ramp", ramp), ("burst", burst),
              ("aggregation job", aggregation_job), ("pot reads", pot_reads),
              ("queries", phone_queries), ("queries", backend_queries),
              ("one_node", one_node))
    return [make(extra[key]) for key, make in makers if extra.get(key) is not None]
