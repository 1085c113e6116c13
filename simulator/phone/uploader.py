"""The phone's upload side (review §3.2): Kotlin's NativeBackendUploader and the retry
worker (review §7 item 8), as sans-I/O network operations.

`upload_batch`: POST /upload; on 201 save the contribution locally (Kotlin's own
insert(), or Flutter's with the single-writer fix); on a network error, a timeout, 408,
429 or 5xx put the envelope in `upload_queue` for the retry worker; any other 4xx is a
permanent refusal (the batch is dropped and reported, retrying cannot help).

`drain_queue`: the retry worker. It reads due entries one at a time (never the whole
queue: review C2, payloads are unbounded TEXT), re-sends each, and on success saves the
contribution and dequeues it (`app.complete_queued_upload`); on failure it records the
attempt with exponential backoff and jitter (`next_retry_at`, `retry_count`,
`last_error`). With `honor_retry_after` (v3), an answer's Retry-After is a floor under
that backoff, and a 429 or 503 that carries one ends the worker's run. The queue is
bounded (`QueuePolicy.max_entries`): when full, the oldest entry is dropped and
reported, so a phone offline for weeks cannot fill its storage.

Invariant: an envelope is either acknowledged by the backend and saved (or reported as
a dropped save), queued, or reported as refused/overflowed; nothing disappears silently
in this code. Randomness (jitter) comes in as an argument; time is `now_ms`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from simulator.phone import app
from simulator.phone.effects import Http, HttpResponse, NetOperation, NetworkError, Sql
from simulator.phone.profiles import FixProfile

RETRYABLE = {408, 429}


@dataclass(frozen=True)
class QueuePolicy:
    """Retry backoff and the queue bound."""

    base_backoff_ms: int = 30_000
    max_backoff_ms: int = 3_600_000
    max_entries: int = 2_016  # a week of 5-minute batches
    batch_per_drain: int = 50


@dataclass(frozen=True)
class Credentials:
    """The device's id and the secret it got at registration."""

    device_id: str
    secret: str

    def headers(self, batch_id: str | None = None) -> tuple[tuple[str, str], ...]:
        base = (("X-Device-Id", self.device_id), ("Authorization", f"Bearer {self.secret}"),
                ("Content-Type", "application/json"))
        return (*base, ("Idempotency-Key", batch_id)) if batch_id else base


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one envelope: "saved", "dropped_save" (acknowledged, but the
    local insert returned -1), "queued", "dropped_queue" (failed, and the queue insert
    returned -1: a full or read-only file), "refused" (permanent 4xx), with the HTTP status
    or error; `evicted` names an older queued batch dropped to make room (review C2)."""

    result: str
    status: int | None = None
    error: str | None = None
    replayed: bool = False
    evicted: str | None = None


def backoff_ms(retry_count: int, jitter: float, policy: QueuePolicy) -> int:
    """Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
    and Jitter", 2015): uniform in [0.5, 1.0] of min(cap, base * 2^n)."""
    ceiling = min(policy.max_backoff_ms, policy.base_backoff_ms * 2 ** min(retry_count, 30))
    return int(ceiling * (0.5 + 0.5 * jitter))


def _send(envelope: bytes, batch_id: str, creds: Credentials) -> NetOperation[Any]:
    try:
        response = yield Http("POST", "/upload", envelope, creds.headers(batch_id))
    except NetworkError as exc:
        return exc
    return response


def failure(outcome: HttpResponse | NetworkError) -> str | None:
    """None when acknowledged; else a short error text."""
    if isinstance(outcome, NetworkError):
        return outcome.kind
    if outcome.status in (200, 201):
        return None
    if 400 <= outcome.status < 500:  # a refusal: the server's error code says why, and
        try:  # codes (not free text) group well in a report
            code = str(orjson.loads(outcome.body)["error"])[:60]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            code = ""
        return f"http {outcome.status}" + (f" {code}" if code else "")
    return f"http {outcome.status}"


def retryable(outcome: HttpResponse | NetworkError) -> bool:
    return isinstance(outcome, NetworkError) or outcome.status in RETRYABLE or (
        outcome.status >= 500)


def _save(c: app.Contribution, profile: FixProfile) -> NetOperation[bool]:
    """Kotlin's local save after an acknowledgement; False if it was silently dropped."""
    _, operation = app.kotlin_side_save(c, profile)
    try:
        result = yield from operation
    except sqlite3.Error:  # single writer: Flutter raises; the app logs it
        return False
    return bool(result != -1)


def server_wait_ms(outcome: HttpResponse | NetworkError, profile: FixProfile) -> int:
    """How long the server asked this phone to wait before retrying: its Retry-After, if
    the profile honours it (0 otherwise)."""
    if not profile.honor_retry_after or not isinstance(outcome, HttpResponse):
        return 0
    return (outcome.retry_after_s or 0) * 1000


