"""`ggsim run`: parse the options of a scenario run and hand it to its composition root,
`simulator.run_command` (which runs, writes the report and judges)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from simulator.commands import arguments
from simulator.commands.arguments import Subparsers

if TYPE_CHECKING:
    from simulator.run_command import LiveRequest


def add_parser(sub: Subparsers) -> None:
    """`ggsim run`'s options."""
    fleet = sub.add_parser(
        "run",
        help="run a scenario: a fleet of phones against the stack, ending in a verdict",
        description="Run a scenario (a name from scenarios/ or a TOML file; default smoke) "
                    "on the embedded stack or --target, reconcile the three ledgers and "
                    "judge the thresholds. Exit status: 0 pass, 1 thresholds or invariants "
                    "broken, 2 usage or environment error, 130 interrupted.",
    )
    fleet.add_argument("scenario", nargs="?", default="smoke",
                       help="scenario name or .toml path (default: smoke)")
    fleet.add_argument("--seed", type=arguments.seed, help="override the scenario's seed")
    fleet.add_argument("--profile", help="override the app profile: v2, v3 or v2+<fix>")
    fleet.add_argument("--schema", choices=("as-is", "recommended"),
                       help="override the backend schema variant")
    fleet.add_argument("--speed", type=arguments.positive_float, help="override the speed")
    fleet.add_argument("--phones", type=arguments.positive_int, help="override the fleet size")
    fleet.add_argument("--target", metavar="URL",
                       help="drive this server instead of the embedded stack")
    fleet.add_argument("--database-url", metavar="URL",
                       help="the PostgreSQL of the stack (embedded: use it instead of "
                            "starting one; --target: read the backend ledger from it)")
    fleet.add_argument("--report", metavar="DIR",
                       help="where the trace, summary.json, timeline.json and "
                            "report.html go "
                            "(default ggsim-report/<scenario>)")
    fleet.add_argument("--phone-dir", metavar="DIR",
                       help="where the fully simulated phones' SQLite files live during "
                            "the run (default /dev/shm when it exists: the host's fsync "
                            "is not the phone's flash)")
    fleet.add_argument("--live", action="store_true",
                       help="a real phone joins as one more fully simulated phone: its "
                            "Sensor Logger HTTP Push is received (see ggsim live); the run "
                            "starts now, at speed 1")
    fleet.add_argument("--live-host", default="127.0.0.1",
                       help="with --live: address to listen on (default 127.0.0.1)")
    fleet.add_argument("--live-port", type=arguments.port, default=8000,
                       help="with --live: port to listen on (default 8000)")
    fleet.add_argument("--live-out", metavar="RECORDING.zip",
                       help="with --live: write the live phone's stream as a zip export")
    fleet.add_argument("--json", action="store_true", help="print the summary as JSON")
    fleet.add_argument("--progress", choices=arguments.PROGRESS_CHOICES, default="auto",
                       help="live progress on stderr (auto: when it is a terminal)")


def run(args: argparse.Namespace) -> int:
    """The scenario with the options' overrides (`--phones` also caps `full_phones`)."""
    from simulator.fleet import scenario as scenarios
    from simulator.run_command import execute

    chosen = scenarios.load(args.scenario)
    overrides = {"seed": args.seed, "profile": args.profile, "schema": args.schema,
                 "speed": args.speed}
    if args.phones is not None:
        fleet = dict(vars_of(chosen.fleet), phones=args.phones)
        if chosen.fleet.full_phones is not None:
            fleet["full_phones"] = min(chosen.fleet.full_phones, args.phones)
        overrides["fleet"] = fleet
    chosen = scenarios.override(chosen, **overrides)
    show = arguments.show_progress(args.progress)
    return execute(chosen, target=args.target, database_url=args.database_url,
                   report=args.report, json_output=args.json, progress=show,
                   phone_dir=args.phone_dir, live=_live(args))


def _live(args: argparse.Namespace) -> LiveRequest | None:
    """`--live` and its options (which without it are a usage error, not ignored)."""
    from simulator.errors import UsageError
    from simulator.run_command import LiveRequest

    if not args.live:
        for name, default in (("live_host", "127.0.0.1"), ("live_port", 8000),
                              ("live_out", None)):
            if getattr(args, name) != default:
                raise UsageError(f"--{name.replace('_', '-')} has no effect without --live")
        return None
    return LiveRequest(args.live_host, args.live_port, args.live_out)


def vars_of(struct: object) -> dict[str, object]:
    """A msgspec struct's fields as a dict of builtins (to override some of them)."""
    import msgspec
    return dict(msgspec.to_builtins(struct))
