"""`ggsim compare`: several runs' reports side by side (`simulator.report.compare`)."""

from __future__ import annotations

import argparse

from simulator.commands.arguments import Subparsers


def add_parser(sub: Subparsers) -> None:
    """`ggsim compare`'s options."""
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


def run(args: argparse.Namespace) -> int:
    from simulator.report.compare import compare

    return compare(args.reports, out=args.out, json_output=args.json)
