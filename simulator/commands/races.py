"""`ggsim races`: hunt the dual-writer races of the app's SQLite files (or, with
`--crash`, kill the two writers as OS processes; with `--power-loss`, cut the phone's
power), print each broken invariant with the command that replays it. Exit status: 0
none found, 1 a race found, 2 usage error."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from simulator.commands import EXIT_FAILED, EXIT_OK, arguments
from simulator.commands.arguments import Subparsers
from simulator.errors import UsageError

if TYPE_CHECKING:
    from simulator.checks.hunt import Found
    from simulator.phone.profiles import FixProfile


def add_parser(sub: Subparsers) -> None:
    """`ggsim races`'s options."""
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
    races.add_argument("--budget", type=arguments.positive_float, default=10.0,
                       metavar="SECONDS", help="time budget for the search (default 10)")
    races.add_argument("--seed", type=arguments.seed, default=0,
                       help="first seed of the random and PCT strategies (default 0)")
    races.add_argument("--strategy", choices=("exhaustive", "random", "pct"),
                       default="exhaustive", help="how schedules are chosen")
    races.add_argument("--json", action="store_true", help="machine-readable output")
    races.add_argument("--matrix", action="store_true",
                       help="the fix matrix: which single fix removes which race")
    races.add_argument("--replay", metavar="SCENARIO:SCHEDULE",
                       help="replay one schedule of one scenario exactly, e.g. double-stop:abab")
    races.add_argument("--crash", type=arguments.positive_int, metavar="ROUNDS",
                       help="instead: run the two sides as OS processes and SIGKILL them "
                            "ROUNDS times; report corruption, lost writes, torn operations")
    races.add_argument("--power-loss", type=arguments.positive_int, metavar="CUTS",
                       help="instead: run the upload flow through a VFS that records every "
                            "write, and judge CUTS seeded power cuts (unsynced writes "
                            "dropped or torn): corruption, lost acknowledged contributions, "
                            "lost queued uploads")
    races.add_argument("--synchronous", choices=("FULL", "NORMAL", "OFF"),
                       help="with --power-loss: PRAGMA synchronous (default: Android's for "
                            "the profile's journal mode, FULL or, in WAL, NORMAL)")
    races.add_argument("--writeback", type=float, default=30.0, metavar="SECONDS",
                       help="with --power-loss: writes older than this were written back by "
                            "the kernel (default 30, Linux's); 0: none were, the worst case")
    races.add_argument("--journal-modes", metavar="FLUTTER,KOTLIN",
                       help="override the journal mode each side asks for, e.g. WAL,TRUNCATE "
                            "(review §2.3's mismatch)")


def run(args: argparse.Namespace) -> int:
    """The hunt (or the fix matrix, a replay, the crash loop) on the chosen profile."""
    from rich.console import Console

    chosen = _profile(args)
    again = _replay_command(args)
    console = Console()
    if args.crash:
        return _crash(chosen, args.crash, args.seed, args.json, console)
    if args.power_loss:
        return _power_loss(chosen, args, console)
    if args.matrix:
        return _matrix(args.budget, args.json, console)
    found, explored = _search(args, chosen)
    races = [f for f in found if f.anomaly.kind != "none"]
    if args.json:
        _print_json(chosen, explored, races, again)
    else:
        _print_text(chosen, explored, races, again, console)
    return EXIT_FAILED if races else EXIT_OK


def _profile(args: argparse.Namespace) -> FixProfile:
    """`--profile` with every `--fix` added and `--journal-modes` applied, in that order;
    the name says what was changed (`v2+wal[WAL,TRUNCATE]`)."""
    import dataclasses

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
    return chosen


def _replay_command(args: argparse.Namespace) -> str:
    """The command line that chose this profile; `--replay S:SCHEDULE` completes it."""
    return " ".join(["ggsim races --profile", args.profile,
                     *(f"--fix {f}" for f in args.fix),
                     *([f"--journal-modes {args.journal_modes}"] if args.journal_modes else [])])


