"""`ggsim serve`: the reference backend on 127.0.0.1 over PostgreSQL (embedded unless a
URL is given), until Ctrl-C or SIGTERM, which are how it is meant to stop (exit 0)."""

from __future__ import annotations

import argparse
import sys

from simulator.commands import EXIT_OK, arguments
from simulator.commands.arguments import Subparsers
from simulator.errors import UsageError
from simulator.instants import parse_instant


def add_parser(sub: Subparsers) -> None:
    """`ggsim serve`'s options."""
    serve = sub.add_parser(
        "serve",
        help="run the reference backend on 127.0.0.1 over PostgreSQL (embedded by default)",
        description="Start PostgreSQL (embedded unless --database-url or DATABASE_URL is "
                    "given), migrate the chosen schema variant, and serve the upload and "
                    "daily-pot API on 127.0.0.1 until Ctrl-C or SIGTERM. See docs/api.md.",
    )
    serve.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                       help="address to listen on: 127.0.0.1, this machine only (the "
                            "default); an address of this machine, or 0.0.0.0, for locust "
                            "workers on other machines")
    serve.add_argument("--port", type=arguments.port, default=8080,
                       help="TCP port (0: any free one)")
    serve.add_argument("--schema", choices=("as-is", "recommended"), default="recommended",
                       help="the review's schema as it is, or its recommendations made to work")
    serve.add_argument("--database-url", metavar="URL",
                       help="a PostgreSQL to use instead of the embedded one")
    serve.add_argument("--clock-start", metavar="ISO-8601",
                       help="run the backend on simulated time starting at this instant")
    serve.add_argument("--clock-speed", type=arguments.positive_float, default=1.0,
                       help="simulated seconds per real second (with --clock-start)")
    serve.add_argument("--uploads-required", type=arguments.positive_int, default=5,
                       help="uploads a day that unlock the daily pot (default 5)")
    serve.add_argument("--jobs-interval", type=float, default=60.0, metavar="SECONDS",
                       help="run the aggregation job this often, 0 never (default 60)")
    serve.add_argument("--sim-control", action="store_true",
                       help="accept POST /_sim/clock to set simulated time (fleet runs)")
    serve.add_argument("--max-clock-skew", type=arguments.positive_float, default=300.0,
                       metavar="SECONDS", help="how far ahead a batch timestamp may be")
    serve.add_argument("--rate-limit-burst", type=int, default=120, metavar="REQUESTS",
                       help="requests a device may send at once before 429 (0: no limit; "
                            "default 120)")
    serve.add_argument("--rate-limit-per-minute", type=arguments.positive_float,
                       default=60.0, metavar="REQUESTS",
                       help="how fast a device's allowance comes back (default 60 a "
                            "minute, on the backend's clock)")
    serve.add_argument("--stop-at-stdin-eof", action="store_true",
                       help="also stop when standard input closes (a parent's life line)")


def run(args: argparse.Namespace) -> int:
    """Bind the port (a busy one fails fast), open the database, serve until stopped."""
    from simulator.backend.app import BackendConfig
    from simulator.backend.clock import BackendClock
    from simulator.backend.postgres import open_database
    from simulator.backend.pot import PotRules
    from simulator.backend.ratelimit import RateLimit
    from simulator.backend.server import bind, listening_urls, serve_forever

    if args.clock_speed != 1.0 and not args.clock_start:
        raise UsageError("--clock-speed needs --clock-start")
    if args.rate_limit_burst < 0:
        raise UsageError(f"--rate-limit-burst must be 0 (no limit) or more, got "
                         f"{args.rate_limit_burst}")
    origin = parse_instant(args.clock_start, "--clock-start") if args.clock_start else None
    clock = BackendClock(origin, args.clock_speed)
    sock = bind(args.port, args.host)  # before the database: a busy port fails fast
    with open_database(args.database_url) as database:
        config = BackendConfig(database.url, schema=args.schema, clock=clock,
                               max_future_ms=int(args.max_clock_skew * 1000),
                               pot=PotRules(uploads_required=args.uploads_required),
                               jobs_interval_s=max(args.jobs_interval, 0.0),
                               sim_control=args.sim_control,
                               rate_limit=RateLimit(args.rate_limit_burst,
                                                    args.rate_limit_per_minute))
        where = "embedded PostgreSQL" if database.embedded else "PostgreSQL at --database-url"
        print(f"ggsim serve: {' '.join(listening_urls(sock))} (schema {args.schema}, "
              f"{where}); Ctrl-C stops", file=sys.stderr, flush=True)
        serve_forever(config, sock, stop_at_stdin_eof=args.stop_at_stdin_eof)
    return EXIT_OK
