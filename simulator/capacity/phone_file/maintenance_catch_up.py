"""The maintenance arriving late (`catch_up`): on a copy of a file that never had any,
`app.clean_old_data` once, then `app.perform_maintenance` (§5.5, with its VACUUM) once,
at the end of the last day, the file measured after each. Without VACUUM an auto_vacuum
NONE file keeps its size (the pages go to the free list); a FULL one gives them back at
the commit.

Invariants: the original file is never written (the copy is deleted however the catch-up
ends); only `perform_maintenance_s` depends on the machine.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from simulator.capacity.phone_file.page_accounting import file_stats
from simulator.capacity.phone_file.parameters import DAY_MS, START_MS
from simulator.capacity.phone_file.results import CatchUp
from simulator.capacity.phone_file.variants import GrowthVariant
from simulator.drivers.blocking import connect
from simulator.drivers.blocking import run as run_sql
from simulator.phone import app


def catch_up(path: Path, variant: GrowthVariant, days: int,
             start_ms: int = START_MS) -> CatchUp:
    """The maintenance arrives on a file that never had any (`path`, after `days` days):
    `app.clean_old_data` once, then `app.perform_maintenance` once, on a copy, at the
    end of the last day."""
    copy = path.with_name(f"{path.stem}-catch-up{path.suffix}")
    shutil.copyfile(path, copy)
    conn = connect(copy)
    try:
        now = start_ms + days * DAY_MS
        before = file_stats(conn)
        deleted = run_sql(conn, app.clean_old_data(now))
        cleaned = file_stats(conn)
        began = time.perf_counter()
        run_sql(conn, app.perform_maintenance(now))
        seconds = time.perf_counter() - began
        maintained = file_stats(conn)
    finally:
        conn.close()
        copy.unlink()
    return CatchUp(variant, days, before.rows["contributions"], deleted, before.file_bytes,
                   before.freelist_bytes, cleaned.file_bytes, cleaned.freelist_bytes,
                   maintained.file_bytes, maintained.freelist_bytes, seconds)
