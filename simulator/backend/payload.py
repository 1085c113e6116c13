"""The upload body and its validation (review §4.2), with msgspec.

msgspec decodes and validates in one pass in C (types, ranges, lengths, patterns), which
is what the ingest path needs at thousands of uploads a second; its error messages name
the JSON path (`... - at $.payload.batch[3].accel`). The payload is kept as the raw
bytes the phone sent (`msgspec.Raw`) and stored as such, so what the backend holds is
byte for byte what was acknowledged.

Invariants of an accepted upload: every type and range below holds; `summary.count`
equals the number of readings; the window timestamp is after 2020-01-01 and at most
`max_future_ms` ahead of the server clock; every reading's `t` lies within an hour of
the window.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from simulator.errors import InputError as InputError

EARLIEST_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MAX_READINGS = 300  # 10x the 30 readings of a 5-minute window at 10 s
READING_WINDOW_MS = 3_600_000
GEOHASH = r"^[0-9b-hjkmnp-z]{1,12}$"

Lux = Annotated[float, Meta(ge=0.0, le=200_000.0)]
Accel = Annotated[float, Meta(ge=-160.0, le=160.0)]  # 16 g
Gyro = Annotated[float, Meta(ge=-35.0, le=35.0)]  # 2,000 deg/s
Hpa = Annotated[float, Meta(ge=300.0, le=1_100.0)]
EpochMs = Annotated[int, Meta(ge=EARLIEST_MS, le=4_102_444_800_000)]
Vector = Annotated[list[float | None], Meta(min_length=3, max_length=3)]
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"  # device, user, batch ids and claim keys alike
ID_MAX = 128
Id = Annotated[str, Meta(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
Uuid = Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")]


class MinMax(msgspec.Struct):
    avg: float | None = None
    min: float | None = None
    max: float | None = None


class Summary(msgspec.Struct):
    count: Annotated[int, Meta(ge=0, le=MAX_READINGS)]
    period_start: str | None = None
    period_end: str | None = None
    light: MinMax | None = None
    accel_rms: Annotated[float, Meta(ge=0.0)] | None = None
    gyro_rms: Annotated[float, Meta(ge=0.0)] | None = None
    pressure: MinMax | None = None


class Reading(msgspec.Struct):
    t: EpochMs
    light: Lux | None = None
    accel: Vector | None = None
    gyro: Vector | None = None
    pressure: Hpa | None = None


class Location(msgspec.Struct):
    lat: Annotated[float, Meta(ge=-90.0, le=90.0)]
    lon: Annotated[float, Meta(ge=-180.0, le=180.0)]
    accuracy_m: Annotated[float, Meta(ge=0.0, le=100_000.0)] | None = None


class Payload(msgspec.Struct):
    """Review §4.2's batch_json. Unknown keys are kept (the review values JSONB's room
    for new optional fields), known keys must have their type and range."""

    timestamp: EpochMs
    summary: Summary
    batch: Annotated[list[Reading], Meta(max_length=MAX_READINGS)]
    geohash: Annotated[str, Meta(pattern=GEOHASH)]
    location: Location | None = None
    battery_level: Annotated[int, Meta(ge=0, le=100)] | None = None
    is_charging: bool | None = None


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """What the phone POSTs to /upload (one line of `ggsim generate`)."""

    device_id: Id
    user_id: Id
    batch_id: Uuid
    payload: msgspec.Raw
    seq: Annotated[int, Meta(ge=0)] | None = None


_envelope = msgspec.json.Decoder(Envelope)
# U+0000 escaped in JSON text (not preceded by an escaping backslash): PostgreSQL's json
# and jsonb refuse it ("unsupported Unicode escape sequence"), so it is refused here
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_ID = re.compile(ID_PATTERN)
_payload = msgspec.json.Decoder(Payload)
_PATH = re.compile(r" - at `(\$[^`]*)`$")


def _invalid(exc: msgspec.MsgspecError, prefix: str) -> InputError:
    text = str(exc).replace("`$", f"`{prefix}", 1)
    if isinstance(exc, msgspec.ValidationError):
        match = _PATH.search(text)
        path = match[1] if match else prefix
        return InputError(422, "invalid_field", text, path)
    return InputError(400, "malformed_json", f"{text} (in {prefix})")


def _too_deep(path: str) -> InputError:
    return InputError(422, "invalid_field", "JSON nested deeper than the decoder's limit",
                      path)


def decode_upload(body: bytes, now_ms: int, max_future_ms: int) -> tuple[Envelope, Payload]:
    """Validate an upload body against the invariants of this module's docstring."""
    try:
        envelope = _envelope.decode(body)
    except msgspec.MsgspecError as exc:
        raise _invalid(exc, "$") from None
    except RecursionError:  # msgspec's own depth limit, met before any type is checked
        raise _too_deep("$") from None
    try:
        payload = _payload.decode(envelope.payload)
    except msgspec.MsgspecError as exc:
        raise _invalid(exc, "$.payload") from None
    except RecursionError:
        raise _too_deep("$.payload") from None
    if _NUL_ESCAPE.search(bytes(envelope.payload)):
        raise InputError(422, "invalid_field", "the payload holds U+0000, which PostgreSQL "
                         "cannot store in JSON", "$.payload")
    if payload.summary.count != len(payload.batch):
        raise InputError(422, "invalid_field", f"summary.count is {payload.summary.count} but "
                         f"batch has {len(payload.batch)} readings", "$.payload.summary.count")
    if payload.timestamp > now_ms + max_future_ms:
        raise InputError(422, "timestamp_in_future",
                         f"timestamp {payload.timestamp} is {payload.timestamp - now_ms} ms "
                         f"ahead of the server clock (at most {max_future_ms} ms allowed)",
                         "$.payload.timestamp")
    for i, reading in enumerate(payload.batch):
        if abs(reading.t - payload.timestamp) > READING_WINDOW_MS:
            raise InputError(422, "invalid_field", f"reading t {reading.t} is more than an hour "
                             f"from the window timestamp {payload.timestamp}",
                             f"$.payload.batch[{i}].t")
    return envelope, payload


def schemas() -> dict[str, object]:
    """JSON Schema components of the request bodies (for the OpenAPI document)."""
    (_, components) = msgspec.json.schema_components(
        [Envelope, Payload], ref_template="#/components/schemas/{name}")
    # the envelope keeps its payload raw (stored as sent) but validates it as a Payload
    envelope: dict[str, Any] = components["Envelope"]
    envelope["properties"]["payload"] = {"$ref": "#/components/schemas/Payload"}
    return components


def id_schema() -> dict[str, object]:
    """The JSON Schema of an id (`check_id`'s rule)."""
    return {"type": "string", "minLength": 1, "maxLength": ID_MAX, "pattern": ID_PATTERN}


def check_id(value: object, path: str) -> str:
    """`value` as an id (device, user, batch, claim key: 1-128 of [A-Za-z0-9._:-], the
    upload envelope's rule), else a 422 naming `path`."""
    if not isinstance(value, str) or not 0 < len(value) <= ID_MAX or not _ID.match(value):
        raise InputError(422, "invalid_field", f"{path.removeprefix('$.')} must be 1-{ID_MAX} "
                         "characters of A-Z a-z 0-9 . _ : -", path)
    return value
