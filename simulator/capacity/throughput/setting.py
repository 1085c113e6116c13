"""What the throughput measurements share: the sample they send (a weekday morning of the
fleet generator), a phone's upload cadence and timeout, the margin of the backend's clock,
the aggregation job's minute and the retention job's days, and the progress callback.

Invariants:
- The uploads are the generator's batches of a weekday morning (`SAMPLE_START`); a
  backend's clock starts `CLOCK_MARGIN_MS` after the last batch it is sent, so no batch is
  in its future.
- Rates follow the app's cadence: one upload per 5-minute window, 288 a user a day.
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.backend.app import BackendConfig
from simulator.instants import BATCH_INTERVAL_S, DAY_S

Progress = Callable[[str], None]

SAMPLE_START = "2024-03-04T08:00:00Z"  # a Monday morning: commuters on the move
UPLOADS_PER_USER_DAY = DAY_S // BATCH_INTERVAL_S  # 288
CLOCK_MARGIN_MS = 10 * 60_000  # the backend's clock starts this long after the last batch
PHONE_TIMEOUT_S = 10.0  # OkHttp's default connect/read/write timeouts

MINUTE_S = 60.0  # the job runs every minute (review §4.3)
RETENTION_DAYS = BackendConfig("").retention_days  # what the retention job keeps (30)


def average_uploads_per_s(users: int) -> float:
    """A fleet's average upload rate: users × 288 a day over 86,400 s."""
    return users * UPLOADS_PER_USER_DAY / DAY_S


TEN_K_USERS_AVERAGE_PER_S = average_uploads_per_s(10_000)  # 33.3


def say_to(progress: Progress | None) -> Progress:
    """`progress`, or a callback that says nothing."""
    return progress or (lambda _: None)
