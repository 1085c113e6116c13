"""The HTTP API (Starlette, ASGI): device registration, uploads, the daily pot, health,
metrics and the OpenAPI document. docs/api.md describes it for clients.

Invariants: a 2xx is sent only after the data is committed; bad input of any kind gets
a 4xx with a JSON body `{"error": code, "detail": text[, "path": where]}` and writes
nothing; an unavailable database is a 503, never a hang (the pool has timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.backend import jobs, migrations, store
from simulator.backend import pot as pot_rules
from simulator.backend.clock import BackendClock
from simulator.backend.metrics import Metrics
from simulator.backend.openapi import document
from simulator.backend.payload import InputError, check_id, decode_upload
from simulator.backend.ratelimit import RateLimit, TokenBuckets

log = logging.getLogger("ggsim.backend")
Handler = Callable[[Request], Awaitable[Response]]
# the database is gone, going, or full: the client may retry later (503, Retry-After: a
# restarting PostgreSQL is back within seconds; the pool reconnects by itself)
DATABASE_RETRY_AFTER_S = 5
ROUTES_WITHOUT_DATABASE = frozenset({"metrics", "openapi", "sim_clock"})
DATABASE_DOWN = (OSError, TimeoutError, asyncpg.InterfaceError,
                 asyncpg.exceptions.PostgresConnectionError,
                 asyncpg.exceptions.OperatorInterventionError,
                 asyncpg.exceptions.InsufficientResourcesError)


@dataclass
class BackendConfig:
    """What a backend instance serves and how strict it is."""

    database_url: str
    schema: str = "recommended"
    max_body_bytes: int = 256 * 1024
    max_future_ms: int = 5 * 60_000
    pot: pot_rules.PotRules = field(default_factory=pot_rules.PotRules)
    clock: BackendClock = field(default_factory=BackendClock)
    pool_size: int = 8
    months_ahead: int = 3
    jobs_interval_s: float = 60.0  # aggregation every minute (review §4.3); 0: never
    retention_days: int = 30
    aggregation_lag_s: float = 5.0  # rows younger than this wait for the next run
    sim_control: bool = False  # POST /_sim/clock sets simulated time (fleet runs only)
    rate_limit: RateLimit = field(default_factory=RateLimit)  # per device (ratelimit.py)


@dataclass
class DatabaseOutage:
    """The log of a database outage: one line when the first request finds the database
    gone, one when a request gets through again (how long, how many were refused),
    instead of a line per refused request."""

    since: float | None = None
    refused_requests: int = 0

    def refused(self, route: str, exc: BaseException) -> None:
        if self.since is None:
            self.since, self.refused_requests = time.monotonic(), 0
            log.warning("database unavailable (first on %s: %s); answering 503 with "
                        "Retry-After until it is back", route, exc)
        self.refused_requests += 1

    def answered(self) -> None:
        if self.since is not None:
            log.warning("database back after %.1f s; %d requests were answered 503",
                        time.monotonic() - self.since, self.refused_requests)
            self.since = None


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class Backend:
    """One backend instance: its configuration, database pool, metrics and caches."""

    def __init__(self, config: BackendConfig) -> None:
        migrations.namespace(config.schema)  # a bad variant fails here, before serving
        self.config = config
        self.metrics = Metrics()
        self.pool: Any = None
        self.devices: dict[str, tuple[bytes, str]] = {}  # secrets never change: cache
        self.buckets = TokenBuckets(config.rate_limit)
        self.outage = DatabaseOutage()
        self.jobs_task: asyncio.Task[None] | None = None
        self.job_runs = 0

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Migrate, create partitions ahead (recommended), open the pool."""
        conn = await asyncpg.connect(self.config.database_url, timeout=30)
        try:
            if await conn.fetchval("SHOW fsync") != "on":
                log.warning("this PostgreSQL runs with fsync off: a 2xx survives the "
                            "database's crash but not the machine's")
            await migrations.migrate(conn, self.config.schema)
            if self.config.schema == "recommended":
                await conn.execute(f"SET search_path TO {migrations.namespace('recommended')}")
                await jobs.ensure_partitions(conn, self.config.clock.now_ms(),
                                             self.config.months_ahead)
        finally:
            await conn.close()
        self.pool = await asyncpg.create_pool(
            self.config.database_url, min_size=1, max_size=self.config.pool_size,
            timeout=10, command_timeout=30, init=init_connection, reset=_keep_session,
            server_settings={"search_path": migrations.namespace(self.config.schema),
                             # a 2xx is sent after COMMIT returns; with this, COMMIT
                             # returns once the WAL is flushed to disk, whatever the
                             # server's default (docs/api.md, "Durability")
                             "synchronous_commit": "on"})

    def start_jobs(self) -> None:
        """Run the periodic jobs in the background (wall-clock interval)."""
        if self.config.jobs_interval_s > 0:
            self.jobs_task = asyncio.create_task(self._jobs_loop(), name="ggsim-jobs")

    async def _jobs_loop(self) -> None:
        last_daily: object = None
        while True:
            await asyncio.sleep(self.config.jobs_interval_s)
            try:
                await self.run_jobs(daily=last_daily != pot_rules.day_of(
                    self.config.clock.now_ms()))
                last_daily = pot_rules.day_of(self.config.clock.now_ms())
            except Exception:  # a failed run is logged and retried next interval
                log.exception("backend jobs failed")

    async def run_jobs(self, *, daily: bool) -> None:
        """Aggregate; and, once a (backend-clock) day, partitions ahead and retention."""
        now = self.config.clock.now_ms()
        async with self.pool.acquire() as conn:
            await jobs.aggregate(conn, self.config.schema, now,
                                 lag_s=self.config.aggregation_lag_s)
            if daily and self.config.schema == "recommended":
                await jobs.ensure_partitions(conn, now, self.config.months_ahead)
                await jobs.retention(conn, now, self.config.retention_days)
        self.job_runs += 1

    async def stop(self) -> None:
        if self.jobs_task is not None:
            self.jobs_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.jobs_task
            self.jobs_task = None
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    # -- plumbing --------------------------------------------------------------------

    def route(self, name: str, handler: Handler) -> Handler:
        """Wrap a handler: InputError -> its 4xx, database trouble -> 503, metrics."""
        async def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            try:
                response = await handler(request)
            except InputError as exc:
                self.metrics.rejected.labels(exc.code).inc()
                retry = exc.retry_after_s
                response = _json(exc.status, exc.body(),
                                 None if retry is None else {"Retry-After": str(retry)})
            except DATABASE_DOWN as exc:
                self.outage.refused(name, exc)
                response = _json(503, {"error": "database_unavailable", "detail": str(exc)},
                                 {"Retry-After": str(DATABASE_RETRY_AFTER_S)})
            else:
                if name not in ROUTES_WITHOUT_DATABASE:
                    self.outage.answered()
            self.metrics.requests.labels(name, request.method, str(response.status_code)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
            return response
        return endpoint

    async def body(self, request: Request) -> bytes:
        """The request body, refused past the size limit before it is all read."""
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise InputError(413, "body_too_large",
                             f"body of {declared} bytes; at most {limit} accepted")
        chunks = bytearray()
        try:
            async for chunk in request.stream():
                chunks += chunk
                if len(chunks) > limit:
                    raise InputError(413, "body_too_large", f"body over {limit} bytes")
        except ClientDisconnect:  # the client gave up (a timeout): nothing was written
            raise InputError(400, "client_disconnected", "the client disconnected before "
                             "the body arrived") from None
        return bytes(chunks)

    async def json_body(self, request: Request, required: tuple[str, ...]) -> dict[str, Any]:
        raw = await self.body(request)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(400, "malformed_json", str(exc)) from None
        if not isinstance(data, dict):
            raise InputError(422, "invalid_field", "body must be a JSON object", "$")
        for name in required:
            check_id(data.get(name), f"$.{name}")
        return data

    async def authenticate(self, request: Request) -> tuple[str, str]:
        """(device id, user id) of a request with valid credentials, else 401; 429 when
        the device is past its rate limit (`ratelimit.py`)."""
        device_id = request.headers.get("x-device-id")
        authorization = request.headers.get("authorization", "")
        if not device_id or not authorization.startswith("Bearer "):
            raise InputError(401, "missing_credentials",
                             "send X-Device-Id and Authorization: Bearer <secret>")
        known = self.devices.get(device_id)
        if known is None:
            async with self.pool.acquire() as conn:
                known = await store.find_device(conn, device_id)
            if known is not None:
                self.devices[device_id] = known
        if known is None or not hmac.compare_digest(
                known[0], store.secret_hash(authorization[len("Bearer "):])):
            raise InputError(401, "bad_credentials", "unknown device or wrong secret")
        wait_s = self.buckets.take(device_id, self.config.clock.now_ms())
        if wait_s:
            limit = self.config.rate_limit
            raise InputError(429, "rate_limited", f"device {device_id} sent more than "
                             f"{limit.burst} requests at once or {limit.per_minute:g} a "
                             f"minute; retry in {wait_s} s", retry_after_s=wait_s)
        return device_id, known[1]

    # -- endpoints -------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return _json(200, {"status": "ok", "schema": self.config.schema,
                           "now_ms": self.config.clock.now_ms()})

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.text(), 200,
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        return _json(200, document(self.config))

    async def register(self, request: Request) -> Response:
        data = await self.json_body(request, ("user_id",))
        # absent: the backend names the device; present, it must be a valid id ("" too)
        device_id = (check_id(data["device_id"], "$.device_id") if "device_id" in data
                     else f"dev-{uuid.uuid4()}")
        secret = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn:
            created = await store.register_device(conn, device_id, data["user_id"], secret,
                                                  self.config.clock.now_ms())
        if not created:
            raise InputError(409, "device_exists", f"device {device_id} is already registered")
        self.metrics.rows.labels("device_secrets").inc()
        return _json(201, {"device_id": device_id, "user_id": data["user_id"], "secret": secret})

    async def upload(self, request: Request) -> Response:
        device_id, user_id = await self.authenticate(request)
        raw = await self.body(request)
        now = self.config.clock.now_ms()
        envelope, payload = decode_upload(raw, now, self.config.max_future_ms)
        if envelope.device_id != device_id:
            raise InputError(403, "device_mismatch", f"body is for device {envelope.device_id}, "
                             f"credentials for {device_id}", "$.device_id")
        if envelope.user_id != user_id:
            raise InputError(403, "user_mismatch", f"device {device_id} belongs to another "
                             "user", "$.user_id")
        key = request.headers.get("idempotency-key")
        if key is not None and key != envelope.batch_id:
            raise InputError(422, "idempotency_key_mismatch",
                             "Idempotency-Key must equal the body's batch_id")
        async with self.pool.acquire() as conn:
            stored = await store.store_upload(
                conn, self.config.schema, device_id=device_id, user_id=user_id,
                batch_id=envelope.batch_id, seq=envelope.seq, timestamp_ms=payload.timestamp,
                payload=bytes(envelope.payload), samples=len(payload.batch),
                body_sha256=hashlib.sha256(raw).digest(), now_ms=now)
        if stored.replayed:
            self.metrics.uploads.labels("replayed").inc()
        else:
            self.metrics.uploads.labels("stored").inc()
            self.metrics.rows.labels("sensor_batches").inc()
        return _json(201, {"batch_id": envelope.batch_id, "received_at": stored.received_at_ms},
                     {"Idempotent-Replayed": "true"} if stored.replayed else None)

    async def get_pot(self, request: Request) -> Response:
        _, user_id = await self.authenticate(request)
        async with self.pool.acquire() as conn:
            state = await store.get_pot(conn, user_id, self.config.clock.now_ms(),
                                        self.config.pot)
        return _json(200, pot_rules.as_json(state))

    async def pot_upload(self, request: Request) -> Response:
        _, user_id = await self.authenticate(request)
        data = await self.json_body(request, ("batch_id",))
        return await self._change_pot(user_id, "upload", data["batch_id"])

    async def pot_claim(self, request: Request) -> Response:
        _, user_id = await self.authenticate(request)
        key = request.headers.get("idempotency-key")
        if not key:
            raise InputError(422, "missing_idempotency_key",
                             "a claim needs an Idempotency-Key header")
        return await self._change_pot(user_id, "claim", check_id(key, "Idempotency-Key"))

    async def set_clock(self, request: Request) -> Response:
        """Simulation control (only with `sim_control`): put the backend on the fleet's
        simulated time, `{"origin_ms": int, "speed": float}` from now on."""
        data = await self.json_body(request, ())
        origin, speed = data.get("origin_ms"), data.get("speed", 1.0)
        if not isinstance(origin, int) or not isinstance(speed, int | float) or speed <= 0:
            raise InputError(422, "invalid_field", "origin_ms must be an integer and speed "
                             "a positive number")
        self.config.clock.restart_at(origin, float(speed))
        return _json(200, {"now_ms": self.config.clock.now_ms()})

    async def _change_pot(self, user_id: str, kind: str, key: str) -> Response:
        now = self.config.clock.now_ms()
        async with self.pool.acquire() as conn:
            try:
                state, replayed = await store.change_pot(conn, user_id, kind, key, now,
                                                         self.config.pot)
            except InputError as exc:
                current = await store.get_pot(conn, user_id, now, self.config.pot)
                self.metrics.rejected.labels(exc.code).inc()
                return _json(exc.status, {**exc.body(), "state": pot_rules.as_json(current)})
        if not replayed:
            self.metrics.rows.labels("pot_events").inc()
        return _json(200, pot_rules.as_json(state),
                     {"Idempotent-Replayed": "true"} if replayed else None)


