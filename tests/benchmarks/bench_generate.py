"""Benchmark: the vectorised fleet generator against the plain-Python loop.

Run it as a script (pytest does not collect `tests/benchmarks/`)::

    python tests/benchmarks/bench_generate.py [--phones N] [--hours H]
        [--repeats R] [--out PATH] [--baseline-phones M] [--workers W] [--full]

In one run it measures, each `--repeats` times (medians are reported):

- vectorised build: `FleetGenerator.iter_blocks` over the fleet (one process);
- vectorised serialise: `encode` of the built blocks (one process), the JSON lines as
  one buffer per block, which is what `ggsim generate` writes;
- end to end in one process: build, encode and write each hour block to a buffered
  binary file (a temp file, deleted after, unless `--out`);
- end to end the way `ggsim generate` does it: `parallel.generate_lines` with `--workers`
  worker processes (default: one per CPU), writing to the same file;
- the plain-Python baseline (`plain_python_fleet.py`) on `--baseline-phones` phones for the
  same hours, build (envelope dicts) and serialise (`json`) timed apart;

then prints a table, the vectorised/baseline ratios, an extrapolation to the
10,000-phone 24-hour day (2.88 M batches) and PASS/FAIL against the targets (the day
generated and written in under 120 s on this machine; >= 20x the plain-Python loop),
and peak RSS. `--full` also runs the real 10,000 phones x 24 h end to end (the
`ggsim generate` path) and uses its measured wall time for the time target.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import plain_python_fleet as baseline
from rich.console import Console
from rich.table import Table

from simulator.instants import DEFAULT_START, parse_instant
from simulator.sensors.batch import BatchBlock
from simulator.sensors.encode import NumberFormat, encode, reference_line
from simulator.sensors.generator import FleetConfig, FleetGenerator
from simulator.sensors.jsonl import Encoded
from simulator.sensors.memory import keep_freed_memory
from simulator.sensors.parallel import default_workers, generate_lines

DAY_PHONES = 10_000
DAY_HOURS = 24
DAY_BATCHES = DAY_PHONES * DAY_HOURS * 12  # 2.88 M upload batches
TARGET_DAY_S = 120.0
TARGET_SPEEDUP = 20.0
WRITE_BUFFER = 1 << 20


@dataclass
class Measure:
    """One measured step over its repeats: seconds per run and what a run produced."""

    name: str
    sample: str
    seconds: list[float] = field(default_factory=list)
    batches: int = 0
    readings: int = 0
    nbytes: int = 0

    def add(self, seconds: float, batches: int, readings: int, nbytes: int = 0) -> None:
        self.seconds.append(seconds)
        self.batches, self.readings, self.nbytes = batches, readings, nbytes

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def batches_per_s(self) -> float:
        return self.batches / self.median

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.median

    @property
    def day_s(self) -> float:
        """Seconds for the 10,000-phone day at this rate (linear in batches)."""
        return DAY_BATCHES / self.batches_per_s


def combined(name: str, sample: str, parts: Sequence[Measure]) -> Measure:
    """A step made of `parts` run one after the other (medians added)."""
    out = Measure(name, sample, batches=parts[0].batches, readings=parts[0].readings,
                  nbytes=parts[-1].nbytes)
    out.seconds = [sum(p.median for p in parts)]
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


# -- the steps --------------------------------------------------------------------------


def vectorised_build(config: FleetConfig, chunk_phones: int) -> list[BatchBlock]:
    return list(FleetGenerator(config).iter_blocks(chunk_phones=chunk_phones))


def vectorised_serialise(blocks: Iterable[BatchBlock], fmt: NumberFormat) -> list[Encoded]:
    """The JSON lines of each block, as `ggsim generate` makes them (one buffer per block
    with the line ends; `encode_lines` would add a bytes object per line on top)."""
    return [encode(block, fmt) for block in blocks]


def end_to_end_one_process(config: FleetConfig, chunk_phones: int, fmt: NumberFormat,
                           path: Path) -> tuple[int, int]:
    """Generate, encode and write hour block by hour block; (batches, bytes)."""
    batches = 0
    with open(path, "wb", buffering=WRITE_BUFFER) as out:
        for block in FleetGenerator(config).iter_blocks(chunk_phones=chunk_phones):
            out.write(encode(block, fmt).blob.data)
            batches += block.size
    return batches, path.stat().st_size


def end_to_end_ggsim(config: FleetConfig, chunk_phones: int, fmt: NumberFormat, path: Path,
                     workers: int) -> tuple[int, int]:
    """What `ggsim generate --out PATH` does: worker processes, one hour at a time."""
    batches = 0
    with open(path, "wb", buffering=WRITE_BUFFER) as out:
        for lines in generate_lines(FleetGenerator(config), fmt, chunk_phones, workers):
            out.writelines(lines)
            batches += len(lines)
    return batches, path.stat().st_size


# -- checks -----------------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """Keys (in order) and nesting of a JSON value, without the values."""
    if isinstance(value, dict):
        return tuple((key, _shape(item)) for key, item in value.items())
    if isinstance(value, list):
        return ("list", _shape(value[0]) if value else None)
    return "value"


def check_baseline_shape(block: BatchBlock, lines: list[bytes]) -> str:
    """The baseline's envelopes have the keys and nesting of `reference_line`."""
    wanted = {bool(b): reference_line(block, int(np.flatnonzero(block.has_pressure == b)[0]))
              for b in (True, False) if (block.has_pressure == b).any()}
    seen: dict[bool, Any] = {}
    for line in lines:
        env = orjson.loads(line)
        seen.setdefault("pressure" in env["payload"]["summary"], env)
    for baro, ref in wanted.items():
        if baro in seen and _shape(seen[baro]) != _shape(orjson.loads(ref)):
            raise SystemExit(f"plain-Python envelope shape differs from reference_line "
                             f"(barometer={baro})")
    return "same keys and nesting as reference_line (" + ", ".join(
        ("with" if b else "without") + " barometer" for b in sorted(seen, reverse=True)
        if b in wanted) + ")"


