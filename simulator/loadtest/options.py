"""The load test's own options, added to locust's parser (so they show in the web UI and
travel from the master to its workers with every spawn), and what they make: the
scenario, the gates and where the summary goes.

The scenario gives the simulated start, duration, speed, seed, profile and schema, as for
`ggsim run`; the options override it. Its network and fault sections do not apply: a load
test's network is the real one.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from simulator.backend.postgres import check_url
from simulator.capacity.slo import SloThresholds
from simulator.errors import UsageError
from simulator.fleet import scenario as scenarios
from simulator.fleet.scenario import Scenario
from simulator.instants import HOUR_MS
from simulator.loadtest.diurnal import DiurnalPlan
from simulator.loadtest.gates import Gates
from simulator.loadtest.ramp import RampPlan

DEFAULT_FLEET = 100_000  # phone indices users are drawn from (the scenario file's maximum)


def add_options(parser: Any) -> None:
    """Add the options to locust's parser (`init_command_line_parser`)."""
    group = parser.add_argument_group("ggsim", "the simulated phones (greengains-sim)")
    _add(group, "--scenario", default="smoke",
         help="scenario name or .toml path: start, duration, speed, seed, "
              "profile, schema, thresholds (default smoke)")
    _add(group, "--seed", type=int, default=None, help="override the scenario's seed")
    _add(group, "--speed", type=float, default=None,
         help="simulated seconds per real second (the phones' cadence and "
              "the backend's clock), overriding the scenario's")
    _add(group, "--phones", type=int, default=DEFAULT_FLEET,
         help="the fleet users are drawn from: user k of the cluster is a "
              "phone below this index (default 100000)")
    # locust has its own --profile (a name for the run)
    _add(group, "--app-profile", default=None,
         help="the app's fix profile: v2, v3 or v2+<fix>")
    _add(group, "--schema", default=None, choices=("as-is", "recommended"),
         help="the backend's schema variant (the bundled backend, the "
              "exactly-once check)")
    _add(group, "--database-url", default="", secret=True,
         help="the backend's PostgreSQL, for the exactly-once check (the "
              "bundled backend's is known)")
    _add(group, "--phone-sqlite", choices=("memory", "file"), default="memory",
         help="each phone's database: in memory (pure load, the default) or "
              "a real file, its statements on native threads so a lock wait "
              "never stalls the other users")
    _add(group, "--phone-dir", default="",
         help="where the phones' files go with --phone-sqlite file (default: "
              "a temporary directory, removed at the end)")
    _add(group, "--summary-dir", default="ggsim-locust-report",
         help="where summary.json goes (what ggsim compare reads)")
    _add(group, "--boundary", choices=("phased", "aligned"), default="phased",
         help="when phones send: at their own phase in the 5-minute window "
              "(the app, the default) or all on the 5-minute boundaries (a "
              "thundering herd)")
    _add(group, "--burst-users", type=int, default=100,
         help="loadtests/boundary_burst.py: phones, all started at once")
    _add(group, "--burst-s", type=float, default=60.0,
         help="loadtests/boundary_burst.py: seconds they run")
    ramp = parser.add_argument_group("ggsim ramp", "loadtests/ramp_to_break.py's steps and "
                                     "where a step breaks (ggsim capacity's definition)")
    _add(ramp, "--ramp-first-users", type=int, default=10, help="phones in step 1")
    _add(ramp, "--ramp-step-users", type=int, default=10, help="phones added a step")
    _add(ramp, "--ramp-step-s", type=float, default=20.0, help="seconds a step")
    _add(ramp, "--ramp-settle-s", type=float, default=5.0,
         help="seconds into a step before it is measured (joining phones)")
    _add(ramp, "--ramp-max-steps", type=int, default=20, help="steps at most")
    _add(ramp, "--ramp-p99-ms", type=float, default=500.0,
         help="a step breaks above this upload p99 (ms)")
    _add(ramp, "--ramp-error-share", type=float, default=0.01,
         help="a step breaks above this share of 5xx, timeouts and "
              "connection errors")
    diurnal = parser.add_argument_group(
        "ggsim diurnal", "loadtests/diurnal.py: a simulated day, the phones online following "
        "the persona mix's awake share")
    _add(diurnal, "--diurnal-phones", type=int, default=10_000,
         help="the fleet's phones, all online at the day's peak")
    _add(diurnal, "--diurnal-hours", type=int, default=24,
         help="simulated hours from the scenario's start (at most its "
              "duration)")
    _add(diurnal, "--diurnal-floor", type=float, default=0.0,
         help="the share of phones online at any hour (phones on Wi-Fi "
              "overnight), 0-1")
    for name, what in (("p50", "p50"), ("p95", "p95"), ("p99", "p99")):
        _add(group, f"--gate-{name}-ms", type=float, default=None,
             help=f"fail when the upload {what} latency is above this (ms)")
    _add(group, "--gate-error-rate", type=float, default=0.01,
         help="fail when failed requests / requests is above this")
    _add(group, "--gate-min-rps", type=float, default=None,
         help="fail when requests per second over the run is below this")


