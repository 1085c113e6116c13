"""The HTTP side of `ggsim live`: Sensor Logger's HTTP Push requests into a `LiveSession`.

Routes: `POST /push` (and `POST /`, so the bare URL typed into the app works) takes one
push message; `GET /status` is the session's counts as JSON; `GET /` says what to type
into the app.

Answers to a push: 200 with {"status": accepted | duplicate | late, "messageId": n};
a malformed message 400, 413 or 422 with {"error", "detail"} naming the field, and nothing
of it applied; another device's or session's message 409. Every refusal is counted
(`refused`, by status). The session's work (the importer run that seals a batch) runs in a
worker thread under one lock, so the event loop keeps answering while a batch is sealed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from simulator.sensors.batch import BatchBlock
from simulator.sensors.live_session import LiveResult, LiveSession
from simulator.sensors.push import MAX_BODY_BYTES, PushError, parse_push

Clock = Callable[[], float]
SealedHandler = Callable[[BatchBlock], None]


@dataclass
class LiveReceiver:
    """One live session behind HTTP; `on_sealed` gets each batch block as it is sealed
    (called on the event loop's thread)."""

    session: LiveSession
    on_sealed: SealedHandler | None = None
    clock: Clock = time.monotonic
    refused: Counter[int] = field(default_factory=Counter)
    last_refusal: str = ""
    first_message_s: float | None = None
    last_message_s: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _result: LiveResult | None = None
    _handed: int = 0  # sealed blocks handed to `on_sealed` so far

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/push", self.push, methods=["POST"]),
            Route("/", self.push, methods=["POST"]),
            Route("/", self.hello, methods=["GET"]),
            Route("/status", self.status, methods=["GET"]),
        ])

    async def push(self, request: Request) -> Response:
        body = await _body(request)
        try:
            if body is None:
                raise PushError(f"body is over the {MAX_BODY_BYTES:,} byte limit", 413)
            message = parse_push(body)
            async with self._lock:
                if self._result is not None:
                    raise PushError("the live session has ended", 409)
                outcome = self.session.offer(message, self.clock())
        except PushError as exc:
            self.refused[exc.status] += 1
            self.last_refusal = f"{exc.status}: {exc}"
            error = "malformed_push" if exc.status != 409 else "not_this_session"
            return JSONResponse({"error": error, "detail": str(exc)}, status_code=exc.status)
        now = self.clock()
        self.first_message_s = self.first_message_s if self.first_message_s else now
        self.last_message_s = now
        await self.advance()
        return JSONResponse({"status": outcome, "messageId": message.message_id})

    async def hello(self, request: Request) -> Response:
        return PlainTextResponse(
            "ggsim live: point Sensor Logger's HTTP Push at "
            f"{request.base_url}push (the gear icon on the Logger page, HTTP Push)\n")

    async def status(self, request: Request) -> Response:
        return JSONResponse(await self.current())

    async def current(self) -> dict[str, object]:
        """`snapshot` taken between two steps of the session (never during one)."""
        async with self._lock:
            return self.snapshot()

    async def advance(self) -> None:
        """Apply what is due and hand out the batches it seals. Shielded: a request
        cancelled meanwhile (a server shutting down) does not release the lock while the
        worker thread still works on the session."""
        await asyncio.shield(self._advance())

    async def _advance(self) -> None:
        async with self._lock:
            if self._result is not None:
                return
            await asyncio.to_thread(self.session.advance, self.clock())
            self._hand_out()

    def _hand_out(self) -> None:
        """Every sealed block not handed out yet, in order, exactly once (lock held)."""
        while self._handed < len(self.session.sealed):
            block = self.session.sealed[self._handed]
            self._handed += 1
            if self.on_sealed is not None:
                self.on_sealed(block)

    @property
    def result(self) -> LiveResult | None:
        """The session's result once `finish` has run."""
        return self._result

    async def finish(self) -> LiveResult:
        """End the session (later pushes get 409): the last batches are sealed and handed
        out, and the result checked against the whole recording."""
        async with self._lock:
            if self._result is None:
                self._result = await asyncio.shield(asyncio.to_thread(self.session.finish))
                self._hand_out()
            return self._result

    def snapshot(self) -> dict[str, object]:
        """The counts as JSON-ready values (the /status answer); while the session runs,
        take it with `current`."""
        order, counts = self.session.order_counts, self.session.counts
        return {
            "device_id": self.session.device_id, "session_id": self.session.session_id,
            "messages": {"accepted": order.accepted, "duplicates": order.duplicates,
                         "reordered": order.reordered, "missing": order.missing,
                         "late": order.late, "joined_at": order.joined_at},
            "refused": {str(status): n for status, n in sorted(self.refused.items())},
            "samples": counts.samples, "late_samples": counts.late_samples,
            "samples_by_file": dict(sorted(counts.by_file.items())),
            "batches_sealed": sum(block.size for block in self.session.sealed),
            "problem": self.session.problem,
            "last": {file: {"time": sample.time_ns, **sample.values}
                     for file, sample in sorted(self.session.last.items())},
        }


async def _body(request: Request) -> bytes | None:
    """The request body, or None once it is over the limit (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
