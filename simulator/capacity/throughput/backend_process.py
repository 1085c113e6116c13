"""`ggsim serve` as a child process of the load generator: its own interpreter (so the
generator does not share its interpreter lock), any free port on 127.0.0.1, a backend
clock set by the caller, no periodic jobs.

Invariants:
- `BackendProcess` is stopped however its block ends (SIGTERM, then SIGKILL after 20 s),
  on errors and Ctrl-C too, and stops by itself when this process dies: its stdin is a
  pipe from here.
- Its stderr is drained by a thread, so the child never blocks on a full pipe; the last
  40 lines are kept for error messages.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field

import psutil

from simulator.backend.server import stop_serve_process
from simulator.errors import SimulatorError
from simulator.instants import format_instant


@dataclass
class BackendProcess:
    """`ggsim serve` in a child process on 127.0.0.1 (any free port), its backend clock
    starting at `clock_start_ms`, no periodic jobs. A context manager: stopped (SIGTERM,
    then SIGKILL) however the block ends; its stdin is a pipe from this process, so it
    also stops when this process dies."""

    database_url: str
    clock_start_ms: int
    schema: str = "recommended"
    url: str = ""
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    _log: deque[str] = field(default_factory=lambda: deque(maxlen=40), repr=False)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise SimulatorError("the backend process is not running")
        return self._proc.pid

    def start(self, timeout_s: float = 60.0) -> BackendProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "serve", "--port", "0", "--schema",
             self.schema, "--database-url", self.database_url, "--clock-start",
             format_instant(self.clock_start_ms), "--jobs-interval", "0",
             "--rate-limit-burst", "0",  # the throughput is the server's, not a limit's
             "--stop-at-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            self.url = self._read_url(timeout_s)
            threading.Thread(target=self._drain, daemon=True).start()
            self._wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_url(self, timeout_s: float) -> str:
        first: list[str] = []
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        reader = threading.Thread(target=lambda: first.append(proc.stderr.readline()
                                                              if proc.stderr else ""),
                                  daemon=True)
        reader.start()
        reader.join(timeout_s)
        line = first[0] if first else ""
        self._log.append(line)
        marker = "ggsim serve: "
        if marker not in line:
            raise SimulatorError(f"the backend process did not start: {line.strip()!r}")
        return line.split(marker, 1)[1].split()[0]

    def _drain(self) -> None:
        proc = self._proc
        if proc is not None and proc.stderr is not None:
            for line in proc.stderr:  # the child never blocks on a full pipe
                self._log.append(line)

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"{self.url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
            if self._proc is None or self._proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SimulatorError(f"the backend process did not become healthy: {self.log_tail()}")

    def log_tail(self) -> str:
        return "".join(self._log).strip()[-2000:]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the backend process so far."""
        try:
            times = psutil.Process(self.pid).cpu_times()
        except (psutil.Error, SimulatorError):
            return 0.0
        return float(times.user + times.system)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_serve_process(proc)

    def __enter__(self) -> BackendProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
