"""Running the backend: uvicorn on 127.0.0.1 (or a named address), in the foreground
(`ggsim serve`) or in a background thread (tests, the fleet runner).

uvicorn with uvloop and httptools where available (about twice the requests per core of
asyncio + h11 on this machine, FACTS.md). The listening socket is bound here, before
uvicorn starts, so port 0 gives a free port whose number is known at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
import uvicorn

from simulator.backend.app import BackendConfig, create_app
from simulator.errors import SimulatorError

HOST = "127.0.0.1"


def bind(port: int, host: str = HOST) -> socket.socket:
    """A listening TCP socket on `host`, 127.0.0.1 unless named (`port` 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit it; without it a response written in two segments waits
    # for the client's delayed ACK (40 ms): 22 requests/s instead of about 1,000
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SimulatorError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    return sock


def listening_urls(sock: socket.socket) -> list[str]:
    """The base URLs others reach `sock` at: its address, or for 0.0.0.0 each IPv4
    address of this machine's interfaces (found locally, no traffic sent)."""
    host, port = sock.getsockname()[:2]
    hosts = [host]
    if host == "0.0.0.0":
        hosts = sorted({addr.address for addrs in psutil.net_if_addrs().values()
                        for addr in addrs if addr.family == socket.AF_INET})
    return [f"http://{h}:{port}" for h in hosts]


def uvicorn_config(config: BackendConfig) -> uvicorn.Config:
    fast = importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools")
    return uvicorn.Config(create_app(config), loop="uvloop" if fast else "asyncio",
                          http="httptools" if fast else "h11", lifespan="on",
                          log_level="warning", access_log=False, backlog=2048,
                          timeout_graceful_shutdown=5)


class _CleanExitServer(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, so the process dies
    of the signal; `ggsim serve` returns instead, stops PostgreSQL, and exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        original = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _exit_at_eof(fd: int, server: uvicorn.Server) -> None:
    # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered
    # reader holds its lock, and the interpreter aborts when it exits around it
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    server.should_exit = True  # uvicorn's main loop looks at it every 0.1 s


def serve_forever(config: BackendConfig, sock: socket.socket,
                  stop_at_stdin_eof: bool = False) -> None:
    """Serve until SIGINT/SIGTERM (or, with `stop_at_stdin_eof`, until standard input
    closes), then shut down cleanly (main thread only).

    Standard input as a life line: a parent that starts the server with a pipe there
    (the fleet) closes it when it exits in any way, SIGKILL included, and the server
    stops instead of serving on as an orphan."""
    server = _CleanExitServer(uvicorn_config(config))
    if stop_at_stdin_eof:
        threading.Thread(target=_exit_at_eof, args=(sys.stdin.fileno(), server),
                         name="ggsim-stdin-eof", daemon=True).start()
    server.run(sockets=[sock])
    if not server.started:
        raise SimulatorError("the backend did not start (see the log above)")


@dataclass
class BackgroundServer:
    """The backend in a daemon thread; `url` answers once `start()` returned."""

    config: BackendConfig
    port: int = 0
    url: str = ""
    _server: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self, timeout_s: float = 60.0) -> BackgroundServer:
        sock = bind(self.port)
        self.url = f"http://{HOST}:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn_config(self.config))
        failed: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._server.serve(sockets=[sock]))
            except BaseException as exc:  # reported by start()
                failed.append(exc)

        self._thread = threading.Thread(target=run, name="ggsim-backend", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout_s * 20)):
            if self._server.started or failed or not self._thread.is_alive():
                break
            deadline.wait(0.05)
        if not self._server.started:
            self.stop()
            raise SimulatorError(f"the backend did not start: {failed[0] if failed else 'timeout'}")
        return self

    @property
    def backend(self) -> Any:
        """The running `app.Backend` (metrics, configuration)."""
        return self._server.config.loaded_app.app.state.backend  # past uvicorn's wrappers

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_serve_process(proc: subprocess.Popen[str] | None) -> None:
    """Stop a `ggsim serve` child (SIGTERM, which it takes as a clean stop; SIGKILL after
    20 s) and close its stdin life line. Idempotent: None or a process already gone is fine.
    Shared by the fleet's stack and the capacity load generator, which both run one."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()
