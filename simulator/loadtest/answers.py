"""A phone's HTTP effect sent on a locust user's client, and its answer as the core reads
it. Kept apart from `user` (which imports locust, and registers the load test's event
listeners) so the benchmark can send the phone's exact requests without a phone.

Invariant: every HTTP status is an `HttpResponse`, with its body and `Retry-After`; no
answer at all (a timeout, a refused connection: geventhttpclient reports status 0) is a
`NetworkError`, which the core handles as the app does.
"""

from __future__ import annotations

import socket
from typing import Any, cast

from simulator.errors import NetworkError
from simulator.phone.effects import Http, HttpResponse, retry_after


def answer(client: Any, request: Http) -> HttpResponse | NetworkError:
    """Send `request` on `client` (a locust `FastHttpSession`, named by its path in
    locust's statistics) and return what the core reads."""
    response = client.request(request.method, request.path,
                              data=cast(Any, request.body or None),
                              headers=dict(request.headers), name=request.path)
    if not response.status_code:  # no answer: geventhttpclient's error
        error = getattr(response, "error", None)
        kind = "timeout" if isinstance(error, socket.timeout | TimeoutError) else "refused"
        return NetworkError(kind, str(error))
    wait = response.headers.get("Retry-After") if response.headers else None
    return HttpResponse(response.status_code, bytes(response.content or b""),
                        retry_after(wait if isinstance(wait, str) else None))