async def _keep_session(conn: Any) -> None:
    """No reset query when a connection goes back to the pool: asyncpg's default (unlock
    advisory locks, CLOSE ALL, UNLISTEN, RESET ALL) is a second round trip per request,
    and this app leaves no session state (its advisory locks are transaction-scoped)."""


async def init_connection(conn: Any) -> None:
    """Every backend connection (and a bulk loader that must store what the API stores):
    JSONB passes as the JSON text's bytes, unchanged."""
    # jsonb in binary form is a version byte and the JSON text: the phone's bytes are
    # stored without being decoded and re-encoded in Python
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda value: b"\x01" + value,
                              decoder=lambda data: data[1:])


def create_app(config: BackendConfig) -> Starlette:
    """The ASGI app; the database is migrated and the pool opened at startup."""
    backend = Backend(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        backend.start_jobs()
        try:
            yield
        finally:
            await backend.stop()

    r = backend.route
    routes = [
        Route("/healthz", r("healthz", backend.healthz), methods=["GET"]),
        Route("/metrics", r("metrics", backend.prometheus), methods=["GET"]),
        Route("/openapi.json", r("openapi", backend.openapi), methods=["GET"]),
        Route("/devices", r("devices", backend.register), methods=["POST"]),
        Route("/upload", r("upload", backend.upload), methods=["POST"]),
        Route("/daily-pot", r("daily_pot", backend.get_pot), methods=["GET"]),
        Route("/daily-pot/upload", r("daily_pot_upload", backend.pot_upload), methods=["POST"]),
        Route("/daily-pot/claim", r("daily_pot_claim", backend.pot_claim), methods=["POST"]),
    ]
    if config.sim_control:
        routes.append(Route("/_sim/clock", r("sim_clock", backend.set_clock), methods=["POST"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.backend = backend
    return app
