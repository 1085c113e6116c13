"""What the terminal shows of a live phone while it streams: how its messages arrived, its
latest readings, and the batches built and uploaded, as they happen.

On a terminal it is a panel redrawn every tick (rich `Live`); otherwise (a log, a CI job)
each event is one line on standard error and the panel is not drawn.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from simulator.instants import format_instant
from simulator.sensors.batch import BatchBlock

MAX_EVENTS = 10
# The columns shown per sensor file, in this order (others are counted, not shown).
_SHOWN = {"TotalAcceleration.csv": ("x", "y", "z"), "Accelerometer.csv": ("x", "y", "z"),
          "Gravity.csv": ("x", "y", "z"), "Gyroscope.csv": ("x", "y", "z"),
          "Barometer.csv": ("pressure",), "Light.csv": ("lux",),
          "Location.csv": ("latitude", "longitude", "horizontalAccuracy"),
          "Battery.csv": ("batteryLevel", "batteryState")}


def batch_event(block: BatchBlock) -> list[str]:
    """One line per batch of a sealed block."""
    counts = block.counts
    return [f"batch {int(block.seq[i])} built: {int(counts[i])} readings, "
            f"{format_instant(int(block.period_start_ms[i]))} .. "
            f"{format_instant(int(block.period_end_ms[i]))}"
            for i in range(block.size)]


class LiveView:
    """The live phone's view; use as a context manager around the session."""

    def __init__(self, console: Console, *, panel: bool, urls: list[str]) -> None:
        self.console, self.panel, self.urls = console, panel, urls
        self.events: deque[str] = deque(maxlen=MAX_EVENTS)
        self._snapshot: Mapping[str, Any] = {}
        self._note = ""
        self._live = Live(console=console, auto_refresh=False, transient=False) if panel else None

    def __enter__(self) -> LiveView:
        if self._live is not None:
            self._live.start()
            self._live.update(self._render(), refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.stop()

    def event(self, text: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {text}"
        self.events.append(stamped)
        if self._live is None:
            self.console.print(stamped, highlight=False, soft_wrap=True)

    def events_of(self, texts: list[str]) -> None:
        for text in texts:
            self.event(text)

    def note(self, text: str) -> None:
        """A status line shown above the counts (a fleet run's progress)."""
        self._note = text

    def update(self, snapshot: Mapping[str, Any]) -> None:
        self._snapshot = snapshot
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        s = self._snapshot
        head = Text(f"ggsim live: push to {' or '.join(self.urls)}", style="bold")
        if self._note:
            head.append(f"\n{self._note}", style="")
        if not s or s.get("device_id") is None:
            return Group(head, Text("waiting for the first message ..."))
        messages = s["messages"]
        refused = ", ".join(f"{n} x {status}" for status, n in s["refused"].items()) or "none"
        head.append(f"\ndevice {s['device_id']}, session {s['session_id']}; messages "
                    f"{messages['accepted']} (duplicates {messages['duplicates']}, "
                    f"reordered {messages['reordered']}, missing {messages['missing']}, "
                    f"late {messages['late']}), refused {refused}; samples {s['samples']} "
                    f"(late {s['late_samples']}); batches built {s['batches_sealed']}",
                    style="")
        if s.get("problem"):
            head.append(f"\ncannot build batches: {s['problem']}", style="bold red")
        readings = Table(title="latest readings", title_justify="left", expand=False)
        for column in ("sensor", "time", "values", "samples"):
            readings.add_column(column)
        for file, last in s["last"].items():
            shown = _SHOWN.get(file)
            if shown is None:
                continue
            values = "  ".join(f"{name} {_short(last.get(name))}" for name in shown)
            readings.add_row(file.removesuffix(".csv"),
                             time.strftime("%H:%M:%S", time.gmtime(last["time"] / 1e9)),
                             values, str(s["samples_by_file"].get(file, 0)))
        return Group(head, readings, Text("\n".join(self.events) or "no batch yet"))


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
