"""The running reference backend fuzzed from its own OpenAPI document by schemathesis
(`st run --checks all`: server errors, status codes, content types, headers and bodies
conforming to the document, schema-violating data refused, schema-valid data accepted,
auth not ignored, and the rest), authenticated as a registered device, under both schema
variants, with the repository's `schemathesis.toml` and `tests/schemathesis_hooks.py`.

A planted fault proves the run can fail: the document stops listing the claim's 409.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_backend_api import START_MS

from simulator.backend import app
from simulator.backend.app import BackendConfig
from simulator.backend.clock import BackendClock
from simulator.backend.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 60  # schemathesis examples per operation and phase in the default suite
SEED = 20261205


def fuzz(server: BackgroundServer, report: Path, examples: int = EXAMPLES) -> dict[str, Any]:
    """One `st run` against `server` as a freshly registered device; its JSON report."""
    device, user = f"fuzz-{report.stem}", f"fuzz-user-{report.stem}"
    answer = httpx.post(f"{server.url}/devices", json={"device_id": device, "user_id": user})
    assert answer.status_code == 201, answer.text
    secret = answer.json()["secret"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
           "GGSIM_FUZZ_DEVICE": device, "GGSIM_FUZZ_USER": user, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
         "--checks", "all", "--max-examples", str(examples), "--seed", str(SEED),
         "--workers", "1", "-H", f"Authorization: Bearer {secret}", "-H",
         f"X-Device-Id: {device}", "--report", "json", "--report-json-path", str(report),
         "--no-color"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    result["stdout"] = run.stdout
    return result


@pytest.mark.slow
def test_schemathesis_finds_nothing(server: BackgroundServer, tmp_path: Path) -> None:
    result = fuzz(server, tmp_path / "run.json")
    cases = result["test_cases"]
    print(f"schemathesis, {server.config.schema}: {cases['generated']} cases")
    assert result["failures"] == [] and result["errors"] == [], result["stdout"][-6000:]
    assert result["exit_code"] == 0 and result["complete"], result["stdout"][-6000:]
    assert result["operations"]["tested"] == result["operations"]["total"] == 7
    assert cases["generated"] >= 500
    # the hook lets schema-valid uploads through to storage: some are accepted
    upload = result["valid_rates"]["POST /upload"]
    assert sum(phase["accepted"] for phase in upload.values()) > 0, upload


@pytest.mark.slow
def test_schemathesis_catches_a_planted_fault(database_url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    honest = app.document

    def without_claim_409(config: BackendConfig) -> dict[str, Any]:
        document = honest(config)
        del document["paths"]["/daily-pot/claim"]["post"]["responses"]["409"]
        return document
    monkeypatch.setattr(app, "document", without_claim_409)
    config = BackendConfig(database_url, clock=BackendClock(origin_ms=START_MS + 3_600_000))
    with BackgroundServer(config) as running:
        result = fuzz(running, tmp_path / "planted.json", examples=10)
    titles = {failure.get("title", "") for failure in result["failures"]}
    assert result["exit_code"] != 0 and result["failures"], result["stdout"][-3000:]
    assert any("status code" in title.lower() for title in titles), titles
