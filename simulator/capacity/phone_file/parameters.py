"""The measurement's fixed parameters: the calendar (days, 5-minute windows, the first
day), the simulated phone's index in the generator's fleet, the default seed and day
lists, the maintenance and auto-vacuum modes, the core's queue policy; and the check
that turns a caller's day list into the days measured.

Invariants: constants only, and `_check_days`, which returns the distinct days sorted
ascending (the last is the longest run) or raises `UsageError`; nothing here touches a
file or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from simulator.errors import UsageError
from simulator.instants import DAY_MS as DAY_MS
from simulator.instants import WINDOW_MS
from simulator.phone.uploader import QueuePolicy

Progress = Callable[[str], None]

UPLOADS_PER_DAY = DAY_MS // WINDOW_MS  # 288
START_MS = 1_717_372_800_000  # 2024-06-03T00:00:00Z, a Monday: the phone's first day
PHONE = 0  # the simulated phone's index in the generator's fleet
SAMPLE_DAYS = 7  # growth days cycle a generated week (generated_uploads)
SESSIONS_PER_DAY = 4  # tracking sessions a day: one from the app start, three more
CACHE_KIB = 65_536  # the measuring connection's page cache: speed only, not the file
MAINTENANCE = ("none", "clean_old_data", "perform_maintenance")
AUTO_VACUUM = ("NONE", "FULL")
DEFAULT_SEED = 20_240_603
FULL_DAYS = (7, 30, 90, 365)
QUICK_DAYS = (7, 30)
FULL_OUTAGE_DAYS = (1, 3, 7, 14, 30)
QUICK_OUTAGE_DAYS = (1, 9)
CORE_POLICY = QueuePolicy()  # the app core's retry and cap policy, as the fleet uses it
UNBOUNDED = None  # a queue without the core's cap (review C2: nothing bounds it)


def _check_days(days: Sequence[int], what: str) -> tuple[int, ...]:
    clean = tuple(sorted(set(days)))
    if not clean or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in clean):
        raise UsageError(f"{what} must be positive whole numbers of days, e.g. (7, 30), got "
                         f"{tuple(days)!r}")
    return clean