# -- report -----------------------------------------------------------------------------


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: KiB


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def report(console: Console, rows: list[Measure | None], ratios: list[tuple[str, float]],
           verdicts: list[tuple[str, bool]]) -> None:
    table = Table(title="fleet generation: medians over repeats", title_justify="left")
    for col, justify in (("step", "left"), ("sample", "left"), ("median s", "right"),
                         ("runs s", "right"), ("batches/s", "right"),
                         ("readings/s", "right"), ("bytes/batch", "right"),
                         ("10K-day s", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for m in rows:
        if m is None:
            table.add_section()
            continue
        runs = " ".join(f"{s:.2f}" for s in m.seconds) if len(m.seconds) > 1 else ""
        table.add_row(m.name, m.sample, f"{m.median:.3f}", runs, _fmt_rate(m.batches_per_s),
                      _fmt_rate(m.readings_per_s) if m.readings else "",
                      f"{m.nbytes / m.batches:,.0f}" if m.nbytes else "",
                      f"{m.day_s:,.1f}")
    console.print(table)
    console.print("speed-up, vectorised / plain Python (batches/s, one process each):")
    ratio_table = Table()
    ratio_table.add_column("step")
    ratio_table.add_column("speed-up", justify="right")
    for name, value in ratios:
        ratio_table.add_row(name, f"{value:,.1f}x")
    console.print(ratio_table)
    for text, ok in verdicts:
        console.print(f"{'PASS' if ok else 'FAIL'}  {text}", style="green" if ok else "red",
                      highlight=False)


# -- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    # A whole day by default: day plans (and the battery's look-back days) are paid per
    # phone-day, so a short sample would over-weight them against the 24 h target.
    p.add_argument("--phones", type=int, default=250, help="vectorised fleet (default 250)")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    p.add_argument("--repeats", type=int, default=3, help="runs per step; medians (default 3)")
    p.add_argument("--out", help="end-to-end output file (kept); default a temp file, deleted")
    p.add_argument("--baseline-phones", type=int, default=10,
                   help="phones of the plain-Python baseline, same hours (default 10)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="worker processes of the ggsim-path end to end (default: one per CPU)")
    p.add_argument("--chunk-phones", type=int, default=1000,
                   help="phones generated together (default 1000, as ggsim)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default=DEFAULT_START)
    p.add_argument("--number-format", default="float32")
    p.add_argument("--full", action="store_true",
                   help="also run the real 10,000 phones x 24 h end to end (minutes)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    keep_freed_memory()  # as `ggsim generate` does in every process (see its docstring)
    console = Console(width=140)
    fmt = NumberFormat(args.number_format)
    start_ms = parse_instant(args.start)
    config = FleetConfig(seed=args.seed, phones=args.phones, start_ms=start_ms,
                         hours=args.hours)
    if args.out:
        out_path, keep = Path(args.out), True
    else:
        fd, name = tempfile.mkstemp(prefix="bench_generate_", suffix=".jsonl")
        os.close(fd)
        out_path, keep = Path(name), False
    sample = f"{args.phones} ph x {args.hours:g} h"
    base_sample = f"{args.baseline_phones} ph x {args.hours:g} h"
    console.print(f"bench_generate: python {platform.python_version()}, numpy {np.__version__}, "
                  f"{os.cpu_count()} CPUs; seed {args.seed}, start {args.start}, "
                  f"format {fmt.name}, chunk {args.chunk_phones} phones, "
                  f"{args.repeats} repeats; output {out_path}", highlight=False)

    build = Measure("vectorised build (iter_blocks)", sample)
    serialise = Measure("vectorised serialise (encode)", sample)
    e2e_one = Measure("end to end, 1 process (build+encode+write)", sample)
    e2e_ggsim = Measure(f"end to end, ggsim path ({args.workers} workers)", sample)
    base_build = Measure("plain Python build (dicts)", base_sample)
    base_serialise = Measure("plain Python serialise (json.dumps)", base_sample)
    shape_note = ""
    try:
        for run in range(args.repeats):
            seconds, blocks = _timed(lambda: vectorised_build(config, args.chunk_phones))
            batches = sum(b.size for b in blocks)
            readings = sum(int(b.offsets[-1]) for b in blocks)
            build.add(seconds, batches, readings)
            seconds, lines = _timed(lambda b=blocks: vectorised_serialise(b, fmt))
            nbytes = sum(int(part.blob.size) for part in lines)
            serialise.add(seconds, batches, readings, nbytes)
            first_block = blocks[0]
            del blocks, lines

            seconds, (n, size) = _timed(lambda: end_to_end_one_process(
                config, args.chunk_phones, fmt, out_path))
            e2e_one.add(seconds, n, readings, size)
            seconds, (n, size) = _timed(lambda: end_to_end_ggsim(
                config, args.chunk_phones, fmt, out_path, args.workers))
            e2e_ggsim.add(seconds, n, readings, size)

            seconds, envelopes = _timed(lambda: baseline.build_envelopes(
                args.seed, args.baseline_phones, start_ms, args.hours))
            b_batches = len(envelopes)
            b_readings = sum(len(e["payload"]["batch"]) for e in envelopes)
            base_build.add(seconds, b_batches, b_readings)
            seconds, b_lines = _timed(lambda e=envelopes: baseline.serialise(e))
            base_serialise.add(seconds, b_batches, b_readings, sum(map(len, b_lines)))
            if run == 0:
                shape_note = check_baseline_shape(first_block, b_lines)
            del envelopes, b_lines
            console.print(f"  run {run + 1}/{args.repeats}: build {build.seconds[-1]:.2f} s, "
                          f"serialise {serialise.seconds[-1]:.2f} s, end to end "
                          f"{e2e_one.seconds[-1]:.2f} s / {e2e_ggsim.seconds[-1]:.2f} s, "
                          f"baseline {base_build.seconds[-1]:.2f} + "
                          f"{base_serialise.seconds[-1]:.2f} s", highlight=False)

        full: Measure | None = None
        if args.full:
            day = FleetConfig(seed=args.seed, phones=DAY_PHONES, start_ms=start_ms,
                              hours=DAY_HOURS)
            console.print(f"  --full: {DAY_PHONES} phones x {DAY_HOURS} h, ggsim path, "
                          f"{args.workers} workers ...", highlight=False)
            full = Measure(f"FULL end to end, ggsim path ({args.workers} workers)",
                           f"{DAY_PHONES} ph x {DAY_HOURS} h")
            seconds, (n, size) = _timed(lambda: end_to_end_ggsim(
                day, args.chunk_phones, fmt, out_path, args.workers))
            full.add(seconds, n, 0, size)
    finally:
        if not keep:
            out_path.unlink(missing_ok=True)

    vec_total = combined("vectorised build+serialise", sample, [build, serialise])
    base_total = combined("plain Python build+serialise", base_sample,
                          [base_build, base_serialise])
    ratios = [
        ("build", build.batches_per_s / base_build.batches_per_s),
        ("serialise", serialise.batches_per_s / base_serialise.batches_per_s),
        ("total (build+serialise)", vec_total.batches_per_s / base_total.batches_per_s),
    ]
    rows: list[Measure | None] = [build, serialise, vec_total, None, e2e_one, e2e_ggsim]
    if full is not None:
        rows.append(full)
    rows += [None, base_build, base_serialise, base_total]

    if full is not None:
        day_s, how = full.median, "measured with --full"
    else:
        day_s, how = e2e_ggsim.day_s, f"extrapolated from {sample}, ggsim path"
    verdicts = [
        (f"10K-phone day generated and written in {day_s:,.1f} s ({how}); "
         f"target < {TARGET_DAY_S:.0f} s  [one process: {e2e_one.day_s:,.1f} s extrapolated]",
         day_s < TARGET_DAY_S),
        (f"vectorised build+serialise is {ratios[2][1]:,.1f}x the plain-Python loop; "
         f"target >= {TARGET_SPEEDUP:.0f}x", ratios[2][1] >= TARGET_SPEEDUP),
    ]
    report(console, rows, ratios, verdicts)
    console.print(f"baseline check: {shape_note}; baseline floats are float32 values written "
                  f"as the shortest double by json, hence more bytes/batch", highlight=False)
    console.print(f"10K-day extrapolations scale the median time by {DAY_BATCHES:,} batches / "
                  f"batches in the sample; day plans and traits are paid per phone-day, so a "
                  f"{args.hours:g} h sample over-weights them (conservative)", highlight=False)
    console.print(f"peak RSS: this process {_rss_mib(resource.RUSAGE_SELF):,.0f} MiB, "
                  f"largest worker {_rss_mib(resource.RUSAGE_CHILDREN):,.0f} MiB",
                  highlight=False)
    if keep:
        console.print(f"end-to-end output kept in {out_path}", highlight=False)
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
