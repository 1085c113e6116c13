"""The phone's SQLite file over days of use (review §5.2, §5.5), measured on real files.

A simulated phone lives day after day on a real SQLite file (Python's sqlite3, in a
temporary directory): every 5-minute batch of the fleet generator is uploaded through
the app core's own operations (`uploader.upload_batch`, then DailyPotService's
`potsync.after_upload`, as `fleet.runner` runs them), tracking sessions end and begin a few
times a day (`app.stop_tracking_session`, `app.start_tracking_session`), and the app
starts once a day, at midnight: the variant's maintenance (none, as shipped: cleanOldData
is "never called automatically"; `app.clean_old_data` alone, no VACUUM; or
`app.perform_maintenance`, §5.5, through `app.app_start`), then the session, the pot's
`potsync.reconcile` and the retry worker. The network answers as the reference backend
would (uploads 201, the pot by `backend.pot`'s rules) or, in an outage, not at all: failed
uploads go to `upload_queue` under the core's cap (`QueuePolicy.max_entries`, the oldest
evicted) and the retry worker (`uploader.drain_queue`) probes once a day.

Measured: the file's pages (`page_count`, `freelist_count`, and per table and index from
the `dbstat` virtual table; without dbstat, `FileStats.objects` is empty and only the page
totals are reported), the rows; the maintenance arriving late on a file that never had
any (`CatchUp`); and in an outage, where every upload went.

One job per module, each opening with its invariants; a module imports only modules
above it in this list:

- `parameters`: the calendar, the defaults, the core's queue policy, day-list checks;
- `page_accounting`: a file's pages, rows and per-b-tree bytes from dbstat (`file_stats`;
  invariant: the page accounting);
- `variants`: the growth and outage variants compared, and their default sets;
- `results`: the report's dataclasses (`GrowthPoint` ... `PhoneFileReport`);
- `network`: the backend's answers as the phone sees them, online or not;
- `generated_uploads`: `PlannedUpload` and the generator's batches (invariant: growth
  days cycle a generated week);
- `simulated_phone`: `PhoneFile`, the app core's operations on one file;
- `daily_use`: a day of use (`live_day`, `session_times`);
- `batching`: one commit a day against one a statement, page by page (invariant:
  batching changes no b-tree page);
- `maintenance_catch_up`: the maintenance arriving late (`catch_up`);
- `growth`: the file over days of use (`measure_growth`);
- `outage`: the phone offline (`measure_outages`; invariant: the outage ledger);
- `measure`: the whole measurement (`measure_phone_file`).

Names with a leading underscore are private to this package: its modules share them,
nothing outside it imports them (tests of the helpers aside).

Invariant: deterministic: the same seed and arguments give the same numbers (batches,
ids and session times come from the seed; nothing reads the wall clock but the timings).

Where the model simplifies: one connection writes for both sides (a connection does not
change what the file holds); the app starts once a day (the fleet runner starts it, and
runs its maintenance, after every kill or reboot); session boundaries are seeded instants
(the runner's come from gaps between uploads, which a generated day rarely has).
"""

from __future__ import annotations

from simulator.capacity.phone_file.batching import check_batching, differing_pages
from simulator.capacity.phone_file.daily_use import live_day, session_times
from simulator.capacity.phone_file.generated_uploads import (
    PlannedUpload,
    outage_uploads,
)
from simulator.capacity.phone_file.generated_uploads import (  # the tests' helpers
    _day_uploads as _day_uploads,
)
from simulator.capacity.phone_file.generated_uploads import (
    _generate as _generate,
)
from simulator.capacity.phone_file.growth import measure_growth
from simulator.capacity.phone_file.maintenance_catch_up import catch_up
from simulator.capacity.phone_file.measure import measure_phone_file
from simulator.capacity.phone_file.outage import measure_outages, simulate_outage
from simulator.capacity.phone_file.page_accounting import (
    FileStats,
    ObjectBytes,
    dbstat_available,
    file_stats,
)
from simulator.capacity.phone_file.parameters import (
    DAY_MS,
    DEFAULT_SEED,
    FULL_DAYS,
    FULL_OUTAGE_DAYS,
    QUICK_DAYS,
    QUICK_OUTAGE_DAYS,
    START_MS,
)
from simulator.capacity.phone_file.results import (
    BatchingCheck,
    CatchUp,
    GrowthPoint,
    OutagePoint,
    PhoneFileReport,
)
from simulator.capacity.phone_file.simulated_phone import PhoneFile
from simulator.capacity.phone_file.variants import (
    GrowthVariant,
    OutageVariant,
    default_growth_variants,
    default_outage_variants,
)

__all__ = [
    "DAY_MS",
    "DEFAULT_SEED",
    "FULL_DAYS",
    "FULL_OUTAGE_DAYS",
    "QUICK_DAYS",
    "QUICK_OUTAGE_DAYS",
    "START_MS",
    "BatchingCheck",
    "CatchUp",
    "FileStats",
    "GrowthPoint",
    "GrowthVariant",
    "ObjectBytes",
    "OutagePoint",
    "OutageVariant",
    "PhoneFile",
    "PhoneFileReport",
    "PlannedUpload",
    "catch_up",
    "check_batching",
    "dbstat_available",
    "default_growth_variants",
    "default_outage_variants",
    "differing_pages",
    "file_stats",
    "live_day",
    "measure_growth",
    "measure_outages",
    "measure_phone_file",
    "outage_uploads",
    "session_times",
    "simulate_outage",
]
