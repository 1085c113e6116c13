"""One simulated phone's SQLite file and the app core's operations on it (`PhoneFile`):
created as the app creates it, then uploads through `uploader.upload_batch` and
DailyPotService's `potsync.after_upload` (as `fleet.runner` runs them), tracking sessions
ending and beginning, and the day's app start: the variant's maintenance (none, as
shipped: cleanOldData is "never called automatically"; `app.clean_old_data` alone, no
VACUUM; or `app.perform_maintenance`, §5.5, through `app.app_start`), then the session,
the pot's `potsync.reconcile` and the retry worker (`uploader.drain_queue`), which probes
once a day. Failed uploads go to `upload_queue` under the core's cap
(`QueuePolicy.max_entries`, the oldest evicted).

Invariants:
- Every queued upload the file loses is recorded as the core reported it: dropped for
  room (`UploadOutcome.evicted`, in `evicted`) or deleted by maintenance (the ids
  `app.app_start` returns, in `expired`); `app_start` asserts the queue lost no row it
  was not told of.
- Inside a day's transaction (`begin_day` ... `end_day`) the core's own BEGIN IMMEDIATE
  ... COMMIT become a SAVEPOINT, which keeps their all-or-nothing meaning (why this
  changes no b-tree page: `batching`). The app start runs between days, outside it
  (VACUUM must).
- Deterministic: ids and retry jitters are a function of the seed (`uniform_hash` keyed
  as the fleet runner keys it).
- One connection writes for both sides (a connection does not change what the file
  holds).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from simulator.capacity.phone_file.generated_uploads import PlannedUpload
from simulator.capacity.phone_file.network import _Network
from simulator.capacity.phone_file.parameters import (
    AUTO_VACUUM,
    CACHE_KIB,
    CORE_POLICY,
    DEFAULT_SEED,
    PHONE,
    START_MS,
)
from simulator.drivers.blocking import connect, execute
from simulator.drivers.blocking import run as run_sql
from simulator.errors import UsageError
from simulator.instants import WINDOW_MS
from simulator.phone import app, potsync, schema
from simulator.phone.effects import Cursor, Http, NetOperation, NetworkError, Sql
from simulator.phone.profiles import FixProfile
from simulator.phone.uploader import Credentials, QueuePolicy, drain_queue, upload_batch
from simulator.seeds import Stream, uniform_hash
from simulator.sensors import ids

# Inside the day's transaction the core's own transactions become a savepoint, which
# keeps their all-or-nothing meaning (SQLite refuses a BEGIN inside a transaction).
_NESTED = {"BEGIN IMMEDIATE": "SAVEPOINT core_op", "COMMIT": "RELEASE core_op",
           "ROLLBACK": "ROLLBACK TO core_op"}


class PhoneFile:
    """One simulated phone's SQLite file and the app core's operations on it.

    Created as the app creates it (`app.open_connection` with the Flutter side's journal
    mode, then `schema.open_schema`), after `PRAGMA auto_vacuum` on the empty file as
    the platform's SQLite build would set it."""

    def __init__(self, path: Path, profile: FixProfile, *, auto_vacuum: str = "NONE",
                 seed: int = DEFAULT_SEED, policy: QueuePolicy = CORE_POLICY,
                 start_ms: int = START_MS) -> None:
        if auto_vacuum not in AUTO_VACUUM:
            raise UsageError(f"auto_vacuum must be one of {AUTO_VACUUM}, got {auto_vacuum!r}")
        if path.exists():
            raise UsageError(f"{path} exists: a phone file starts empty, give a new path")
        self.path, self.profile, self.policy, self.seed = path, profile, policy, seed
        user = ids.user_ids(seed, np.array([PHONE], dtype=np.int64))[0].decode()
        device = ids.device_ids(seed, np.array([PHONE], dtype=np.int64))[0].decode()
        self.user_id, self.creds = user, Credentials(device, "phone-file-secret")
        self.network = _Network(user, start_ms)
        self.conn = connect(path)
        self.conn.execute(f"PRAGMA auto_vacuum = {auto_vacuum}")
        run_sql(self.conn, app.open_connection(profile.flutter_journal_mode, 0))
        run_sql(self.conn, schema.open_schema(profile.schema_version))
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self.in_day = False
        self.evicted: set[str] = set()  # queued uploads the core dropped for room
        self.expired: set[str] = set()  # queued uploads perform_maintenance deleted
        self.expired_payload_bytes = 0  # their payloads' bytes, measured on the file
        self.saved = 0
        self.probes = 0

    def close(self) -> None:
        self.conn.close()

    def run(self, operation: NetOperation[Any], now_ms: int) -> Any:
        """Run a core operation to its end: SQL on the file, HTTP to `network`."""
        cursor: Cursor[Sql | Http] = Cursor(operation)
        while cursor.pending is not None:
            effect = cursor.pending
            if isinstance(effect, Http):
                try:
                    response = self.network.answer(effect, now_ms)
                except NetworkError as exc:
                    cursor.throw(exc)
                    continue
                cursor.send(response)
            elif self.in_day and effect.statement in _NESTED:
                execute(self.conn, cursor, Sql(_NESTED[effect.statement]))
                if effect.statement == "ROLLBACK":
                    self.conn.execute("RELEASE core_op")
            else:
                execute(self.conn, cursor, effect)
        return cursor.outcome()

    def begin_day(self) -> None:
        self.conn.execute("BEGIN")
        self.in_day = True

    def end_day(self) -> None:
        self.conn.execute("COMMIT")
        self.in_day = False

    def queue(self) -> tuple[int, int]:
        """Rows in upload_queue and their payloads' bytes."""
        rows, size = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(payload AS BLOB))), 0) "
            "FROM upload_queue").fetchone()
        return int(rows), int(size)

    def app_start(self, now_ms: int, maintenance: str) -> None:
        """The day's first start, in the fleet runner's order (`_app_start`): the
        database work at start (the variant's maintenance), the tracking service closes
        the session left active and starts one, DailyPotService reconciles, and the retry
        worker runs for what is queued. Outside the day's transaction (VACUUM must be)."""
        assert not self.in_day, "app_start runs between days"
        before = self.queue()
        deleted: list[str] | None = None
        if maintenance == "clean_old_data":
            self.run(app.clean_old_data(now_ms), now_ms)
        else:  # app.app_start runs perform_maintenance iff the profile says so
            wanted = maintenance == "perform_maintenance"
            deleted = self.run(app.app_start(now_ms, replace(self.profile,
                                                             auto_maintenance=wanted)), now_ms)
            assert (deleted is not None) is wanted
        after = self.queue()
        assert before[0] - after[0] == len(deleted or ()), "queue rows went unreported"
        self.expired.update(deleted or ())
        self.expired_payload_bytes += before[1] - after[1]
        self.run(app.stop_tracking_session(now_ms, self.profile, "app_restart", self.user_id),
                 now_ms)
        self.run(app.start_tracking_session(now_ms, self.profile, self.user_id), now_ms)
        self.run(potsync.reconcile(self.user_id, self.creds, now_ms, self.profile), now_ms)
        if after[0]:
            self._probe(now_ms)

    def session_boundary(self, now_ms: int) -> None:
        """Tracking stops and starts again within the day (the fleet runner's
        `session_stop` / `session_start` events: idle, then moving again)."""
        self.run(app.stop_tracking_session(now_ms, self.profile, "idle", self.user_id), now_ms)
        self.run(app.start_tracking_session(now_ms, self.profile, self.user_id), now_ms)

    def _probe(self, now_ms: int) -> None:
        """The retry worker's run at app start: online it would deliver, offline it
        records the failed attempt on the oldest due entry (its retry columns only)."""
        self.probes += 1
        jitters = [float(uniform_hash(self.seed, Stream.RUNTIME, np.int64(PHONE),
                                      np.int64(1_000_000 + 8 * self.probes + i)))
                   for i in range(4)]

        def contribution_of(batch_id: str, envelope: bytes) -> app.Contribution:
            raise AssertionError("the growth and outage runs never deliver from the queue")

        self.run(drain_queue(self.creds, now_ms, jitters, self.profile, contribution_of,
                             self.policy), now_ms)

    def jitters(self, uploads: Sequence[PlannedUpload]) -> list[float]:
        """The retry jitter of each upload, keyed as the fleet runner keys it."""
        keys = np.array([3_000_000 + zlib.crc32(u.batch_id.encode()) for u in uploads],
                        dtype=np.int64)
        return [float(x) for x in np.atleast_1d(
            uniform_hash(self.seed, Stream.RUNTIME, np.int64(PHONE), keys))]

    def upload(self, batch: PlannedUpload, jitter: float) -> str:
        """The Kotlin upload flow, then DailyPotService when it was delivered (as
        `fleet.runner` does it). Returns the core's outcome ("saved", "queued", ...)."""
        now = batch.due_ms
        # the local record exactly as fleet.runner._load builds a full phone's
        c = app.Contribution(batch.batch_id, batch.timestamp_ms, batch.samples, batch.geohash,
                             True, batch.timestamp_ms + WINDOW_MS, self.user_id)
        outcome = self.run(upload_batch(batch.envelope, c, self.creds, now, jitter,
                                        self.profile, self.policy), now)
        if outcome.evicted is not None:
            self.evicted.add(outcome.evicted)
        if outcome.result == "saved":
            self.saved += 1
            self.run(potsync.after_upload(self.user_id, batch.batch_id, self.creds, now,
                                          self.profile), now)
        return str(outcome.result)
