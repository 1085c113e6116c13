"""`ggsim live`: a real phone's Sensor Logger HTTP Push, received and turned into the
10-second readings and 5-minute batches the app would upload, shown as they are built.

Ctrl-C and SIGTERM are how it is meant to stop (exit 0 after writing its outputs), as are
`--duration` and `--idle-timeout`. `--out` writes the session as a Sensor Logger–style zip
that `ggsim generate --from-recording` replays to the same batch bytes (the command to do
so is printed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Any

from simulator.commands import EXIT_FAILED, EXIT_OK, arguments
from simulator.commands.arguments import Subparsers
from simulator.instants import format_instant, parse_instant

if TYPE_CHECKING:
    from simulator.live.receiver import LiveReceiver
    from simulator.sensors.live_session import LiveResult

DEFAULT_PORT = 8000  # the port of awesome-sensor-logger's own live-streaming example


def add_parser(sub: Subparsers) -> None:
    """`ggsim live`'s options."""
    live = sub.add_parser(
        "live",
        help="receive a phone's Sensor Logger HTTP Push and build its uploads live",
        description="Receive Sensor Logger's HTTP Push from a real phone and turn it into "
                    "the 10 s readings and 5-minute batches the app would upload, exactly "
                    "as the recording importer does from the same samples. Stops by itself "
                    "(--duration, --idle-timeout) or on Ctrl-C, then writes its outputs.")
    live.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default 127.0.0.1; the phone's LAN "
                           "needs this machine's address there, or 0.0.0.0)")
    live.add_argument("--port", type=arguments.port, default=DEFAULT_PORT,
                      help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    live.add_argument("--out", metavar="RECORDING.zip",
                      help="write the session as a Sensor Logger–style zip export")
    live.add_argument("--batches", metavar="PATH",
                      help="write the batches as JSON Lines ('-': stdout), as ggsim generate")
    live.add_argument("--seed", type=arguments.seed, default=0,
                      help="run seed of the batch and device ids (default 0)")
    live.add_argument("--start", default=None,
                      help="instant of the first reading, ISO-8601 (default: the phone's "
                           "own time of its first motion sample)")
    live.add_argument("--platform", choices=["ios", "android"], default="",
                      help="the phone's platform, written to Metadata.csv as an export "
                           "states it (default: inferred from the sensors, as for a zip)")
    live.add_argument("--duration", type=arguments.positive_float, default=3600.0,
                      help="stop after this many wall seconds (default 3600)")
    live.add_argument("--idle-timeout", type=arguments.positive_float, default=120.0,
                      help="stop this many seconds after the last message (default 120)")
    live.add_argument("--reorder-depth", type=arguments.positive_int, default=8,
                      help="messages held behind a missing messageId before it is given up "
                           "(default 8)")
    live.add_argument("--reorder-wait", type=arguments.positive_float, default=2.0,
                      help="seconds a missing messageId is waited for (default 2)")
    live.add_argument("--number-format", default="float32", metavar="FORMAT",
                      choices=arguments.NUMBER_FORMATS,
                      help="how --batches writes floats (as ggsim generate; default float32)")
    live.add_argument("--progress", choices=arguments.PROGRESS_CHOICES, default="auto",
                      help="live panel on stderr (auto: when stderr is a terminal; "
                           "otherwise one line per event)")


def run(args: argparse.Namespace) -> int:
    """Receive until a limit or a signal, then write `--out` and `--batches`."""
    from rich.console import Console

    from simulator.backend.server import bind
    from simulator.live.receiver import LiveReceiver
    from simulator.live.server import LiveLimits, phone_urls
    from simulator.live.view import LiveView, batch_event
    from simulator.sensors.live_session import LiveOptions, LiveSession

    start_ms = parse_instant(args.start) if args.start is not None else None
    session = LiveSession(LiveOptions(
        seed=args.seed, start_ms=start_ms, platform=args.platform,
        reorder_depth=args.reorder_depth, reorder_wait_s=args.reorder_wait))
    sock = bind(args.port, args.host)
    urls = phone_urls(sock)
    console = Console(stderr=True)
    print(f"ggsim live: listening; in Sensor Logger set HTTP Push to {' or '.join(urls)}",
          file=sys.stderr, flush=True)
    view = LiveView(console, panel=arguments.show_progress(args.progress), urls=urls)
    receiver = LiveReceiver(session, on_sealed=lambda block: view.events_of(batch_event(block)))
    limits = LiveLimits(duration_s=args.duration, idle_s=args.idle_timeout)
    with view:
        reason = asyncio.run(_serve(receiver, sock, limits, view))
    result = receiver.result
    assert result is not None
    print(f"ggsim live: ended: {reason}", file=sys.stderr)
    return _write_outputs(args, receiver, result)


async def _serve(receiver: LiveReceiver, sock: Any, limits: Any, view: Any) -> str:
    from simulator.live.server import serve_live

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def refresh() -> None:
        view.update(await receiver.current())

    try:
        reason = await serve_live(receiver, sock, limits, stop, refresh)
        await receiver.finish()
        view.update(receiver.snapshot())
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return reason if not stop.is_set() else "stopped (signal)"


def _write_outputs(args: argparse.Namespace, receiver: LiveReceiver,
                   result: LiveResult) -> int:
    from simulator.sensors.encode import NumberFormat, iter_lines
    from simulator.sensors.output import open_output

    snapshot = receiver.snapshot()
    messages = snapshot["messages"]
    assert isinstance(messages, dict)
    print(f"ggsim live: messages {messages['accepted']} accepted, "
          f"{messages['duplicates']} duplicates, {messages['reordered']} reordered, "
          f"{messages['missing']} missing, {messages['late']} late; refused "
          f"{snapshot['refused'] or 'none'}; samples {snapshot['samples']} "
          f"(late {snapshot['late_samples']}); batches {snapshot['batches_sealed']}",
          file=sys.stderr)
    if receiver.session.device_id is None:
        print("ggsim live: no message arrived; nothing written", file=sys.stderr)
        return EXIT_OK
    if args.out:
        with open_output(args.out) as out:
            out.write(receiver.session.zip_bytes())
    if args.batches and result.batches is not None:
        with open_output(args.batches) as out:
            out.writelines(iter_lines(result.batches, NumberFormat(args.number_format)))
    start_ms = receiver.session.start_ms
    if args.out and start_ms is not None:
        print(f"ggsim live: replay with: ggsim generate --from-recording {args.out} "
              f"--start {_instant_ms(start_ms)} --seed {args.seed}", file=sys.stderr)
    if result.problem is not None:
        print(f"ggsim live: no batches: {result.problem}", file=sys.stderr)
        return EXIT_FAILED
    if result.revised:
        print(f"ggsim live: {len(result.revised)} batches differ from the whole recording's "
              f"(seq {', '.join(map(str, result.revised))}): a sensor appeared, or its first "
              "row arrived, after they were built", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _instant_ms(epoch_ms: int) -> str:
    """ISO-8601 with milliseconds, which `parse_instant` reads back exactly."""
    whole = format_instant(epoch_ms - epoch_ms % 1000)
    return whole.replace("Z", f".{epoch_ms % 1000:03d}Z")
