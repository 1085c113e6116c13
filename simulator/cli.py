"""The `ggsim` command line: a thin layer over the library.

Exit status: 0 success, 1 a check failed (later subcommands), 2 usage or environment error,
130 interrupted (Ctrl-C or SIGTERM; what the command started is stopped and removed).
`ggsim serve` is the exception: Ctrl-C and SIGTERM are how it is meant to stop, so 0.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from simulator import __version__
from simulator.errors import SimulatorError, UsageError
from simulator.instants import DEFAULT_START, format_instant, parse_instant

if TYPE_CHECKING:
    from simulator.phone.profiles import FixProfile

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
MAX_HOURS = 8784


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _hours(text: str) -> float:
    value = _positive_float(text)
    if value > MAX_HOURS:
        raise argparse.ArgumentTypeError(f"at most {MAX_HOURS} hours (a leap year), got {text}")
    return value


def _seed(text: str) -> int:
    try:  # decimal, or 0x.. / 0o.. / 0b..
        value = int(text, 0) if text[1:2].isalpha() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `ggsim` (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="ggsim",
        description="GreenGains hardware-in-the-loop simulator and load tester.",
    )
    parser.add_argument("--version", action="version", version=f"ggsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="write a fleet's 5-minute uploads as JSON Lines, in time order",
        description="Write the uploads of a simulated fleet (or a replayed phone recording) "
                    "as JSON Lines: one upload envelope per line, in time order. Same "
                    "arguments, same bytes.",
    )
    gen.add_argument("--phones", type=_positive_int, default=10, help="fleet size (default 10)")
    gen.add_argument("--hours", type=_hours, default=1.0,
                     help="simulated hours to generate (default 1)")
    gen.add_argument("--seed", type=_seed, default=0, help="run seed (default 0)")
    gen.add_argument("--start", default=DEFAULT_START,
                     help=f"first instant, ISO-8601 (default {DEFAULT_START})")
    gen.add_argument("--out", default="-",
                     help="output path; '-' for stdout (default); a .gz name compresses")
    gen.add_argument("--number-format", default="float32",
                     choices=["float32", "float64", *(f"round{n}" for n in range(10)),
                              "orgjson", "orgjson64"],
                     metavar="FORMAT",
                     help="how floats are written: float32 (default), float64, round0..round9, "
                          "orgjson (exactly as Android's org.json writes the app's Floats: "
                          "150, 1.0652645E-4) or orgjson64 (the same with values widened to "
                          "Double); see docs/payload.md")
    gen.add_argument("--no-imperfections", action="store_true",
                     help="perfect streams: no missing, stuck, duplicated readings or kills")
    gen.add_argument("--imperfection", action="append", default=[], metavar="NAME=VALUE",
                     help="set one imperfection rate, e.g. missing_probability=0.01 or "
                          "kills_per_day=2 (repeatable; applied after --no-imperfections)")
    gen.add_argument("--from-recording", metavar="ZIP",
                     help="replay a Sensor Logger export instead of synthetic phones")
    gen.add_argument("--speed", type=_positive_float, default=1.0,
                     help="with --from-recording: playback speed factor (default 1)")
    gen.add_argument("--chunk-phones", type=_positive_int, default=1000,
                     help="phones generated together (memory vs speed; the output is the "
                          "same bytes whatever the chunking)")
    gen.add_argument("--workers", type=_positive_int, default=None,
                     help="worker processes (default: one per CPU; output is the same)")
    gen.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                     help="progress bar on stderr (auto: when stderr is a terminal)")
    races = sub.add_parser(
        "races",
        help="hunt the dual-writer races on real SQLite files; exit 1 if one is found",
        description="Explore the interleavings of the app's racing operations on real "
                    "SQLite files and report every broken invariant with the schedule that "
                    "replays it. Exit status: 0 none found, 1 a race found, 2 usage error.",
    )
    races.add_argument("--profile", default="v2", help="v2 (default), v3 or v2+<fix>")
    races.add_argument("--fix", action="append", default=[], metavar="FIX",
                       help="add a fix to the profile (repeatable)")
    races.add_argument("--budget", type=_positive_float, default=10.0, metavar="SECONDS",
                       help="time budget for the search (default 10)")
    races.add_argument("--seed", type=_seed, default=0,
                       help="first seed of the random and PCT strategies (default 0)")
    races.add_argument("--strategy", choices=("exhaustive", "random", "pct"),
                       default="exhaustive", help="how schedules are chosen")
    races.add_argument("--json", action="store_true", help="machine-readable output")
    races.add_argument("--matrix", action="store_true",
                       help="the fix matrix: which single fix removes which race")
    races.add_argument("--replay", metavar="SCENARIO:SCHEDULE",
                       help="replay one schedule of one scenario exactly, e.g. double-stop:abab")
    races.add_argument("--crash", type=_positive_int, metavar="ROUNDS",
                       help="instead: run the two sides as OS processes and SIGKILL them "
                            "ROUNDS times; report corruption, lost writes, torn operations")
    races.add_argument("--journal-modes", metavar="FLUTTER,KOTLIN",
                       help="override the journal mode each side asks for, e.g. WAL,TRUNCATE "
                            "(review §2.3's mismatch)")
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
    fleet.add_argument("--seed", type=_seed, help="override the scenario's seed")
    fleet.add_argument("--profile", help="override the app profile: v2, v3 or v2+<fix>")
    fleet.add_argument("--schema", choices=("as-is", "recommended"),
                       help="override the backend schema variant")
    fleet.add_argument("--speed", type=_positive_float, help="override the speed")
    fleet.add_argument("--phones", type=_positive_int, help="override the fleet size")
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
    fleet.add_argument("--json", action="store_true", help="print the summary as JSON")
    fleet.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                       help="live progress on stderr (auto: when it is a terminal)")
    replay = sub.add_parser(
        "replay",
        help="re-run a trace's scenario and confirm the same verdict and counts",
        description="Re-run the scenario recorded in a trace (same seed and options) on the "
                    "embedded stack and compare the verdict with the recorded one. Exit "
                    "status: 0 same, 1 different, 2 usage error.",
    )
    replay.add_argument("trace", help="a trace.jsonl.gz written by ggsim run")
    replay.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare = sub.add_parser(
        "compare",
        help="several runs side by side: a table and overlaid plots",
        description="Read the report directories of several `ggsim run`s and print one "
                    "row per run (fleet, speed, delivered, anomalies, latency, lateness, "
                    "verdict); write an HTML page whose plots lay the runs over each other "
                    "by simulated minute.",
    )
    compare.add_argument("reports", nargs="+", metavar="REPORT_DIR",
                         help="directories written by ggsim run --report")
    compare.add_argument("--out", metavar="HTML", default="ggsim-compare.html",
                         help="where the plots go (default ggsim-compare.html)")
    compare.add_argument("--json", action="store_true", help="print the rows as JSON")
    from simulator.capacity_command import add_parser as add_capacity
    add_capacity(sub)
    schema = sub.add_parser(
        "scenario-schema",
        help="print the JSON Schema of scenario files (for editors)",
        description="Print the JSON Schema that scenario files are validated against, as "
                    "scenarios/scenario.schema.json holds it; --out writes it to a file.",
    )
    schema.add_argument("--out", metavar="PATH", help="write it here instead of stdout")
    serve = sub.add_parser(
        "serve",
        help="run the reference backend on 127.0.0.1 over PostgreSQL (embedded by default)",
        description="Start PostgreSQL (embedded unless --database-url or DATABASE_URL is "
                    "given), migrate the chosen schema variant, and serve the upload and "
                    "daily-pot API on 127.0.0.1 until Ctrl-C or SIGTERM. See docs/api.md.",
    )
    serve.add_argument("--port", type=_port, default=8080, help="TCP port (0: any free one)")
    serve.add_argument("--schema", choices=("as-is", "recommended"), default="recommended",
                       help="the review's schema as it is, or its recommendations made to work")
    serve.add_argument("--database-url", metavar="URL",
                       help="a PostgreSQL to use instead of the embedded one")
    serve.add_argument("--clock-start", metavar="ISO-8601",
                       help="run the backend on simulated time starting at this instant")
    serve.add_argument("--clock-speed", type=_positive_float, default=1.0,
                       help="simulated seconds per real second (with --clock-start)")
    serve.add_argument("--uploads-required", type=_positive_int, default=5,
                       help="uploads a day that unlock the daily pot (default 5)")
    serve.add_argument("--jobs-interval", type=float, default=60.0, metavar="SECONDS",
                       help="run the aggregation job this often, 0 never (default 60)")
    serve.add_argument("--sim-control", action="store_true",
                       help="accept POST /_sim/clock to set simulated time (fleet runs)")
    serve.add_argument("--max-clock-skew", type=_positive_float, default=300.0,
                       metavar="SECONDS", help="how far ahead a batch timestamp may be")
    serve.add_argument("--stop-at-stdin-eof", action="store_true",
                       help="also stop when standard input closes (a parent's life line)")
    return parser


def _races(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from rich.console import Console

    from simulator.checks import hunt
    from simulator.phone.profiles import FIXES, profile

    chosen = profile(args.profile)
    for fix in args.fix:
        if fix not in FIXES:
            raise UsageError(f"--fix {fix!r}: known fixes are {', '.join(FIXES)}")
        chosen = dataclasses.replace(chosen, name=f"{chosen.name}+{fix}", **FIXES[fix])
    if args.journal_modes:
        flutter_mode, sep, kotlin_mode = args.journal_modes.upper().partition(",")
        if not sep:
            raise UsageError("--journal-modes wants FLUTTER,KOTLIN, e.g. WAL,TRUNCATE")
        chosen = dataclasses.replace(chosen, name=f"{chosen.name}[{flutter_mode},{kotlin_mode}]",
                                     flutter_journal_mode=flutter_mode,
                                     kotlin_journal_mode=kotlin_mode)
    again = " ".join(["ggsim races --profile", args.profile,
                      *(f"--fix {f}" for f in args.fix),
                      *([f"--journal-modes {args.journal_modes}"] if args.journal_modes else [])])
    console = Console()
    if args.crash:
        return _crash(chosen, args.crash, args.seed, args.json, console)
    if args.matrix:
        table = hunt.matrix(args.budget)
        if args.json:
            print(json.dumps({"matrix": table}, indent=2))
        else:
            console.print(_matrix_table(table), markup=False)
            legend = [f"{hunt.SCENARIOS[race].label} {race}" for race in _races_by_label(table)]
            one_line = "  ".join(legend)  # one line if it fits, else one race a line
            for line in [one_line] if len(one_line) <= console.width else legend:
                console.print(line, markup=False)
        return EXIT_FAILED if any(table[r]["v3"] for r in table) else EXIT_OK
    if args.replay:
        scenario, sep, schedule = args.replay.partition(":")
        if not sep:
            raise UsageError("--replay wants SCENARIO:SCHEDULE, e.g. double-stop:abab")
        found = hunt.replay(chosen, scenario, schedule)
        explored = 1
    else:
        found, explored = hunt.hunt(chosen, budget_s=args.budget, strategy=args.strategy,
                                    seed=args.seed)
    races = [f for f in found if f.anomaly.kind != "none"]
    if args.json:
        print(json.dumps({
            "profile": chosen.name, "schedules": explored,
            "races": [{"scenario": f.scenario, "label": f.anomaly.label,
                       "kind": f.anomaly.kind, "detail": f.anomaly.detail,
                       "schedule": f.schedule, "history": list(f.history),
                       "replay": f"{again} --replay {f.scenario}:{f.schedule}"}
                      for f in races]},
            indent=2))
    else:
        console.print(f"profile {chosen.name}: {explored} schedules explored, "
                      f"{len(races)} broken invariants")
        shown: set[tuple[str, str]] = set()
        for f in races:
            if (f.scenario, f.anomaly.kind) in shown:
                continue  # one minimal example per scenario and kind
            shown.add((f.scenario, f.anomaly.kind))
            console.print(f"{f.anomaly.label} {f.anomaly.kind} in {f.scenario} "
                          f"(schedule {f.schedule}): {f.anomaly.detail}", markup=False)
            for line in f.history:
                console.print(f"    {line}", markup=False)
            console.print(f"    replay: {again} --replay {f.scenario}:{f.schedule}",
                          markup=False)
    return EXIT_FAILED if races else EXIT_OK


def _races_by_label(table: dict[str, dict[str, bool]]) -> list[str]:
    from simulator.checks import hunt

    return sorted(table, key=lambda race: (hunt.SCENARIOS[race].label, race))


def _matrix_table(table: dict[str, dict[str, bool]]) -> Any:
    """The fix matrix, one row per profile and one column per race (code only; the legend
    under it names them), so that it fits an 80-column terminal without cutting a cell."""
    from rich.table import Table

    from simulator.checks import hunt

    races = _races_by_label(table)
    profiles = list(next(iter(table.values()))) if table else []
    grid = Table(title="Races left under each profile (removed = the fix removes it)")
    grid.add_column("profile", no_wrap=True)
    for race in races:
        grid.add_column(hunt.SCENARIOS[race].label, no_wrap=True)
    for name in profiles:
        grid.add_row(name, *("present" if table[race][name] else "removed" for race in races))
    return grid


def _crash(chosen: FixProfile, rounds: int, seed: int, as_json: bool, console: Any) -> int:
    import json
    import tempfile
    from pathlib import Path

    from simulator.checks.crash import crash_loop

    with tempfile.TemporaryDirectory(prefix="ggsim-crash-") as directory:
        report = crash_loop(Path(directory), chosen, rounds=rounds, seed=seed)
    broken = len(report.integrity_failures) + len(report.lost) + len(report.torn)
    if as_json:
        print(json.dumps({"profile": chosen.name, "rounds": report.rounds,
                          "kills": report.kills, "rows": report.rows,
                          "corruption": report.integrity_failures, "lost_writes": report.lost,
                          "torn_operations": report.torn,
                          "committed_not_logged": report.committed_not_logged}, indent=2))
    else:
        console.print(f"profile {chosen.name}: {report.rounds} rounds, kills {report.kills}, "
                      f"{report.rows} rows in the file", markup=False)
        for name, items in (("corruption", report.integrity_failures),
                            ("lost write", report.lost), ("R5 torn operation", report.torn)):
            console.print(f"  {name}: {len(items)}" + (f" (e.g. {items[0]})" if items else ""),
                          markup=False)
    return EXIT_FAILED if broken else EXIT_OK


_RECORDING_ONLY = {"speed": 1.0}
_FLEET_ONLY = {"phones": 10, "hours": 1.0, "imperfection": [], "no_imperfections": False,
               "chunk_phones": 1000, "workers": None}


def _reject_conflicts(args: argparse.Namespace) -> None:
    """Options that would be silently ignored are usage errors instead."""
    unused = _FLEET_ONLY if args.from_recording else _RECORDING_ONLY
    for name, default in unused.items():
        if getattr(args, name) != default:
            other = "with" if args.from_recording else "without"
            raise UsageError(f"--{name.replace('_', '-')} has no effect {other} "
                             f"--from-recording")


def _generate(args: argparse.Namespace) -> int:
    from simulator.sensors.encode import NumberFormat
    from simulator.sensors.output import open_output

    fmt = NumberFormat(args.number_format)
    start_ms = parse_instant(args.start)
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    _reject_conflicts(args)
    if args.from_recording:
        from simulator.sensors.encode import iter_lines
        from simulator.sensors.recording import load_recording, recording_batches

        block = recording_batches(load_recording(args.from_recording), start_ms=start_ms,
                                  speed=args.speed, seed=args.seed)
        with open_output(args.out) as out:
            out.writelines(iter_lines(block, fmt))
        print(f"ggsim: {block.size} uploads from {args.from_recording}", file=sys.stderr)
        return EXIT_OK

    from rich.console import Console
    from rich.progress import Progress

    from simulator.sensors.generator import FleetConfig, FleetGenerator
    from simulator.sensors.imperfections import Imperfections
    from simulator.sensors.parallel import generate_lines

    imperfections = Imperfections.none() if args.no_imperfections else Imperfections()
    config = FleetConfig(
        seed=args.seed, phones=args.phones, start_ms=start_ms, hours=args.hours,
        imperfections=imperfections.with_settings(args.imperfection),
    )
    print(f"ggsim generate: seed={config.seed} phones={config.phones} "
          f"start={format_instant(start_ms)} hours={config.hours:g} format={fmt.name}",
          file=sys.stderr)
    began = time.perf_counter()
    uploads = 0
    with open_output(args.out) as out, Progress(console=Console(stderr=True),
                                                 disable=not show) as progress:
        task = progress.add_task("generating", total=len(config.hour_blocks))
        for lines in generate_lines(FleetGenerator(config), fmt, args.chunk_phones,
                                    args.workers):
            out.writelines(lines)
            uploads += len(lines)
            progress.advance(task)
    elapsed = time.perf_counter() - began
    print(f"ggsim: {uploads} uploads in {elapsed:.1f} s", file=sys.stderr)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
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
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    return execute(chosen, target=args.target, database_url=args.database_url,
                   report=args.report, json_output=args.json, progress=show,
                   phone_dir=args.phone_dir)


def vars_of(struct: object) -> dict[str, object]:
    import msgspec
    return dict(msgspec.to_builtins(struct))


def _replay(args: argparse.Namespace) -> int:
    from simulator.run_command import replay

    return replay(args.trace, json_output=args.json)


def _serve(args: argparse.Namespace) -> int:
    from simulator.backend.app import BackendConfig
    from simulator.backend.clock import BackendClock
    from simulator.backend.postgres import open_database
    from simulator.backend.pot import PotRules
    from simulator.backend.server import bind, serve_forever

    if args.clock_speed != 1.0 and not args.clock_start:
        raise UsageError("--clock-speed needs --clock-start")
    clock = BackendClock(parse_instant(args.clock_start) if args.clock_start else None,
                         args.clock_speed)
    sock = bind(args.port)  # before the database: a busy port fails fast
    with open_database(args.database_url) as database:
        config = BackendConfig(database.url, schema=args.schema, clock=clock,
                               max_future_ms=int(args.max_clock_skew * 1000),
                               pot=PotRules(uploads_required=args.uploads_required),
                               jobs_interval_s=max(args.jobs_interval, 0.0),
                               sim_control=args.sim_control)
        where = "embedded PostgreSQL" if database.embedded else "PostgreSQL at --database-url"
        print(f"ggsim serve: http://127.0.0.1:{sock.getsockname()[1]} (schema {args.schema}, "
              f"{where}); Ctrl-C stops", file=sys.stderr, flush=True)
        serve_forever(config, sock, stop_at_stdin_eof=args.stop_at_stdin_eof)
    return EXIT_OK


@contextlib.contextmanager
def _terminate_as_interrupt(main_pid: int) -> Iterator[None]:
    """Make SIGTERM (a CI job's timeout, `timeout`, `docker stop`) stop this process as
    Ctrl-C does, so its cleanup runs: the backend process and the embedded PostgreSQL
    stop, the phone files go. Python's default for SIGTERM is to die on the spot.
    Processes forked from this one keep the default (a pool terminates its workers).
    A SIGTERM after the first is ignored, so a second one (CI systems send several
    before SIGKILL) does not cut the cleanup short; a second Ctrl-C still forces. (An
    event loop handles SIGTERM itself while it runs: `drivers.network.run_loop`.)"""
    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main_pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        on_interrupt = signal.getsignal(signal.SIGINT)  # asyncio's cancels its main task
        if callable(on_interrupt):
            on_interrupt(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (tests call main() from others)
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _scenario_schema(out: str | None) -> int:
    from simulator.fleet.scenario import json_schema_text
    text = json_schema_text()
    if out is None:
        sys.stdout.write(text)
    else:
        with open(out, "w", encoding="utf-8") as file:
            file.write(text)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ggsim` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    with _terminate_as_interrupt(os.getpid()):
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "races":
            return _races(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "run":
            return _run(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "capacity":
            from simulator.capacity_command import run as capacity
            return capacity(args)
        if args.command == "scenario-schema":
            return _scenario_schema(args.out)
        if args.command == "compare":
            from simulator.report.compare import compare
            return compare(args.reports, out=args.out, json_output=args.json)
    except SimulatorError as exc:
        print(f"ggsim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"ggsim {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # the environment failed us: disk full, permissions, ...
        print(f"ggsim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command}")  # argparse enforces choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
