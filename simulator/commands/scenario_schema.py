"""`ggsim scenario-schema`: the JSON Schema scenario files are validated against."""

from __future__ import annotations

import argparse
import sys

from simulator.commands import EXIT_OK
from simulator.commands.arguments import Subparsers


def add_parser(sub: Subparsers) -> None:
    """`ggsim scenario-schema`'s options."""
    schema = sub.add_parser(
        "scenario-schema",
        help="print the JSON Schema of scenario files (for editors)",
        description="Print the JSON Schema that scenario files are validated against, as "
                    "scenarios/scenario.schema.json holds it; --out writes it to a file.",
    )
    schema.add_argument("--out", metavar="PATH", help="write it here instead of stdout")


def run(args: argparse.Namespace) -> int:
    from simulator.fleet.scenario import json_schema_text
    text = json_schema_text()
    if args.out is None:
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as file:
            file.write(text)
    return EXIT_OK
