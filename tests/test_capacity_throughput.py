"""The SLO verdicts and the knee (planted step results), the open-model scheduler against
a deliberately slow local server, and the throughput measurements on the real backend and
a real PostgreSQL (short: a couple of small steps, tiny fleets). No assertion is on timing
beyond generous bounds on when requests were sent."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from dataclasses import replace

import aiohttp
import psutil
import pytest
from aiohttp import web

from simulator.capacity.slo import (
    Breach,
    SloThresholds,
    StepResult,
    find_knee,
    judge,
    nearest_rank,
)
from simulator.capacity.throughput import (
    TEN_K_USERS_AVERAGE_PER_S,
    BackendProcess,
    HttpRequest,
    JobTimingRow,
    average_uploads_per_s,
    fit_job_times,
    measure_aggregation_job,
    measure_burst,
    measure_pot_reads,
    measure_ramp,
    send_at,
    step_result,
    uniform_offsets,
)
from simulator.errors import SimulatorError, UsageError
from simulator.instants import parse_instant


def planted(rate: float, *, p99_ms: float = 20.0, sent_share: float = 1.0, ok: int | None = None,
            e5xx: int = 0, timeouts: int = 0, connection: int = 0, e4xx: int = 0) -> StepResult:
    """A step at `rate` for 10 s: 10·rate requests, `sent_share` of them sent."""
    requests = round(rate * 10)
    sent = round(requests * sent_share)
    failed = e5xx + timeouts + connection + e4xx
    return StepResult(
        offered_rate_per_s=rate, duration_s=10.0, requests=requests, sent=sent,
        achieved_send_rate_per_s=rate * sent_share, completed_per_s=rate * sent_share,
        latency_ms_p50=p99_ms / 4, latency_ms_p95=p99_ms / 2, latency_ms_p99=p99_ms,
        latency_ms_max=p99_ms * 1.5, ok=sent - failed if ok is None else ok,
        client_errors_4xx=e4xx, errors_5xx=e5xx, errors_timeout=timeouts,
        errors_connection=connection)


# -- the SLO (pure) ---------------------------------------------------------------------------


def test_a_step_within_every_threshold_holds() -> None:
    verdict = judge(planted(100, p99_ms=499.0, e5xx=9))  # 9 of 1,000: 0.9 %
    assert verdict.held and verdict.cause is None and verdict.reasons == ()


def test_a_step_whose_p99_is_over_the_threshold_breaks_on_latency() -> None:
    verdict = judge(planted(100, p99_ms=501.0))
    assert verdict.breaches == (Breach.LATENCY,)
    assert "501 ms > 500 ms" in verdict.reasons[0]
    assert judge(planted(100, p99_ms=501.0), SloThresholds(latency_ms_p99_max=600)).held


def test_errors_over_the_share_break_and_count_5xx_timeouts_and_connection_errors() -> None:
    # 4 + 4 + 3 = 11 of 1,000 sent: 1.1 % > 1 %
    verdict = judge(planted(100, e5xx=4, timeouts=4, connection=3))
    assert verdict.breaches == (Breach.ERRORS,) and verdict.cause is Breach.ERRORS
    assert verdict.step.errors == 11
    assert "5xx 4, timeouts 4, connection 3" in verdict.reasons[0]
    assert judge(planted(100, e5xx=10)).held  # exactly 1 %: not over


def test_4xx_answers_are_the_clients_fault_and_never_break_a_step() -> None:
    step = planted(100, e4xx=500)
    assert step.client_errors_4xx == 500 and step.errors == 0 and step.error_share == 0
    assert judge(step).held


def test_an_under_offered_step_is_generator_saturated_not_a_server_break() -> None:
    # the server looks broken too, but it was not offered the rate
    verdict = judge(planted(1_000, sent_share=0.9, p99_ms=900.0, e5xx=500))
    assert verdict.cause is Breach.GENERATOR_SATURATED
    assert set(verdict.breaches) == {Breach.GENERATOR_SATURATED, Breach.LATENCY, Breach.ERRORS}
    assert not verdict.cause.server_broke
    assert verdict.reasons[0].startswith("generator saturated: sent 900.0/s of 1,000.0/s")
    assert judge(planted(1_000, sent_share=0.96)).held  # 96 % >= 95 %


def test_the_knee_is_the_last_rate_held_below_the_first_that_broke() -> None:
    steps = [planted(400, p99_ms=800.0), planted(10), planted(100), planted(200),
             planted(800, e5xx=8_000)]
    knee = find_knee(steps)  # judged in order of rate, whatever order they came in
    assert (knee.held_rate_per_s, knee.broke_rate_per_s) == (200, 400)
    assert knee.cause is Breach.LATENCY and knee.server_broke
    assert [v.step.offered_rate_per_s for v in knee.verdicts] == [10, 100, 200, 400, 800]
    assert "held up to 200.0/s; broke at 400.0/s" in knee.summary


def test_a_knee_names_a_saturated_generator() -> None:
    knee = find_knee([planted(100), planted(3_200, sent_share=0.5)])
    assert knee.broke_rate_per_s == 3_200 and knee.cause is Breach.GENERATOR_SATURATED
    assert not knee.server_broke


def test_a_ramp_that_never_broke_and_one_that_broke_at_once() -> None:
    held = find_knee([planted(10), planted(20)])
    assert (held.held_rate_per_s, held.broke_rate_per_s, held.cause) == (20, None, None)
    assert held.summary == "no step broke; highest rate held 20.0/s"
    broke = find_knee([planted(10, timeouts=50), planted(20)])
    assert (broke.held_rate_per_s, broke.broke_rate_per_s) == (None, 10)


def test_nothing_sent_is_generator_saturated() -> None:
    step = replace(planted(50), sent=0, ok=0, achieved_send_rate_per_s=0.0,
                   latency_ms_p99=math.nan)
    assert judge(step).cause is Breach.GENERATOR_SATURATED


@pytest.mark.parametrize("bad", [dict(latency_ms_p99_max=0), dict(error_share_max=1.0),
                                 dict(error_share_max=-0.1), dict(send_rate_share_min=0),
                                 dict(send_rate_share_min=1.5)])
def test_thresholds_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        SloThresholds(**bad)


def test_step_results_that_do_not_add_up_are_refused() -> None:
    with pytest.raises(UsageError, match="does not add up"):
        replace(planted(10), ok=500)
    with pytest.raises(UsageError):
        find_knee([])


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 0.99) == 99.0 and nearest_rank(values, 1.0) == 100.0
    assert nearest_rank(values, 0.5) == 50.0 and nearest_rank([7.0], 0.99) == 7.0
    assert nearest_rank([1.0, 1000.0], 0.99) == 1000.0  # never interpolated down
    assert math.isnan(nearest_rank([], 0.5))


def test_the_ten_k_average_rate() -> None:
    assert abs(TEN_K_USERS_AVERAGE_PER_S - 100 / 3) < 1e-9
    assert average_uploads_per_s(1_000) == pytest.approx(3.333, abs=1e-3)
    assert uniform_offsets(4, 8.0) == [0.0, 0.125, 0.25, 0.375]


# -- the open-model scheduler -----------------------------------------------------------------


@pytest.fixture
def slow_server() -> Iterator[str]:
    """A local HTTP server that answers each request after 1 s, status from the path
    (/ok 200, /missing 404, /broken 503)."""
    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        status = {"ok": 200, "missing": 404, "broken": 503}[request.match_info["what"]]
        return web.Response(status=status, text="done")

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{what}", handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def _send(url: str, requests: list[HttpRequest], offsets: list[float], timeout_s: float,
          send_window_s: float | None = None) -> list:  # type: ignore[type-arg]
    async def go() -> list:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as session:
            return await send_at(session, url, requests, offsets, timeout_s=timeout_s,
                                 send_window_s=send_window_s)
    return asyncio.run(go())


def test_requests_go_at_their_offered_times_however_slow_the_answers(slow_server: str) -> None:
    offsets = uniform_offsets(25, 50.0)  # 25 requests over 0.5 s; each answer takes 1 s
    exchanges = _send(slow_server, [HttpRequest("GET", "/ok")] * 25, offsets, timeout_s=10)
    sent = [e.sent_s for e in exchanges]
    assert all(s is not None for s in sent)
    # a closed loop of one would need 25 s; sent on schedule, within generous bounds
    assert max(sent) < 0.5 + 0.4
    assert max(e.sent_s - e.due_s for e in exchanges) < 0.4
    assert all(e.sent_s >= e.due_s for e in exchanges)  # never early
    assert all(e.status == 200 and e.latency_ms >= 900 for e in exchanges)  # slow, answered
    step = step_result(exchanges, 50.0)
    assert step.sent == step.ok == 25 and step.errors == 0
    assert step.achieved_send_rate_per_s > 0.5 * 50  # a loose bound: never a timing test


def test_outcomes_are_classified(slow_server: str) -> None:
    requests = [HttpRequest("GET", "/ok"), HttpRequest("GET", "/missing"),
                HttpRequest("GET", "/broken"), HttpRequest("GET", "/ok")]
    exchanges = _send(slow_server, requests, [0.0, 0.0, 0.0, 0.0], timeout_s=5)
    late = _send(slow_server, [HttpRequest("GET", "/ok")], [0.0], timeout_s=0.2)
    refused = _send("http://127.0.0.1:9", [HttpRequest("GET", "/ok")], [0.0], timeout_s=5)
    step = step_result([*exchanges, *late, *refused], 10.0)
    assert (step.ok, step.client_errors_4xx, step.errors_5xx) == (2, 1, 1)
    assert (step.errors_timeout, step.errors_connection) == (1, 1)
    assert late[0].failure == "timeout" and refused[0].failure == "connection"


def test_requests_past_the_send_window_are_not_sent(slow_server: str) -> None:
    exchanges = _send(slow_server, [HttpRequest("GET", "/ok")] * 2, [0.0, 30.0],
                      timeout_s=5, send_window_s=0.5)
    assert exchanges[0].status == 200
    assert exchanges[1].sent_s is None and exchanges[1].status is None
    step = step_result(exchanges, 1.0)
    assert (step.requests, step.sent) == (2, 1)


# -- on the real backend and PostgreSQL --------------------------------------------------------


def test_the_backend_process_stops_when_its_block_fails(database_url: str) -> None:
    pid = None
    with pytest.raises(RuntimeError, match="planted"), \
            BackendProcess(database_url, parse_instant("2024-03-04T12:00:00Z")) as server:
        pid = server.pid
        assert server.url.startswith("http://127.0.0.1:")
        raise RuntimeError("planted")
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_bad_backend_start_is_reported() -> None:
    with pytest.raises(SimulatorError, match="did not"):
        BackendProcess("postgresql://nobody@127.0.0.1:9/none", 0).start(timeout_s=30)


def test_a_short_ramp_stores_every_upload(database_url: str) -> None:
    result = measure_ramp(database_url, quick=True, rates_per_s=(20, 40), step_s=1.0,
                          devices=10)
    assert len(result.steps) >= 2
    assert [s.offered_rate_per_s for s in result.steps[:2]] == [20, 40]
    assert [s.requests for s in result.steps[:2]] == [20, 40]
    for step in result.steps:
        assert step.sent == step.ok == step.requests  # every upload answered 201
        assert step.generator_cpu_share is not None and step.server_cpu_share is not None
    assert result.warmup_uploads == 10
    assert result.uploads_acknowledged == 10 + sum(s.ok for s in result.steps)
    assert result.rows_stored == result.uploads_acknowledged and result.all_stored
    assert result.knee.verdicts[0].step is result.steps[0]


def test_a_tiny_burst_aligned_and_jittered(database_url: str) -> None:
    result = measure_burst(database_url, quick=True, phones=200, jittered_slice_s=4.0)
    aligned, jittered = result.aligned, result.jittered
    assert 150 < aligned.uploads <= 200 and aligned.ok == aligned.uploads
    assert aligned.schedule_span_s == 0.0 and aligned.offered_rate_per_s is None
    # the phones whose upload falls in the window's first 4 s (about 200 × 4 / 300)
    assert 0 < jittered.uploads < 15 and jittered.ok == jittered.uploads
    assert jittered.schedule_span_s < 4.0
    assert jittered.offered_rate_per_s == pytest.approx(aligned.uploads / 300, rel=0.2)
    assert "phase" in result.jitter_source


def test_the_job_timing_loads_what_it_says_and_times_every_run(database_url: str) -> None:
    result = measure_aggregation_job(database_url, quick=True, users=(50, 200), runs=2,
                                     behind_min=2)
    main, deep = result.rows[:2], result.rows[2]
    assert [r.users for r in main] == [50, 200] and deep.users == 50
    for row in result.rows:
        assert len(row.run_s) == 2 and all(s > 0 for s in row.run_s)
        assert 0 < row.new_rows < row.table_rows
        assert row.cells_5m > 0 and row.cells_daily > 0
        # one minute of uploads: users × 288 / 1440, give or take the fleet's phases
        assert row.users / 5 / 2 < row.new_rows < row.users / 5 * 2
    # the deeper table is the same span of uploads repeated back in time, rows and all
    copies = (deep.behind_min + 1) / (result.behind_min + 1)
    assert copies == int(copies) > 1
    assert deep.table_rows == copies * main[0].table_rows and deep.new_rows == main[0].new_rows
    assert [f.model.split(":")[0] for f in result.fits] == ["line", "power law", "line"]


def test_job_fits_find_the_fleet_size_of_a_minute_on_planted_times() -> None:
    rows = [JobTimingRow(users, 5.0, users // 5, users * 6 // 5,
                         (users * 1e-3 * 0.99, users * 1e-3 * 1.01), 1, 1)
            for users in (1_000, 10_000, 20_000)]
    line, power, per_row = fit_job_times(rows, 5.0)
    assert line.users_at_minute == pytest.approx(60_000, rel=0.01)
    low, estimate, high = line.users_at_minute_low, line.users_at_minute, line.users_at_minute_high
    assert low is not None and estimate is not None and high is not None
    assert low <= estimate <= high
    assert line.extrapolated and power.slope == pytest.approx(1.0, abs=0.01)
    # per table row: 1e-3 s per user / 1.2 rows per user; 30 days of 288 uploads a user
    assert per_row.users_at_minute == pytest.approx(60 / (1e-3 / 1.2) / (288 * 30), rel=0.02)
    inside = fit_job_times([replace(r, run_s=(r.users * 0.01,) * 2) for r in rows], 5.0)
    assert not inside[0].extrapolated  # 6,000 users: between the points


def test_pot_reads_at_table_sizes(database_url: str) -> None:
    result = measure_pot_reads(database_url, quick=True, users=(10, 100), requests=20)
    assert [r.users for r in result.rows] == [10, 100]
    assert [r.daily_pots_rows for r in result.rows] == [10, 100]
    assert [r.step.ok for r in result.rows] == [10, 20]  # at most one request a user
    assert all(r.step.errors == 0 and r.latency_ms_p50 > 0 for r in result.rows)


def test_no_backend_process_is_left_behind() -> None:
    """Run last in this file: every measurement above stopped its `ggsim serve`."""
    def command(process: psutil.Process) -> str:
        try:
            return " ".join(process.cmdline())
        except psutil.Error:  # gone meanwhile
            return ""
    mine = psutil.Process().children(recursive=True)
    assert not [p for p in mine if "simulator.cli serve" in command(p)]
