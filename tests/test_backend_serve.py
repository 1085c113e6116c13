"""`ggsim serve` as a user runs it, and the backend when its database dies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from simulator.backend.app import BackendConfig
from simulator.backend.postgres import start_embedded
from simulator.backend.server import BackgroundServer


def test_ggsim_serve_prints_its_url_serves_and_stops_cleanly_on_sigterm(
        database_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "serve", "--host",
                             "127.0.0.1", "--port", "0", "--schema", "as-is",
                             "--database-url", database_url],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line
        for _ in range(100):
            try:
                health = httpx.get(f"{url[0]}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.json()["schema"] == "as-is"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ggsim_serve_refuses_bad_options() -> None:
    for argv, message in ((["--port", "70000"], "port"), (["--schema", "v9"], "schema"),
                          (["--clock-speed", "10"], "--clock-start"),
                          (["--database-url", "mysql://x"], "postgresql://"),
                          # TEST-NET-1: no address of this machine, so nothing to bind
                          (["--host", "192.0.2.1", "--port", "0"],
                           "cannot listen on 192.0.2.1:0")):
        done = subprocess.run([sys.executable, "-m", "simulator.cli", "serve", *argv],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_a_dead_database_gives_503_not_a_hang_or_a_500() -> None:
    database = start_embedded()
    try:
        with BackgroundServer(BackendConfig(database.url)) as running:
            http = httpx.Client(base_url=running.url, timeout=30)
            assert http.get("/healthz").status_code == 200
            database.stop()
            for path in ("/healthz", "/daily-pot"):
                answer = http.get(path, headers={"X-Device-Id": "d",
                                                 "Authorization": "Bearer s"})
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "database_unavailable"
    finally:
        database.stop()
    assert os.environ.get("DATABASE_URL", "") != database.url
