"""Time units and cadences shared by every part of the simulator.

Invariant: simulated time is integer milliseconds since the Unix epoch (UTC) wherever it
crosses a module boundary; seconds as floats only inside vectorised signal models. The
wall clock is never read here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from simulator.errors import UsageError

MS_PER_S = 1000
SAMPLE_INTERVAL_S = 10  # review §3.2: "sensor readings every 10s"
BATCH_INTERVAL_S = 300  # review §5.1: "288 (5min intervals)" uploads per day
READINGS_PER_BATCH = BATCH_INTERVAL_S // SAMPLE_INTERVAL_S  # 30, review §4.2 "count": 30
BLOCK_S = 3600  # generation works in UTC hour blocks; 12 batches per phone per block
BATCHES_PER_BLOCK = BLOCK_S // BATCH_INTERVAL_S
DAY_S = 86_400
WINDOW_MS = BATCH_INTERVAL_S * MS_PER_S  # one upload window: 5 minutes
HOUR_MS = BLOCK_S * MS_PER_S
DAY_MS = DAY_S * MS_PER_S
DEFAULT_START = "2024-01-01T00:00:00Z"  # the review's example payload starts here


def parse_instant(text: str, what: str = "--start") -> int:
    """Parse an ISO-8601 instant into epoch milliseconds (UTC).

    A value without an offset is taken as UTC; `Z` and `+hh:mm` are accepted. Anything
    else is a `UsageError` naming `what` (the option or key the text came from).
    """
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"{what} must be an ISO-8601 instant like 2024-01-01T00:00:00Z, got {text!r}"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * MS_PER_S)


def format_instant(epoch_ms: int) -> str:
    """Epoch milliseconds -> `YYYY-MM-DDTHH:MM:SSZ` (the review's §4.2 form)."""
    return datetime.fromtimestamp(epoch_ms / MS_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