def _search(args: argparse.Namespace, chosen: FixProfile) -> tuple[list[Found], int]:
    """The findings and how many schedules were explored: the one `--replay` names, or a
    search of `--budget` seconds with `--strategy`."""
    from simulator.checks import hunt

    if args.replay:
        scenario, sep, schedule = args.replay.partition(":")
        if not sep:
            raise UsageError("--replay wants SCENARIO:SCHEDULE, e.g. double-stop:abab")
        return hunt.replay(chosen, scenario, schedule), 1
    return hunt.hunt(chosen, budget_s=args.budget, strategy=args.strategy, seed=args.seed)


def _print_json(chosen: FixProfile, explored: int, races: list[Found], again: str) -> None:
    import json

    print(json.dumps({
        "profile": chosen.name, "schedules": explored,
        "races": [{"scenario": f.scenario, "label": f.anomaly.label,
                   "kind": f.anomaly.kind, "detail": f.anomaly.detail,
                   "schedule": f.schedule, "history": list(f.history),
                   "replay": f"{again} --replay {f.scenario}:{f.schedule}"}
                  for f in races]},
        indent=2))


def _print_text(chosen: FixProfile, explored: int, races: list[Found], again: str,
                console: Any) -> None:
    """A count, then one minimal example per scenario and kind with its history and the
    command that replays it."""
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


def _matrix(budget: float, as_json: bool, console: Any) -> int:
    """`--matrix`: which single fix removes which race; exit 1 if v3 leaves one."""
    import json

    from simulator.checks import hunt

    table = hunt.matrix(budget)
    if as_json:
        print(json.dumps({"matrix": table}, indent=2))
    else:
        console.print(_matrix_table(table), markup=False)
        legend = [f"{hunt.SCENARIOS[race].label} {race}" for race in _races_by_label(table)]
        one_line = "  ".join(legend)  # one line if it fits, else one race a line
        for line in [one_line] if len(one_line) <= console.width else legend:
            console.print(line, markup=False)
    return EXIT_FAILED if any(table[r]["v3"] for r in table) else EXIT_OK


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
    """`--crash ROUNDS`: the two sides as OS processes, SIGKILLed; exit 1 on corruption,
    a lost write or a torn operation."""
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


def _power_loss(chosen: FixProfile, args: argparse.Namespace, console: Any) -> int:
    """`--power-loss CUTS`: exit 1 on corruption, a lost acknowledged contribution or a
    lost queued upload."""
    import json

    from simulator.checks.power_loss import power_loss

    if args.writeback < 0:
        raise UsageError(f"--writeback must be 0 or more seconds, got {args.writeback}")
    report = power_loss(chosen, synchronous=args.synchronous, seed=args.seed,
                        cuts=args.power_loss, writeback_s=args.writeback or None)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        back = (f"writes older than {report.writeback_s:g} s written back"
                if report.writeback_s else "nothing written back")
        console.print(f"profile {report.profile} ({report.journal_mode}, synchronous "
                      f"{report.synchronous}), seed {report.seed}: {report.cuts} power cuts "
                      f"in {report.operations} file operations, {back}", markup=False)
        for name, count, cuts in (
                ("corruption", len(report.corrupt_cuts), len(report.corrupt_cuts)),
                ("lost acknowledged contributions", report.lost_saved,
                 report.cuts_losing_saved),
                ("lost queued uploads (lost for good)", report.lost_queued,
                 report.cuts_losing_queued)):
            console.print(f"  {name}: {count} (in {cuts} cuts)", markup=False)
        console.print(f"  queue entries back after delivery (sent again): "
                      f"{report.requeued_after_delivery}; uploads in flight at a cut: "
                      f"{report.in_flight_at_cut}", markup=False)
        for example in report.examples[:3]:
            console.print(f"  e.g. {example}", markup=False)
    return EXIT_OK if report.clean else EXIT_FAILED
