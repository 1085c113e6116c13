"""`ggsim run` and `ggsim replay`: the composition root of a fleet run, which wires the
stack, the trace, the run and the reports together (the CLI stays thin). It sits above
both `simulator.fleet` and `simulator.report`, so the fleet never imports the report.

A run writes into its report directory: `trace.jsonl.gz` (header, events, and a footer
with the verdict), `summary.json`, `timeline.json` (the per-minute series the plots
show, for `ggsim compare`) and `report.html`. `replay` re-runs a trace's scenario
from its header and compares the verdict (counts by bucket and anomaly kind) with the
footer's: the same seed and options must give the same verdict.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from simulator.drivers.network import run_loop
from simulator.errors import SimulatorError, UsageError
from simulator.fleet import scenario as scenarios
from simulator.fleet import stack as stacks
from simulator.fleet.live_phone import LiveSetup, check_live, live_start_ms
from simulator.fleet.result import RunResult, header
from simulator.fleet.runner import FleetRun
from simulator.fleet.scenario import Scenario
from simulator.fleet.trace import Trace, read
from simulator.instants import format_instant
from simulator.report import html
from simulator.report.summary import as_json, print_summary

EXIT_PASS, EXIT_FAIL = 0, 1
RESULT_FILES = ("summary.json", "timeline.json", "report.html")  # written when a run ends


_COMPARED = ("generated", "buckets", "anomalies")


@dataclass(frozen=True)
class LiveRequest:
    """`ggsim run --live`: where the live phone's push is received, and where its stream
    is written as a recording (optional)."""

    host: str = "127.0.0.1"
    port: int = 8000
    out: str | None = None


def _comparable(verdict: dict[str, Any]) -> dict[str, Any]:
    """The parts of a verdict a replay must reproduce."""
    return {key: verdict[key] for key in _COMPARED}


def _recorded_verdict(path: Path, events: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """The comparable verdict of the trace's footer (the last one), read to the end before
    anything runs: a trace that cannot be replayed is a `UsageError` naming its line."""
    footer, line = None, 0
    for number, event in enumerate(events, start=2):  # line 1 is the header
        if event.get("kind") == "footer":
            footer, line = event, number
    if footer is None:
        raise UsageError(f"{path}: the trace has no verdict (the run did not finish)")
    verdict = footer.get("verdict")
    if not (isinstance(verdict, dict) and all(key in verdict for key in _COMPARED)):
        raise UsageError(f"{path}, line {line}: the footer's verdict does not have "
                         f"{', '.join(_COMPARED)} (not a ggsim trace footer)")
    return _comparable(verdict)


def run_scenario(scenario: Scenario, *, target: str | None = None,
                 database_url: str | None = None, report: str | Path | None = None,
                 progress: bool = False, phone_dir: str | Path | None = None,
                 live: LiveRequest | None = None) -> tuple[RunResult, Path]:
    """Run `scenario` and write its report directory; returns the result and the dir.
    With `live`, a real phone joins and the run starts now (`fleet/live_phone.py`)."""
    if live is not None:
        check_live(scenario)
        scenario = scenarios.override(scenario, start=format_instant(live_start_ms()))
    directory = Path(report) if report else Path("ggsim-report") / scenario.name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--report {directory}: {exc.strerror}") from None
    for earlier in RESULT_FILES:  # a reused directory: an unfinished run leaves none
        (directory / earlier).unlink(missing_ok=True)
    stack = (stacks.target(target, scenario, database_url) if target
             else stacks.embedded(scenario, database_url))
    trace = Trace(directory / "trace.jsonl.gz", {**header(scenario, stack),
                                                  "live": live is not None})
    try:
        if live is not None:
            result = _run_live(scenario, stack, trace, live, progress=progress,
                               phone_dir=phone_dir)
        elif progress:
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                          console=Console(stderr=True)) as bar:
                task = bar.add_task(f"{scenario.name}: simulating", total=1.0)
                result = run_loop(FleetRun(
                    scenario, stack, phone_dir=phone_dir, trace=trace,
                    progress=lambda f, k: bar.update(task, completed=f)).run())
        else:
            result = run_loop(FleetRun(scenario, stack, phone_dir=phone_dir, trace=trace).run())
    except BaseException as exc:
        trace.close()  # readable, with no verdict: replay says the run did not finish
        if isinstance(exc, OSError | ConnectionError):
            raise SimulatorError(f"the stack at {stack.url} failed: {exc}") from exc
        raise
    finally:
        stack.stop()
    summary = as_json(result)
    trace.close({"verdict": summary["verdict"], "passed": result.passed})
    (directory / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (directory / "timeline.json").write_bytes(orjson.dumps(result.timeline.series()))
    html.write(result, directory / "report.html")
    return result, directory


def _run_live(scenario: Scenario, stack: stacks.Stack, trace: Trace, live: LiveRequest, *,
              progress: bool, phone_dir: str | Path | None) -> RunResult:
    """The run with a live phone, its view on standard error instead of a progress bar."""
    from simulator.backend.server import bind
    from simulator.live.server import phone_urls
    from simulator.live.view import LiveView

    sock = bind(live.port, live.host)
    try:
        urls = phone_urls(sock)
        print(f"ggsim run --live: the run starts now ({scenario.start}) at speed 1: the "
              "simulated phones, the backend and the live phone share the wall clock. In "
              f"Sensor Logger set HTTP Push to {' or '.join(urls)}", file=sys.stderr,
              flush=True)
        view = LiveView(Console(stderr=True), panel=progress, urls=urls)
        setup = LiveSetup(sock, view, Path(live.out) if live.out else None)
        with view:
            return run_loop(FleetRun(scenario, stack, phone_dir=phone_dir, trace=trace,
                                     progress=lambda f, _: view.note(
                                         f"{scenario.name}: {f:.0%} of the run"),
                                     live=setup).run())
    finally:
        sock.close()


def execute(scenario: Scenario, *, target: str | None, database_url: str | None,
            report: str | None, json_output: bool, progress: bool,
            phone_dir: str | None = None, live: LiveRequest | None = None) -> int:
    """`ggsim run`: run, report, exit status."""
    result, directory = run_scenario(scenario, target=target, database_url=database_url,
                                     report=report, progress=progress, phone_dir=phone_dir,
                                     live=live)
    if json_output:
        sys.stdout.write(orjson.dumps(summary_with_paths(result, directory),
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console = Console()
        print_summary(result, console)
        console.print(f"report: {directory / 'report.html'}  trace: "
                      f"{directory / 'trace.jsonl.gz'}")
    return EXIT_PASS if result.passed else EXIT_FAIL


def summary_with_paths(result: RunResult, directory: Path) -> dict[str, Any]:
    return {**as_json(result), "report": str(directory / "report.html"),
            "trace": str(directory / "trace.jsonl.gz")}


def replay(trace_path: str, *, json_output: bool) -> int:
    """`ggsim replay`: re-run and compare with the recorded verdict."""
    path = Path(trace_path)
    if not path.is_file():
        raise UsageError(f"{path}: no such trace file")
    head, events = read(path)
    if head.get("live"):
        raise UsageError(f"{path}: this run had a live phone (ggsim run --live), whose "
                         "stream cannot be re-run; replay its recording with ggsim generate "
                         "--from-recording, or the run without it")
    before = _recorded_verdict(path, events)
    scenario = scenarios.from_dict(head["scenario"], f"{path}, line 1 (header)")
    result, _ = run_scenario(scenario, report=path.parent / "replay")
    after = _comparable(as_json(result)["verdict"])
    same = before == after
    if json_output:
        sys.stdout.write(orjson.dumps({"same": same, "recorded": before, "replayed": after},
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console = Console()
        console.print(f"replay of {path}: " + ("[green]same verdict and counts[/]" if same
                                                else "[red]different[/]"))
        if not same:
            console.print(f"recorded: {before}\nreplayed: {after}", markup=False)
    return EXIT_PASS if same else EXIT_FAIL
