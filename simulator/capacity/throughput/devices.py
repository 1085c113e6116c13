"""Registered devices: `POST /devices` for each (device id, user id) pair in a closed loop
(set-up, not measured), and each device's uploads of the generator's envelopes.

Invariant: a device's upload carries the envelope's payload bytes unchanged (re-signed
with the device's id, its user and the given batch id) and the device's credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson

from simulator.capacity.envelopes import Envelope
from simulator.capacity.throughput.http_load import HttpRequest, closed_loop
from simulator.phone.uploader import Credentials


@dataclass(frozen=True)
class Device:
    """A registered device: its credentials and its user."""

    creds: Credentials
    user_id: str

    def upload(self, envelope: Envelope, batch_id: str) -> HttpRequest:
        """POST /upload of `envelope`'s payload as this device's, with `batch_id`."""
        body = envelope.resigned(self.creds.device_id, self.user_id, batch_id)
        return HttpRequest("POST", "/upload", body, self.creds.headers(batch_id))


async def register(session: aiohttp.ClientSession, base_url: str,
                    owners: Sequence[tuple[str, str]]) -> list[Device]:
    """Register (device id, user id) pairs with `POST /devices`."""
    bodies = await closed_loop(session, base_url, [
        HttpRequest("POST", "/devices", orjson.dumps({"device_id": d, "user_id": u}),
                    (("Content-Type", "application/json"),)) for d, u in owners])
    return [Device(Credentials(d, str(orjson.loads(b)["secret"])), u)
            for (d, u), b in zip(owners, bodies, strict=True)]
