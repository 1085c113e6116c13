"""schemathesis hooks for fuzzing `ggsim serve` (loaded with SCHEMATHESIS_HOOKS).

A schema-valid upload for some other device is refused with 403 before anything else is
read, so unhooked fuzzing never reaches the payload's own rules or the database. For
positive cases of `POST /upload` this hook names the authenticated device and its user
(`GGSIM_FUZZ_DEVICE`, `GGSIM_FUZZ_USER`), sends the batch id as the Idempotency-Key and
makes `summary.count` the number of readings: rules JSON Schema cannot state. Negative
cases are left as generated, so they stay invalid. Cross-device uploads are tested on
their own (tests/test_backend_authz.py).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis import GenerationMode


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if (case.operation.path != "/upload" or meta is None
            or meta.generation.mode != GenerationMode.POSITIVE
            or not isinstance(case.body, dict)):
        return case
    case.body["device_id"] = os.environ["GGSIM_FUZZ_DEVICE"]
    case.body["user_id"] = os.environ["GGSIM_FUZZ_USER"]
    if isinstance(case.body.get("batch_id"), str):
        case.headers = {**(case.headers or {}), "Idempotency-Key": case.body["batch_id"]}
    payload = case.body.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("summary"), dict) \
            and isinstance(payload.get("batch"), list):
        payload["summary"]["count"] = len(payload["batch"])
    return case
