"""The fault options of a scenario: what a scenario file says about how the world
misbehaves (network windows and latency, backend errors and restarts, the phones' own
faults), as strictly validated msgspec structs (unknown keys are errors).

They live beside the fault models that read them (`faults.network`, `faults.phone`), so
`faults/` needs nothing of the fleet; `simulator.fleet.scenario` builds a scenario out of
them and still exports every name. Times are simulated seconds from the scenario's start.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Seconds = Annotated[float, Meta(ge=0.0)]
Share = Annotated[float, Meta(ge=0.0, le=1.0)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Offline(_Strict):
    """A share of the phones loses the network for a while (a subway ride, a flight)."""

    at_s: Seconds
    duration_s: Seconds
    share: Share = 1.0


class ServerErrors(_Strict):
    """The backend answers `status` to a share of requests for a while."""

    at_s: Seconds
    duration_s: Seconds
    probability: Probability = 1.0
    status: Annotated[int, Meta(ge=500, le=599)] = 503


class Restart(_Strict):
    """The backend process stops at `at_s` and is back after `down_s`: with SIGTERM it
    finishes what it is answering first; with SIGKILL it dies mid-request, so a request
    may be cut before its commit, or after it with its 2xx never sent."""

    at_s: Seconds
    down_s: Seconds = 5.0
    signal: Literal["SIGTERM", "SIGKILL"] = "SIGTERM"


class DatabaseRestart(_Strict):
    """The backend's PostgreSQL shuts down at `at_s` in immediate mode (its processes
    quit at once, no checkpoint: the next start recovers from the WAL) and is back after
    `down_s`; the backend process stays up. The embedded database only."""

    at_s: Seconds
    down_s: Seconds = 5.0


class Storage(_Strict):
    """A seeded share of the fully simulated phones cannot write their app's file from
    `at_s` for `duration_s`: `full` (the file cannot grow: SQLite answers "database or
    disk is full" when it needs a new page) or `read_only` ("attempt to write a readonly
    database"). Reads go on."""

    at_s: Seconds
    duration_s: Seconds
    kind: Literal["full", "read_only"] = "full"
    share: Share = 1.0


class Doze(_Strict):
    """A share of the phones dozes (Android's Doze: the screen off, the phone still):
    their timers and jobs are deferred to the window's end and run together there."""

    at_s: Seconds
    duration_s: Seconds
    share: Share = 1.0


class ClockJump(_Strict):
    """A share of the phones' wall clocks jump by `jump_s` (negative: backwards), as an
    NTP correction or a user setting the time does; simulated time itself goes on."""

    at_s: Seconds
    jump_s: float
    share: Share = 1.0


class Network(_Strict):
    """Per-request latency (lognormal, simulated ms), loss and the client timeout."""

    latency_ms_median: Annotated[float, Meta(ge=0.0)] = 60.0
    latency_ms_p99: Annotated[float, Meta(ge=0.0)] = 400.0
    loss_probability: Probability = 0.0
    timeout_s: Annotated[float, Meta(gt=0.0)] = 10.0
    offline: list[Offline] = []


class Faults(_Strict):
    """How the world misbehaves besides the network."""

    server_errors: list[ServerErrors] = []
    restarts: list[Restart] = []
    database_restarts: list[DatabaseRestart] = []
    dual_writer_storms_per_hour: Annotated[float, Meta(ge=0.0, le=120.0)] = 0.0
    app_kill_probability: Probability = 0.0  # per operation of a fully simulated phone
    reboots_per_day: Annotated[float, Meta(ge=0.0, le=48.0)] = 0.0  # per full phone
    reboot_down_s: Annotated[float, Meta(ge=1.0, le=86_400.0)] = 120.0
    doze: list[Doze] = []
    storage: list[Storage] = []
    clock_jumps: list[ClockJump] = []
