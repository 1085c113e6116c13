"""The network as the simulated phone sees it: online, the reference backend's answers
(uploads 201, the daily pot by `backend.pot`'s rules); offline, no answer at all.

Invariants: no I/O and no clock: an answer is a function of the request, the instant
and the pot so far; each batch is recorded once in the pot (the phone sends each once).
"""

from __future__ import annotations

import orjson

from simulator.backend import pot as pot_rules
from simulator.phone.effects import Http, HttpResponse, NetworkError


class _Network:
    """The backend as the phone sees it. Online: an upload is stored (201) and the daily
    pot follows `backend.pot`'s rules (each batch is recorded once: the phone sends each
    once here); offline: no answer."""

    def __init__(self, user_id: str, start_ms: int) -> None:
        self.online = True
        self.pot = pot_rules.fresh(user_id, start_ms, pot_rules.PotRules())

    def answer(self, request: Http, now_ms: int) -> HttpResponse:
        if not self.online:
            raise NetworkError("offline")
        if request.path == "/upload":
            return HttpResponse(201, b'{"status":"stored"}')
        if request.path == "/daily-pot/upload":
            self.pot = pot_rules.record_upload(self.pot, now_ms)
        elif request.path == "/daily-pot":
            self.pot = pot_rules.current(self.pot, now_ms)
        else:
            return HttpResponse(404, b'{"error":"not_found"}')
        return HttpResponse(200, orjson.dumps(pot_rules.as_json(self.pot)))
