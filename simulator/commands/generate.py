"""`ggsim generate`: the uploads of a simulated fleet, or of a replayed Sensor Logger
recording, as JSON Lines in time order. Same arguments, same bytes."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from simulator.commands import EXIT_OK, arguments
from simulator.commands.arguments import Subparsers
from simulator.errors import UsageError
from simulator.instants import DEFAULT_START, format_instant, parse_instant

if TYPE_CHECKING:
    from simulator.sensors.encode import NumberFormat

# Options of one source only, with their defaults: set with the other source, a usage error.
_RECORDING_ONLY = {"speed": 1.0}
_FLEET_ONLY = {"phones": 10, "hours": 1.0, "imperfection": [], "no_imperfections": False,
               "chunk_phones": 1000, "workers": None}


def add_parser(sub: Subparsers) -> None:
    """`ggsim generate`'s options."""
    gen = sub.add_parser(
        "generate",
        help="write a fleet's 5-minute uploads as JSON Lines, in time order",
        description="Write the uploads of a simulated fleet (or a replayed phone recording) "
                    "as JSON Lines: one upload envelope per line, in time order. Same "
                    "arguments, same bytes.",
    )
    gen.add_argument("--phones", type=arguments.positive_int, default=10,
                     help="fleet size (default 10)")
    gen.add_argument("--hours", type=arguments.hours, default=1.0,
                     help="simulated hours to generate (default 1)")
    gen.add_argument("--seed", type=arguments.seed, default=0, help="run seed (default 0)")
    gen.add_argument("--start", default=DEFAULT_START,
                     help=f"first instant, ISO-8601 (default {DEFAULT_START})")
    gen.add_argument("--out", default="-",
                     help="output path; '-' for stdout (default); a .gz name compresses")
    gen.add_argument("--number-format", default="float32",
                     choices=arguments.NUMBER_FORMATS,
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
    gen.add_argument("--speed", type=arguments.positive_float, default=1.0,
                     help="with --from-recording: playback speed factor (default 1)")
    gen.add_argument("--chunk-phones", type=arguments.positive_int, default=1000,
                     help="phones generated together (memory vs speed; the output is the "
                          "same bytes whatever the chunking)")
    gen.add_argument("--workers", type=arguments.positive_int, default=None,
                     help="worker processes (default: one per CPU; output is the same)")
    gen.add_argument("--progress", choices=arguments.PROGRESS_CHOICES, default="auto",
                     help="progress bar on stderr (auto: when stderr is a terminal)")


def _reject_conflicts(args: argparse.Namespace) -> None:
    """Options that would be silently ignored are usage errors instead."""
    unused = _FLEET_ONLY if args.from_recording else _RECORDING_ONLY
    for name, default in unused.items():
        if getattr(args, name) != default:
            other = "with" if args.from_recording else "without"
            raise UsageError(f"--{name.replace('_', '-')} has no effect {other} "
                             f"--from-recording")


def run(args: argparse.Namespace) -> int:
    """Write the uploads to `--out`; a summary line goes to standard error."""
    from simulator.sensors.encode import NumberFormat

    fmt = NumberFormat(args.number_format)
    start_ms = parse_instant(args.start)
    show = arguments.show_progress(args.progress)
    _reject_conflicts(args)
    if args.from_recording:
        return _replay_recording(args, fmt, start_ms)
    return _generate_fleet(args, fmt, start_ms, show)


def _replay_recording(args: argparse.Namespace, fmt: NumberFormat, start_ms: int) -> int:
    """`--from-recording`: one phone replaying the export from `start_ms` on."""
    from simulator.sensors.encode import iter_lines
    from simulator.sensors.output import open_output
    from simulator.sensors.recording import load_recording, recording_batches

    block = recording_batches(load_recording(args.from_recording), start_ms=start_ms,
                              speed=args.speed, seed=args.seed)
    with open_output(args.out) as out:
        out.writelines(iter_lines(block, fmt))
    print(f"ggsim: {block.size} uploads from {args.from_recording}", file=sys.stderr)
    return EXIT_OK


def _generate_fleet(args: argparse.Namespace, fmt: NumberFormat, start_ms: int,
                    show: bool) -> int:
    """Synthetic phones, one hour block at a time, with a progress bar if `show`."""
    from rich.console import Console
    from rich.progress import Progress

    from simulator.sensors.generator import FleetConfig, FleetGenerator
    from simulator.sensors.imperfections import Imperfections
    from simulator.sensors.output import open_output
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
