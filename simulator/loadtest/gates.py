"""Pass or fail for a load test, from locust's statistics and the reconciled verdict: the
gates CI sets the process exit code by.

Gates are data: each is a limit or None (not judged). Latency percentiles are locust's
own (its response-time histogram, over every upload request of the run), the error rate
is failed requests over all requests, throughput is requests per second over the run;
exactly-once and the delivered fraction come from the verdict.

Invariant: a gate with no measurement (no requests at all) fails; a run passes only when
every gate it sets passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.checks.ledgers import Verdict

EXACTLY_ONCE = ("duplicate upload", "lost acknowledged upload")


@dataclass(frozen=True)
class Gates:
    """Limits (None: not judged)."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = 2_000.0
    max_error_rate: float | None = 0.01
    min_rps: float | None = None
    min_delivered_fraction: float | None = 0.99
    exactly_once: bool = True  # acknowledged = stored once; nothing acknowledged missing


@dataclass(frozen=True)
class Measured:
    """What locust measured on the uploads (percentiles in ms) and over all requests."""

    requests: int
    failures: int
    rps: float
    upload_p50_ms: float | None
    upload_p95_ms: float | None
    upload_p99_ms: float | None
    upload_peak_per_s: int = 0  # the most uploads answered in one wall second

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.requests if self.requests else None


@dataclass(frozen=True)
class Check:
    """One gate's result."""

    name: str
    measured: str
    limit: str
    passed: bool


def _at_most(name: str, value: float | None, limit: float, unit: str) -> Check:
    shown = "no measurement" if value is None else f"{value:,.1f}{unit}"
    return Check(name, shown, f"<= {limit:,}{unit}", value is not None and value <= limit)


def judge(gates: Gates, measured: Measured, verdict: Verdict | None) -> list[Check]:
    """Every gate that is set, judged (see the module docstring); `verdict` None: the
    backend could not be read, so the verdict's gates fail."""
    checks = []
    for name, value, limit in (("upload p50", measured.upload_p50_ms, gates.p50_ms),
                               ("upload p95", measured.upload_p95_ms, gates.p95_ms),
                               ("upload p99", measured.upload_p99_ms, gates.p99_ms)):
        if limit is not None:
            checks.append(_at_most(name, value, limit, " ms"))
    if gates.max_error_rate is not None:
        rate = measured.error_rate
        checks.append(Check("error rate", "no requests" if rate is None else f"{rate:.4f}",
                            f"<= {gates.max_error_rate}", rate is not None
                            and rate <= gates.max_error_rate))
    if gates.min_rps is not None:
        checks.append(Check("throughput", f"{measured.rps:,.1f} req/s",
                            f">= {gates.min_rps:,} req/s", measured.rps >= gates.min_rps))
    if gates.exactly_once:
        broken = None if verdict is None else sum(verdict.anomalies[k] for k in EXACTLY_ONCE)
        shown = ("backend not read" if verdict is None else
                 ", ".join(f"{verdict.anomalies[k]} {k}" for k in EXACTLY_ONCE))
        checks.append(Check("exactly once", shown, "0", broken == 0))
    if gates.min_delivered_fraction is not None:
        fraction = None if verdict is None else verdict.delivered_fraction
        checks.append(Check("delivered", "backend not read" if fraction is None
                            else f"{fraction:.4f}", f">= {gates.min_delivered_fraction}",
                            fraction is not None
                            and fraction >= gates.min_delivered_fraction))
    return checks
