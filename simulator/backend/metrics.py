"""The backend's Prometheus metrics (text format at GET /metrics), one registry per app
so several apps in one process (tests) do not share counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Request counts and latency per route, rows written per table, rejected inputs by
    reason, uploads by outcome."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ggsim_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("ggsim_http_request_duration_seconds",
                                 "time from request to response", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rows = Counter("ggsim_rows_written", "rows written, by table", ["table"],
                            registry=self.registry)
        self.rejected = Counter("ggsim_rejected_inputs", "requests refused, by reason",
                                ["reason"], registry=self.registry)
        self.uploads = Counter("ggsim_uploads", "uploads acknowledged, by outcome",
                               ["outcome"], registry=self.registry)

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
