"""The backend's SQL: devices, uploads and daily pots, on asyncpg connections whose
`search_path` is the schema variant's namespace (`migrations.namespace`).

Every write that the API acknowledges is committed before this module returns. An
upload is one statement (receipt, batch row and user_stats together, so all or
nothing); a pot change is one statement guarded by the pot's version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from simulator.backend import pot as rules
from simulator.backend.payload import InputError
from simulator.errors import StateError

# as-is (review §4.1): no receipts, so a retried batch is stored again
UPLOAD_AS_IS = """
WITH batch AS (
  INSERT INTO sensor_batches (device_hash, user_id, timestamp_utc, batch_json)
  VALUES ($1, $2, $3, $4)
), stats AS (
  INSERT INTO user_stats AS s (device_hash, user_id, total_uploads, total_samples,
                               last_upload_at)
  VALUES ($1, $2, 1, $5, $3)
  ON CONFLICT (device_hash) DO UPDATE SET
    user_id = excluded.user_id, total_uploads = s.total_uploads + 1,
    total_samples = s.total_samples + excluded.total_samples,
    last_upload_at = GREATEST(s.last_upload_at, excluded.last_upload_at)
)
SELECT TRUE
"""

# recommended: the receipt decides; the batch and the stats follow only a new receipt
UPLOAD_RECOMMENDED = """
WITH receipt AS (
  INSERT INTO upload_receipts (batch_id, device_hash, body_sha256, timestamp_utc,
                               received_at)
  VALUES ($6, $1, $7, $3, $8)
  ON CONFLICT (batch_id) DO NOTHING
  RETURNING batch_id
), batch AS (
  INSERT INTO sensor_batches (batch_id, seq, device_hash, user_id, timestamp_utc, batch_json)
  SELECT $6, $9, $1, $2, $3, $4 FROM receipt
), stats AS (
  INSERT INTO user_stats AS s (device_hash, user_id, total_uploads, total_samples,
                               last_upload_at)
  SELECT $1, $2, 1, $5, $3 FROM receipt
  ON CONFLICT (device_hash) DO UPDATE SET
    user_id = excluded.user_id, total_uploads = s.total_uploads + 1,
    total_samples = s.total_samples + excluded.total_samples,
    last_upload_at = GREATEST(s.last_upload_at, excluded.last_upload_at)
)
SELECT EXISTS (SELECT 1 FROM receipt)
"""


def device_hash(device_id: str) -> str:
    """The pseudonymous device key of sensor_batches and user_stats (SHA-256, 128 bits)."""
    return hashlib.sha256(device_id.encode()).hexdigest()[:32]


def secret_hash(secret: str) -> bytes:
    """What device_secrets stores. The secret is 256 random bits, so a plain SHA-256 is
    enough (a slow password hash protects guessable secrets, which these are not)."""
    return hashlib.sha256(secret.encode()).digest()


def instant(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


async def register_device(conn: Any, device_id: str, user_id: str, secret: str,
                          now_ms: int) -> bool:
    """Store a new device; False if the id is taken (its secret is never shown again)."""
    row = await conn.fetchrow(
        "INSERT INTO device_secrets (device_id, secret_hash, user_id, created_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (device_id) DO NOTHING RETURNING device_id",
        device_id, secret_hash(secret), user_id, instant(now_ms))
    return row is not None


async def find_device(conn: Any, device_id: str) -> tuple[bytes, str] | None:
    """(secret hash, user id) of a registered device."""
    row = await conn.fetchrow("SELECT secret_hash, user_id FROM device_secrets "
                              "WHERE device_id = $1", device_id)
    return (bytes(row[0]), row[1]) if row else None


@dataclass(frozen=True)
class Stored:
    """An upload's outcome: False `replayed` means it was written now."""

    replayed: bool
    received_at_ms: int


async def store_upload(conn: Any, variant: str, *, device_id: str, user_id: str,
                       batch_id: str, seq: int | None, timestamp_ms: int, payload: bytes,
                       samples: int, body_sha256: bytes, now_ms: int) -> Stored:
    """Write one upload (see the module docstring); raises InputError when a batch id is
    reused for another device or another body."""
    dhash = device_hash(device_id)
    if variant == "as-is":
        await conn.fetchval(UPLOAD_AS_IS, dhash, user_id, instant(timestamp_ms), payload, samples)
        return Stored(False, now_ms)
    new = await conn.fetchval(UPLOAD_RECOMMENDED, dhash, user_id, instant(timestamp_ms), payload,
                              samples, batch_id, body_sha256, instant(now_ms), seq)
    if new:
        return Stored(False, now_ms)
    row = await conn.fetchrow("SELECT device_hash, body_sha256, received_at FROM "
                              "upload_receipts WHERE batch_id = $1", batch_id)
    if row["device_hash"] != dhash or bytes(row["body_sha256"]) != body_sha256:
        raise InputError(422, "idempotency_key_reused",
                         f"batch {batch_id} was already stored with a different body or device")
    return Stored(True, millis(row["received_at"]))