def _add(group: Any, *flags: str, secret: bool = False, **kwargs: Any) -> None:
    """An option in `group`, shown in locust's web UI. Locust shows an option only when
    its parser's own `add_argument` made it (which marks the action); an argument group's
    `add_argument` is argparse's, so the marks are set here. A secret is masked there."""
    action = group.add_argument(*flags, **kwargs)
    action.include_in_web_ui = True
    action.is_secret = secret
    action.is_required = False
    action.is_multiple = False


@dataclass(frozen=True)
class LoadSettings:
    """What the options make (see the module docstring)."""

    scenario: Scenario
    fleet_phones: int
    gates: Gates
    database_url: str
    summary_dir: str
    phone_sqlite: str = "memory"
    phone_dir: str = ""
    ramp: RampPlan = field(default_factory=RampPlan)
    slo: SloThresholds = field(default_factory=SloThresholds)
    aligned: bool = False
    burst_users: int = 100
    burst_s: float = 60.0
    diurnal: DiurnalPlan = field(default_factory=DiurnalPlan)


def from_the_web_form(options: argparse.Namespace | Any) -> argparse.Namespace:
    """`options` with the values locust's web UI sent as text made what the command line
    makes. The UI sends every custom field as text and converts it to the type of the
    option's current value; an option whose default is None (the scenario's own value
    stands) has no type to convert to, so it arrives as a string, or as "" when the field
    was left empty. Here "" is None again and any other text goes through the option's
    own argparse type and choices. A bad value is a UsageError naming the option."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    add_options(parser)
    values = dict(vars(options))
    for dest, default in vars(parser.parse_args([])).items():
        value = values.get(dest, default)
        if default is not None or not isinstance(value, str):
            continue
        if value == "":
            values[dest] = None
            continue
        flag = "--" + dest.replace("_", "-")
        try:
            values[dest] = getattr(parser.parse_args([flag, value]), dest)
        except argparse.ArgumentError as exc:
            raise UsageError(f"{flag} {value!r}: {exc.message}") from None
    return argparse.Namespace(**values)


def settings(options: argparse.Namespace | Any) -> LoadSettings:
    """The settings from locust's parsed options, from its command line or its web UI's
    form (a UsageError names a bad one)."""
    options = from_the_web_form(options)
    chosen = scenarios.load(options.scenario)
    if options.database_url:  # syntax only: it is connected to when the test ends
        check_url(options.database_url)
    chosen = scenarios.override(chosen, seed=options.seed, speed=options.speed,
                                profile=options.app_profile, schema=options.schema)
    t = chosen.thresholds
    gates = Gates(p50_ms=options.gate_p50_ms, p95_ms=options.gate_p95_ms,
                  p99_ms=options.gate_p99_ms if options.gate_p99_ms is not None
                  else t.p99_upload_latency_ms,
                  max_error_rate=options.gate_error_rate, min_rps=options.gate_min_rps,
                  min_delivered_fraction=t.min_delivered_fraction)
    ramp = RampPlan(options.ramp_first_users, options.ramp_step_users, options.ramp_step_s,
                    options.ramp_settle_s, options.ramp_max_steps)
    slo = SloThresholds(latency_ms_p99_max=options.ramp_p99_ms,
                        error_share_max=options.ramp_error_share)
    hours = min(options.diurnal_hours, math.ceil(chosen.duration_s * 1000 / HOUR_MS))
    diurnal = DiurnalPlan(options.diurnal_phones, hours, options.diurnal_floor)
    if chosen.fleet.personas:
        diurnal = dataclasses.replace(diurnal, mix=dict(chosen.fleet.personas))
    return LoadSettings(chosen, int(options.phones), gates, options.database_url or "",
                        options.summary_dir, options.phone_sqlite, options.phone_dir or "",
                        ramp, slo, options.boundary == "aligned", options.burst_users,
                        options.burst_s, diurnal)
