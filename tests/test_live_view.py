"""The live view draws what it is given (latest readings, counts, events), and the push
URLs name the address the phone must reach."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from simulator.live.server import phone_urls
from simulator.live.view import LiveView

SNAPSHOT: dict[str, Any] = {
    "device_id": "phone-1", "session_id": "s-1",
    "messages": {"accepted": 12, "duplicates": 1, "reordered": 2, "missing": 3, "late": 1,
                 "joined_at": 0},
    "refused": {"422": 2}, "samples": 900, "late_samples": 4,
    "samples_by_file": {"Barometer.csv": 12, "Location.csv": 3},
    "batches_sealed": 1,
    "last": {"Barometer.csv": {"time": 1_715_671_812_495_000_000, "pressure": 1013.25,
                               "relativeAltitude": 0.5},
             "Location.csv": {"time": 1_715_671_812_495_000_000, "latitude": 53.551086,
                              "longitude": 9.993682, "horizontalAccuracy": None},
             "Magnetometer.csv": {"time": 1, "x": 1.0}},
}


def test_the_panel_shows_counts_readings_and_events() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with LiveView(console, panel=True, urls=["http://127.0.0.1:8000/push"]) as view:
        view.note("live-walk: 40% of the run")
        view.update(SNAPSHOT)
        view.event("batch 0 built: 30 readings")
    text = out.getvalue()
    for expected in ("http://127.0.0.1:8000/push", "live-walk: 40% of the run",
                     "missing 3", "refused 2 x 422", "pressure 1013", "latitude 53.55",
                     "horizontalAccuracy -", "batch 0 built: 30 readings"):
        assert expected in text, (expected, text)
    assert "Magnetometer" not in text  # counted, not shown


def test_without_a_terminal_each_event_is_a_line() -> None:
    out = io.StringIO()
    with LiveView(Console(file=out, width=200), panel=False, urls=["u"]) as view:
        view.update(SNAPSHOT)
        view.event("upload of batch 0: saved")
    assert out.getvalue().rstrip().endswith("upload of batch 0: saved")
    assert "latest readings" not in out.getvalue()


class _Bound:
    def __init__(self, host: str) -> None:
        self.host = host

    def getsockname(self) -> tuple[str, int]:
        return self.host, 8000


def test_push_urls_name_the_bound_address_or_every_ipv4_address() -> None:
    assert phone_urls(_Bound("192.168.1.20")) == [  # type: ignore[arg-type]
        "http://192.168.1.20:8000/push"]
    every = phone_urls(_Bound("0.0.0.0"))  # type: ignore[arg-type]
    assert "http://127.0.0.1:8000/push" in every
    assert all(url.startswith("http://") and url.endswith(":8000/push") for url in every)