def _pot(row: Any) -> rules.Pot:
    return rules.Pot(row["user_id"], row["total_credits"], row["uploads_today"],
                     row["uploads_required"], row["pot_day"], row["last_claim_date"],
                     row["version"], millis(row["updated_at"]))


POT_COLUMNS = ("user_id, total_credits, uploads_today, uploads_required, pot_day, "
               "last_claim_date, version, updated_at")


async def get_pot(conn: Any, user_id: str, now_ms: int, params: rules.PotRules) -> rules.Pot:
    """The user's pot as of now (a fresh one if nothing was ever recorded)."""
    row = await conn.fetchrow(f"SELECT {POT_COLUMNS} FROM daily_pots WHERE user_id = $1",
                              user_id)
    return rules.current(_pot(row) if row else rules.fresh(user_id, now_ms, params), now_ms)


# A pot change is written with one statement, guarded by the version read before it
# (optimistic concurrency): the update happens only if nobody changed the pot since, and
# the event row only with the update, so a pot never counts an event it has no row for
# nor has a row for an event it did not count. Two round trips instead of a seven-
# statement transaction: the pot endpoint was most of the server's CPU in a full-phone
# fleet (py-spy: asyncpg's execute, 50 % of the server's samples).
READ_POT = f"""
SELECT {", ".join("p." + c.strip() for c in POT_COLUMNS.split(","))},
       (SELECT TRUE FROM pot_events e
        WHERE e.user_id = $1 AND e.kind = $2 AND e.event_key = $3) AS seen
FROM (VALUES ($1::text)) AS x (u) LEFT JOIN daily_pots p ON p.user_id = x.u
"""

_EVENT = """
, event AS (
  INSERT INTO pot_events (user_id, kind, event_key, pot_day, created_at)
  SELECT $1, $2, $3, $6, $11 WHERE EXISTS (SELECT 1 FROM pot)
  ON CONFLICT (user_id, kind, event_key) DO NOTHING  -- any other violation aborts it all
  RETURNING 1
)
SELECT (SELECT count(*) FROM pot), (SELECT count(*) FROM event)
"""

WRITE_POT = """
WITH pot AS (
  UPDATE daily_pots SET total_credits = $4, uploads_today = $5, pot_day = $6,
    last_claim_date = $7, version = $8, updated_at = $9
  WHERE user_id = $1 AND version = $10
  RETURNING 1
)""" + _EVENT

CREATE_POT = """
WITH pot AS (
  INSERT INTO daily_pots (user_id, total_credits, uploads_today, uploads_required, pot_day,
                          last_claim_date, version, updated_at)
  VALUES ($1, $4, $5, $10, $6, $7, $8, $9)
  ON CONFLICT (user_id) DO NOTHING
  RETURNING 1
)""" + _EVENT

MAX_POT_ATTEMPTS = 50  # each lost race means another request changed this user's pot


async def change_pot(conn: Any, user_id: str, kind: str, key: str, now_ms: int,
                     params: rules.PotRules) -> tuple[rules.Pot, bool]:
    """Apply a recorded upload (`kind` "upload") or a claim ("claim") keyed by `key`,
    once; returns (state, replayed). Raises InputError (nothing written) when the rules
    refuse it. Invariant: the event row and the pot's change commit together or not at
    all (one statement; a version that moved in between writes neither, and it is tried
    again on the new state)."""
    for _ in range(MAX_POT_ATTEMPTS):
        row = await conn.fetchrow(READ_POT, user_id, kind, key)
        stored = _pot(row) if row["user_id"] is not None else None
        pot = rules.current(stored or rules.fresh(user_id, now_ms, params), now_ms)
        if row["seen"]:
            return pot, True
        new = (rules.record_upload(pot, now_ms) if kind == "upload"
               else rules.claim(pot, now_ms, params))
        args = (user_id, kind, key, new.total_credits, new.uploads_today, new.pot_day,
                new.last_claim_date, new.version, instant(new.updated_at_ms))
        if stored is None:
            written = await conn.fetchrow(CREATE_POT, *args, new.uploads_required,
                                          instant(now_ms))
        else:
            written = await conn.fetchrow(WRITE_POT, *args, stored.version, instant(now_ms))
        if written[0] and written[1]:
            return new, False
        if written[0]:  # the pot moved without its event: the guard above makes it
            raise StateError(f"pot of {user_id} changed without its {kind} event {key}")
    raise InputError(503, "pot_contended", f"the pot of {user_id} kept changing; retry",
                     retry_after_s=1)


def day(value: date | None) -> str | None:
    return value.isoformat() if value else None
