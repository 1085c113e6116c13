"""The OpenAPI 3.1 document the app serves at /openapi.json: paths written here,
request schemas generated from the msgspec types that validate them (one source)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator import __version__
from simulator.backend.payload import id_schema, schemas

if TYPE_CHECKING:
    from simulator.backend.app import BackendConfig

_AUTH: list[dict[str, list[str]]] = [{"deviceSecret": [], "deviceId": []}]
_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema or _ERROR}}
    return {"description": description, "content": content}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "malformed JSON", 401: "missing or wrong credentials (nothing written)",
            403: "credentials of another device or user", 409: "conflict with the state",
            413: "body too large", 422: "invalid field (the body names it)",
            429: "rate_limited: the device is past its rate limit (nothing written)",
            503: "database_unavailable or pot_contended (nothing written)"}
    answers = {str(c): _answer(text[c]) for c in codes}
    for c in {429, 503} & set(codes):  # when to come back
        answers[str(c)]["headers"] = {"Retry-After": {
            "description": "seconds (of the backend's clock) before a retry can succeed",
            "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return answers


def _limits(config: BackendConfig) -> str:
    limit = config.rate_limit
    if not limit.enabled:
        return "No rate limit."
    return (f"Rate limit per device: {limit.burst} requests at once, then "
            f"{limit.per_minute:g} a minute (429 with Retry-After past it).")


def document(config: BackendConfig) -> dict[str, Any]:
    """The API description for this instance's limits."""
    pot = {"$ref": "#/components/schemas/PotState"}
    components = schemas()
    components["Error"] = {"type": "object", "required": ["error", "detail"], "properties": {
        "error": {"type": "string", "description": "stable code, e.g. invalid_field"},
        "detail": {"type": "string"}, "path": {"type": "string", "description": "JSONPath"},
        "state": pot}}
    components["PotState"] = {"type": "object", "properties": {
        "user_id": {"type": "string"}, "total_credits": {"type": "integer"},
        "uploads_today": {"type": "integer"}, "uploads_required": {"type": "integer"},
        "is_unlocked": {"type": "boolean", "description": "uploads_today >= uploads_required"},
        "has_claimed_today": {"type": "boolean"},
        "last_claim_date": {"type": ["string", "null"], "format": "date"},
        "pot_day": {"type": "string", "format": "date", "description": "UTC day"},
        "version": {"type": "integer", "description": "grows with every change"},
        "backend_updated_at": {"type": "integer", "description": "epoch ms of the last change"}}}
    upload_body = {"$ref": "#/components/schemas/Envelope"}
    an_id = id_schema()
    return {
        "openapi": "3.1.0",
        "info": {"title": "GreenGains reference backend (greengains-sim)",
                 "version": __version__,
                 "description": f"Schema variant {config.schema}. Bodies up to "
                                f"{config.max_body_bytes} bytes; a batch timestamp may be at "
                                f"most {config.max_future_ms} ms ahead of the server clock. "
                                f"{_limits(config)} See docs/api.md."},
        "components": {"schemas": components, "securitySchemes": {
            "deviceSecret": {"type": "http", "scheme": "bearer",
                             "description": "the secret returned once by POST /devices"},
            "deviceId": {"type": "apiKey", "in": "header", "name": "X-Device-Id"}}},
        "paths": _paths(an_id, pot, upload_body),
    }


def _paths(an_id: dict[str, object], pot: dict[str, str],
           upload_body: dict[str, str]) -> dict[str, Any]:
    """The API's operations (`document` adds the components they refer to)."""
    return {
        "/devices": {"post": {
            "summary": "Register a device: its id and secret, returned once",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["user_id"], "properties": {
                    "user_id": an_id,
                    "device_id": {**an_id, "description": "generated when absent"}}}}}},
            "responses": {"201": _answer("registered", {"type": "object"}),
                          **_errors(400, 409, 413, 422)}}},
        "/upload": {"post": {
            "summary": "Store one 5-minute batch (review §4.2), idempotent by batch_id",
            "security": _AUTH,
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string"},
                            "description": "must equal batch_id when given"}],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": upload_body}}},
            "responses": {"201": _answer("stored, or a replay of a stored batch "
                                         "(header Idempotent-Replayed: true)",
                                         {"type": "object"}),
                          **_errors(400, 401, 403, 413, 422, 429, 503)}}},
        "/daily-pot": {"get": {"summary": "The user's pot today", "security": _AUTH,
                               "responses": {"200": _answer("state", pot),
                                             **_errors(401, 429, 503)}}},
        "/daily-pot/upload": {"post": {
            "summary": "Count one upload towards today's pot (once per batch_id)",
            "security": _AUTH,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["batch_id"],
                "properties": {"batch_id": an_id}}}}},
            "responses": {"200": _answer("state", pot),
                          **_errors(400, 401, 422, 429, 503)}}},
        "/daily-pot/claim": {"post": {
            "summary": "Claim today's unlocked pot, once a day", "security": _AUTH,
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                            "schema": an_id}],
            "responses": {"200": _answer("claimed (or the replay of this claim)", pot),
                          **_errors(401, 429, 503),
                          "409": _answer("already_claimed (today's pot is claimed) or "
                                         "pot_locked (fewer uploads today than "
                                         "required): the body carries the pot's state"),
                          "422": _answer("idempotency_key_reused, or an invalid "
                                         "Idempotency-Key")}}},
        "/healthz": {"get": {"summary": "Database reachable",
                             "responses": {"200": _answer("ok", {"type": "object"}),
                                           **_errors(503)}}},
        "/metrics": {"get": {"summary": "Prometheus text format",
                             "responses": {"200": {"description": "metrics"}}}},
    }
