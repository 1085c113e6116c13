"""The fleet generator's uploads as envelopes, for the loads that send or store real
payloads: the throughput measurements (`simulator.capacity.throughput`, which re-sign
them for registered devices) and the per-user coverage query's table
(`simulator.capacity.queries._backend`). The rest of the load generator (the backend
process, the open-model sender, a step's numbers) is in `simulator.capacity.throughput`.

Invariants:
- Deterministic: envelopes come from the fleet generator with `SEED` (unless given
  another seed), in time order (true window start, then phone).
- A re-signed envelope carries the generator's payload bytes unchanged: only the
  envelope's device, user and batch id change, so the backend stores the same
  `batch_json`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from simulator.sensors import FleetConfig, FleetGenerator, encode_lines

SEED = 20_240_304


@dataclass(frozen=True)
class Envelope:
    """One generated upload: its line as the app sends it, and where its payload starts."""

    phone: int
    device_id: str
    user_id: str
    batch_id: str
    seq: int
    order_ms: int  # true window start (the phone's upload is due one window later)
    timestamp_ms: int  # the payload's timestamp (the phone's clock)
    body: bytes
    payload_at: int  # index of ',"payload":' in body

    @property
    def payload(self) -> bytes:
        """The payload JSON text: what `batch_json` stores."""
        return self.body[self.payload_at + len(PAYLOAD_KEY):-1]

    def resigned(self, device_id: str, user_id: str, batch_id: str) -> bytes:
        """This payload in another device's envelope with a fresh batch id."""
        head = orjson.dumps({"device_id": device_id, "user_id": user_id, "seq": self.seq,
                             "batch_id": batch_id})
        return head[:-1] + self.body[self.payload_at:]


PAYLOAD_KEY = b',"payload":'


def generate_envelopes(phones: int, hours: float, start_ms: int,
                       seed: int = SEED) -> list[Envelope]:
    """The fleet generator's uploads of `phones` phones for `hours` from `start_ms`, in
    time order (true window start, then phone), as `ggsim generate` writes them."""
    config = FleetConfig(seed=seed, phones=phones, start_ms=start_ms, hours=hours)
    found: list[Envelope] = []
    for block in FleetGenerator(config).iter_blocks():
        lines = encode_lines(block)
        for i in np.lexsort((block.phone, block.order_ms)).tolist():
            body = lines[i].rstrip(b"\n")
            found.append(Envelope(
                int(block.phone[i]), block.device_id[i].decode(), block.user_id[i].decode(),
                block.batch_id[i].decode(), int(block.seq[i]), int(block.order_ms[i]),
                int(block.period_start_ms[i]), body,
                body.index(PAYLOAD_KEY)))
    return found