def _enqueue(batch_id: str, envelope: bytes, now_ms: int, error: str, jitter: float,
             policy: QueuePolicy, wait_ms: int = 0
             ) -> NetOperation[tuple[str | None, str | None]]:
    """Queue an envelope as Kotlin's `insert()` does: (the id of an older entry dropped
    for room, if any; None, or the error that made the insert return -1: a full or
    read-only file, and the envelope is in no queue)."""
    rows = yield Sql("SELECT COUNT(*) FROM upload_queue")
    evicted = None
    try:
        if int(rows[0][0]) >= policy.max_entries:
            oldest = yield Sql("SELECT id FROM upload_queue ORDER BY created_at, id LIMIT 1")
            yield Sql("DELETE FROM upload_queue WHERE id = ?", (str(oldest[0][0]),))
            evicted = str(oldest[0][0])
        yield Sql("INSERT OR IGNORE INTO upload_queue (id, payload, created_at, "
                  "retry_count, last_error, next_retry_at) VALUES (?, ?, ?, 0, ?, ?)",
                  (batch_id, envelope.decode(), now_ms, error,
                   now_ms + max(backoff_ms(0, jitter, policy), wait_ms)))
    except sqlite3.Error as exc:  # android_insert_returns_minus_one: logged, not raised
        return evicted, str(exc)
    return evicted, None


def upload_batch(envelope: bytes, c: app.Contribution, creds: Credentials, now_ms: int,
                 jitter: float, profile: FixProfile,
                 policy: QueuePolicy = QueuePolicy()) -> NetOperation[UploadOutcome]:
    """One 5-minute upload (see the module docstring). `c.id` is the batch id."""
    outcome = yield from _send(envelope, c.id, creds)
    error = failure(outcome)
    if error is None:
        assert isinstance(outcome, HttpResponse)
        saved = yield from _save(c, profile)
        return UploadOutcome("saved" if saved else "dropped_save", outcome.status)
    status = outcome.status if isinstance(outcome, HttpResponse) else None
    if not retryable(outcome):
        return UploadOutcome("refused", status, error)
    evicted, not_queued = yield from _enqueue(c.id, envelope, now_ms, error, jitter, policy,
                                              server_wait_ms(outcome, profile))
    if not_queued is not None:
        return UploadOutcome("dropped_queue", status, f"{error}; queue insert: {not_queued}",
                             evicted=evicted)
    return UploadOutcome("queued", status, error, evicted=evicted)


def drain_queue(creds: Credentials, now_ms: int, jitters: list[float], profile: FixProfile,
                contribution_of: Any, policy: QueuePolicy = QueuePolicy(),
                done: list[tuple[str, UploadOutcome]] | None = None
                ) -> NetOperation[list[tuple[str, UploadOutcome]]]:
    """Re-send due entries (oldest first, at most `batch_per_drain`, one payload in
    memory at a time); `contribution_of(batch_id, envelope)` rebuilds the contribution
    to save. Stops at the first network error (the phone is offline: try later).
    Returns (batch id, outcome) per entry tried, appended to `done` as each finishes
    (so a caller whose app is killed mid-drain still knows what was committed)."""
    done = [] if done is None else done
    for i in range(policy.batch_per_drain):
        rows = yield Sql("SELECT id, payload, retry_count FROM upload_queue WHERE "
                         "next_retry_at <= ? ORDER BY next_retry_at, id LIMIT 1", (now_ms,))
        if not rows:
            break
        batch_id, payload, retries = str(rows[0][0]), str(rows[0][1]), int(rows[0][2] or 0)
        envelope = payload.encode()
        outcome = yield from _send(envelope, batch_id, creds)
        error = failure(outcome)
        status = outcome.status if isinstance(outcome, HttpResponse) else None
        if error is None:
            c = contribution_of(batch_id, envelope)
            try:
                yield from app.complete_queued_upload(batch_id, c, profile)
                done.append((batch_id, UploadOutcome("saved", status,
                                                     replayed=status == 201 and retries > 0)))
            except sqlite3.Error as exc:  # e.g. already saved: dequeue, keep the row
                yield Sql("DELETE FROM upload_queue WHERE id = ?", (batch_id,))
                done.append((batch_id, UploadOutcome("dropped_save", status, str(exc))))
            continue
        if not retryable(outcome):
            yield Sql("DELETE FROM upload_queue WHERE id = ?", (batch_id,))
            done.append((batch_id, UploadOutcome("refused", status, error)))
            continue
        jitter = jitters[i % len(jitters)] if jitters else 1.0
        wait_ms = server_wait_ms(outcome, profile)
        yield from app.update_upload_retry(
            batch_id, error, now_ms + max(backoff_ms(retries + 1, jitter, policy), wait_ms),
            profile)
        done.append((batch_id, UploadOutcome("queued", status, error)))
        if isinstance(outcome, NetworkError) or wait_ms:
            break  # offline, or the server asked for a pause: the rest would fare the same
    return done
