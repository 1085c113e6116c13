"""`ggsim capacity`: the composition root of the capacity measurements (measure, print,
write the JSON and HTML report). Exit status: 0, 1 when a threshold the user passed is
broken, 2 usage or environment error (the CLI maps errors), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulator.errors import UsageError

EXIT_OK, EXIT_FAILED = 0, 1


def _csv_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, e.g. 1000,10000; got {text!r}"
        ) from None
    return values


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`ggsim capacity`'s options (see the README)."""
    capacity = sub.add_parser(
        "capacity",
        help="measure storage and throughput on the real engines; project to 1K/10K/100K "
             "users and compare with the review's tables",
        description="Measure what PostgreSQL and the phone's SQLite store and how fast the "
                    "reference stack ingests, project to the given users and horizons with "
                    "intervals, and put every cell of the review's §5 tables beside the "
                    "projection with a verdict. Exit status: 0, 1 a threshold you passed "
                    "is broken, 2 usage or environment error, 130 interrupted.")
    capacity.add_argument("--users", type=_csv_ints, default=(1_000, 10_000, 100_000),
                          metavar="N,N,...", help="fleet sizes to project (default "
                          "1000,10000,100000)")
    capacity.add_argument("--horizon", type=_csv, default=("day", "month", "6months", "year"),
                          metavar="H,H,...", help="day, month (30 days), 6months (180), "
                          "year (365); default all")
    capacity.add_argument("--schema", choices=("as-is", "recommended", "both"), default="both",
                          help="backend schema variant(s) to measure (default both)")
    capacity.add_argument("--seeds", type=int, default=None,
                          help="fleets measured per variant, the bootstrap's samples "
                               "(default 5; --quick 2)")
    capacity.add_argument("--quick", action="store_true",
                          help="small samples: under 5 minutes (what CI runs)")
    capacity.add_argument("--json", action="store_true", help="print the result as JSON")
    capacity.add_argument("--report", metavar="DIR", default="ggsim-report/capacity",
                          help="where capacity.json and capacity.html go "
                               "(default ggsim-report/capacity)")
    capacity.add_argument("--database-url", metavar="URL",
                          help="measure on this PostgreSQL instead of an embedded one")
    capacity.add_argument("--max-bytes-per-user-day", type=float, metavar="BYTES",
                          help="fail (exit 1) when a variant stores more per user-day")
    capacity.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                          help="progress on stderr (auto: when it is a terminal)")


def _commit() -> str:
    """The checkout's commit (with "+changes" when the tree differs), or "unknown"."""
    import subprocess
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty.strip() else "")


def run(args: argparse.Namespace) -> int:
    import orjson
    from rich.console import Console

    from simulator.backend.postgres import external_url
    from simulator.capacity.plan import VARIANTS, CapacityOptions
    from simulator.capacity.run import run_capacity
    from simulator.report import capacity as output

    options = CapacityOptions(
        users=args.users, horizons=args.horizon,
        schemas=VARIANTS if args.schema == "both" else (args.schema,),
        seeds=args.seeds if args.seeds is not None else (2 if args.quick else 5),
        quick=args.quick, database_url=args.database_url,
        max_bytes_per_user_day=args.max_bytes_per_user_day)
    external_url(args.database_url)  # a bad URL fails now, not after the first measures
    report = Path(args.report)
    try:
        report.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the report directory {report}: {exc}") from None
    commit = _commit()  # the code that measures: read before, not after, a long run
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    if show:
        with Console(stderr=True).status("ggsim capacity: starting") as status:
            result = run_capacity(options, progress=lambda text: status.update(
                f"ggsim capacity: {text}"))
    else:
        result = run_capacity(options)
    (report / "capacity.json").write_bytes(
        orjson.dumps(output.as_json(result), option=orjson.OPT_INDENT_2))
    output.write_html(result, report / "capacity.html")
    (report / "capacity.md").write_text(
        output.markdown(result, "ggsim " + " ".join(sys.argv[1:]), commit), encoding="utf-8")
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(output.as_json(result), option=orjson.OPT_INDENT_2))
        sys.stdout.write("\n")
    else:
        output.print_result(result, Console(width=200))
        print(f"report: {report / 'capacity.html'}", file=sys.stderr)
    return EXIT_OK if result.passed else EXIT_FAILED
