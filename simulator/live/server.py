"""Serving a `LiveReceiver` on the running event loop until a limit or a stop request.

Every live session stops by itself: after `duration_s` wall seconds, or `idle_s` seconds
after the last message (the phone stopped recording or left the network). `stop` (set by
Ctrl-C, SIGTERM or the caller) ends it at once. While it runs, a ticker applies messages
whose gap has waited long enough even when no new request arrives, and calls `on_tick`
(the live view) every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import uvicorn

from simulator.backend.server import listening_urls
from simulator.live.receiver import LiveReceiver

TICK_S = 0.25


@dataclass(frozen=True)
class LiveLimits:
    """When a live session ends by itself (module docstring); both are wall seconds."""

    duration_s: float = 3600.0
    idle_s: float = 120.0

    def reason(self, receiver: LiveReceiver, started_s: float, now_s: float) -> str | None:
        """Why the session should end now, or None."""
        if now_s - started_s >= self.duration_s:
            return f"--duration {self.duration_s:g} s reached"
        last = receiver.last_message_s
        if last is not None and now_s - last >= self.idle_s:
            return f"no message for {self.idle_s:g} s (--idle-timeout)"
        return None


class _SignalFreeServer(uvicorn.Server):
    """uvicorn installs its own SIGINT/SIGTERM handlers while serving; here the caller
    owns the signals (they end the session and its outputs are written)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_live(receiver: LiveReceiver, sock: socket.socket, limits: LiveLimits,
                     stop: asyncio.Event,
                     on_tick: Callable[[], Awaitable[None]] | None = None) -> str:
    """Serve until a limit or `stop`; the reason it ended. The session is not finished
    here (the caller calls `receiver.finish`)."""
    config = uvicorn.Config(receiver.app(), lifespan="off", log_level="warning",
                            access_log=False, timeout_graceful_shutdown=2)
    server = _SignalFreeServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    started = time.monotonic()
    reason = "stopped"
    try:
        while not serving.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)
            if stop.is_set():
                break
            await receiver.advance()
            if on_tick is not None:
                await on_tick()
            found = limits.reason(receiver, started, time.monotonic())
            if found is not None:
                reason = found
                break
    finally:
        server.should_exit = True
        await serving
    return reason


def phone_urls(sock: socket.socket) -> list[str]:
    """The push URLs to type into the app: the bound address, or for 0.0.0.0 each IPv4
    address of this machine's interfaces (found locally, no traffic sent)."""
    return [f"{url}/push" for url in listening_urls(sock)]
