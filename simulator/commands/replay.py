"""`ggsim replay`: re-run a trace's scenario (`simulator.run_command.replay`)."""

from __future__ import annotations

import argparse

from simulator.commands.arguments import Subparsers


def add_parser(sub: Subparsers) -> None:
    """`ggsim replay`'s options."""
    replay = sub.add_parser(
        "replay",
        help="re-run a trace's scenario and confirm the same verdict and counts",
        description="Re-run the scenario recorded in a trace (same seed and options) on the "
                    "embedded stack and compare the verdict with the recorded one. Exit "
                    "status: 0 same, 1 different, 2 usage error.",
    )
    replay.add_argument("trace", help="a trace.jsonl.gz written by ggsim run")
    replay.add_argument("--json", action="store_true", help="print the comparison as JSON")


def run(args: argparse.Namespace) -> int:
    from simulator.run_command import replay

    return replay(args.trace, json_output=args.json)
