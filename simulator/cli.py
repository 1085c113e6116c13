"""The `ggsim` command line: a thin layer over the library.

Exit status: 0 success, 1 a check failed (later subcommands), 2 usage or environment error,
130 interrupted (Ctrl-C or SIGTERM; what the command started is stopped and removed).
`ggsim serve` and `ggsim live` are the exceptions: Ctrl-C and SIGTERM are how they are
meant to stop, so 0.

Each subcommand is a module with `add_parser(sub)` and `run(args)`: those of
`simulator.commands`, and `simulator.capacity_command` for `ggsim capacity`. This module
builds the parser from them, runs the chosen one and turns its errors and signals into
exit statuses.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from simulator import __version__, capacity_command
from simulator.commands import EXIT_FAILED as EXIT_FAILED
from simulator.commands import EXIT_OK as EXIT_OK
from simulator.commands import (
    compare,
    generate,
    live,
    races,
    replay,
    run,
    scenario_schema,
    serve,
)
from simulator.commands.arguments import Subparsers
from simulator.errors import SimulatorError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C

AddParser = Callable[[Subparsers], None]
Run = Callable[[argparse.Namespace], int]

# The subcommands by name, in the order `ggsim --help` lists them.
_COMMANDS: dict[str, tuple[AddParser, Run]] = {
    "generate": (generate.add_parser, generate.run),
    "races": (races.add_parser, races.run),
    "run": (run.add_parser, run.run),
    "replay": (replay.add_parser, replay.run),
    "compare": (compare.add_parser, compare.run),
    "capacity": (capacity_command.add_parser, capacity_command.run),
    "scenario-schema": (scenario_schema.add_parser, scenario_schema.run),
    "serve": (serve.add_parser, serve.run),
    "live": (live.add_parser, live.run),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `ggsim` (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="ggsim",
        description="GreenGains hardware-in-the-loop simulator and load tester.",
    )
    parser.add_argument("--version", action="version", version=f"ggsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser, _ in _COMMANDS.values():
        add_parser(sub)
    return parser


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
    """Run the chosen subcommand; its errors and interruptions become exit statuses."""
    if args.command not in _COMMANDS:
        raise AssertionError(f"unhandled command {args.command}")  # argparse enforces choices
    _, run_command = _COMMANDS[args.command]
    try:
        return run_command(args)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
