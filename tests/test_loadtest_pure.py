"""The load test's pure parts, without locust: the master's book of phones, the ledgers'
pieces and their merge, and the gates."""

from __future__ import annotations

import pytest

from simulator.checks.ledgers import Generated, Verdict
from simulator.errors import FleetFull, UsageError
from simulator.fleet.ledger import FleetLedger
from simulator.fleet.timeline import Timeline
from simulator.instants import HOUR_MS, parse_instant
from simulator.loadtest.allocator import PhoneAllocator
from simulator.loadtest.diurnal import DiurnalCurve, DiurnalPlan
from simulator.loadtest.gates import Gates, Measured, judge
from simulator.loadtest.ledgers import PIECE_BATCHES, ClusterLedger, pieces
from simulator.sensors.personas import DEFAULT_MIX


def test_n_users_hold_exactly_phones_zero_to_n_minus_one_across_workers() -> None:
    book = PhoneAllocator(phones=10)
    got = [book.acquire(w) for w in ("a", "b", "c", "a", "b", "c", "a")]
    assert sorted(got) == list(range(7)) and len(set(got)) == 7
    assert book.spread() == {"a": 3, "b": 2, "c": 2}
    book.release(1, "b", "s1")
    book.release(1, "b", "s1")  # repeated: ignored
    book.release(2, "b", "nope")  # not b's: ignored
    assert book.acquire("c") == 1 and book.secret(1) == "s1"  # the lowest free, its secret
    assert book.release_worker("a") == [0, 3, 6]
    assert sorted(book.holders) == [1, 2, 4, 5]
    assert [book.acquire("d") for _ in range(6)] == [0, 3, 6, 7, 8, 9]
    with pytest.raises(FleetFull, match="all 10 phones are in use"):
        book.acquire("d")
    assert max(book.grants.values()) == 2  # the given-back phones, each granted twice


def _ledger(n: int, phone: int) -> FleetLedger:
    ledger = FleetLedger(Timeline(0))
    for i in range(n):
        ledger.generated.append(Generated(f"b{phone}-{i}", phone, i, "h", 1000 * i, 1000 * i))
        ledger.final[f"b{phone}-{i}"] = "saved" if i % 3 else "queued"
        if i % 3:
            ledger.acknowledged.add(f"b{phone}-{i}")
    return ledger


def test_pieces_merge_once_in_any_order_and_say_when_a_worker_is_complete() -> None:
    big = _ledger(PIECE_BATCHES + 5, 1)
    parts = list(pieces("w1", big, ["b1-0"], [1]))
    assert [p["of"] for p in parts] == [2, 2]
    merged = ClusterLedger()
    merged.add(parts[1])
    assert not merged.complete(["w1"])
    merged.add(parts[1])  # a repeated piece is applied once
    merged.add(parts[0])
    for piece in pieces("w2", _ledger(4, 2), [], [2]):
        merged.add(piece)
    assert merged.complete(["w1", "w2"]) and not merged.complete(["w1", "w3"])
    assert len(merged.generated) == PIECE_BATCHES + 5 + 4
    assert merged.acknowledged == big.acknowledged | _ledger(4, 2).acknowledged
    assert merged.queued == {"b1-0"} and merged.phone_runs() == {1: 1, 2: 1}


def _measured(**kw: object) -> Measured:
    base = {"requests": 1000, "failures": 5, "rps": 50.0, "upload_p50_ms": 20.0,
            "upload_p95_ms": 80.0, "upload_p99_ms": 150.0}
    base.update(kw)
    return Measured(**base)  # type: ignore[arg-type]


def test_gates_pass_a_clean_run_and_catch_each_planted_fault() -> None:
    clean = Verdict(generated=100)
    clean.buckets["delivered"] = 100
    gates = Gates(p50_ms=50, p95_ms=100, p99_ms=200, max_error_rate=0.01, min_rps=40)
    assert all(c.passed for c in judge(gates, _measured(), clean))

    def failed(measured: Measured, verdict: Verdict | None) -> set[str]:
        return {c.name for c in judge(gates, measured, verdict) if not c.passed}
    assert failed(_measured(upload_p99_ms=250.0), clean) == {"upload p99"}
    assert failed(_measured(failures=50), clean) == {"error rate"}
    assert failed(_measured(rps=10.0), clean) == {"throughput"}
    assert failed(_measured(requests=0, failures=0, upload_p50_ms=None, upload_p95_ms=None,
                            upload_p99_ms=None), clean) >= {"upload p50", "error rate"}
    duplicated = Verdict(generated=100)
    duplicated.buckets["delivered"] = 100
    duplicated.anomalies["duplicate upload"] = 1
    assert failed(_measured(), duplicated) == {"exactly once"}
    lost = Verdict(generated=100)
    lost.buckets["delivered"] = 90
    lost.anomalies["lost acknowledged upload"] = 10
    assert failed(_measured(), lost) == {"exactly once", "delivered"}
    assert failed(_measured(), None) == {"exactly once", "delivered"}  # backend not read


def test_phones_joining_together_are_generated_together_each_hour_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A cohort: phones joining within the window share their generation; each hour is
    generated once for all of them, each phone gets exactly its own batches (the same as
    generated alone), a sealed cohort takes no one new, and a phone that leaves is not
    kept batches for."""
    from simulator.fleet import scenario as scenarios
    from simulator.fleet.loader import batches
    from simulator.instants import HOUR_MS
    from simulator.loadtest.worker import COHORT_WINDOW_S, WorkerPhones
    from simulator.sensors.generator import FleetGenerator

    chosen = scenarios.override(scenarios.load("smoke"), duration_s=3 * 3600.0)
    phones = WorkerPhones(chosen, 1000)
    calls: list[list[int]] = []
    real_block = FleetGenerator.block

    def counted(self: FleetGenerator, which: object, hour: int) -> object:
        calls.append(list(which))  # type: ignore[call-overload]
        return real_block(self, which, hour)  # type: ignore[arg-type]
    monkeypatch.setattr(FleetGenerator, "block", counted)
    start = phones.start_ms
    joined = [phones.join(i, "s", lambda op: None, start, wall_s=0.1 * n)
              for n, i in enumerate((7, 3, 500))]
    assert all(phones.cohort_wait_s(phone, 0.2) > 0 for phone in joined)  # still open
    for phone in joined:
        phones.top_up(phone, start)
    assert calls == [[3, 7, 500], [3, 7, 500]]  # this hour and the next, once each
    late = phones.join(9, "s", lambda op: None, start, wall_s=0.3)  # sealed: a new cohort
    assert phones.cohort_of[9] is not phones.cohort_of[7]
    assert phones.cohort_wait_s(late, 0.3 + COHORT_WINDOW_S + 0.01) == 0
    hour = start // HOUR_MS
    alone = FleetGenerator(phones.generator.config)
    for phone in joined:
        mine = [b.batch_id for b in batches(real_block(alone, [phone.index], hour), start,
                                            phones.end_ms)]
        assert [b.batch_id for b in phone.pending][:len(mine)] == mine and mine
    phones.retire(500)
    phones.top_up(joined[0], start + 2 * HOUR_MS)  # phone 7 reaches the third hour
    assert all(500 not in by_phone for by_phone in phones.cohort_of[7].hours.values())


def test_a_ramp_step_is_the_difference_of_two_snapshots_in_capacitys_terms() -> None:
    from simulator.loadtest.ramp import RampPlan, Snapshot, classify, step_result

    assert [classify(e) for e in ("HTTPError('503 Service Unavailable')", "timed out",
                                  "ConnectionRefusedError(111)", "HTTPError('429 x')")] == [
        "5xx", "timeout", "connection", "4xx"]
    before = Snapshot(10.0, 100, 98, 0, 1, 1, 0, {5: 90, 40: 10})
    after = Snapshot(20.0, 300, 290, 2, 6, 1, 1, {5: 180, 40: 10, 900: 10, 30: 100})
    step = step_result(before, after, users=50, speed=60)  # 50 phones x 0.2/s = 10/s
    assert step.offered_rate_per_s == 10.0 and step.sent == 200 and step.requests == 200
    assert (step.ok, step.client_errors_4xx, step.errors_5xx, step.errors_timeout,
            step.errors_connection) == (192, 2, 5, 0, 1)
    # 200 new times: 90 x 5 ms, 100 x 30 ms, 10 x 900 ms (the 40 ms ones are old)
    # nearest rank: the 100th, 190th and 198th smallest
    assert (step.latency_ms_p50, step.latency_ms_p95, step.latency_ms_p99) == (30, 30, 900)
    assert step.achieved_send_rate_per_s == 20.0 and step.error_share == 6 / 200
    plan = RampPlan(first_users=5, step_users=3, step_s=10)
    assert [plan.users(plan.step_at(t)) for t in (0, 9.9, 10, 35)] == [5, 5, 8, 14]


def test_an_aligned_phone_sends_each_batch_on_the_next_five_minute_boundary() -> None:
    from simulator.fleet import scenario as scenarios
    from simulator.instants import WINDOW_MS
    from simulator.loadtest.worker import WorkerPhones

    phased, aligned = (WorkerPhones(scenarios.load("smoke"), 50, aligned=a)
                       for a in (False, True))
    mine = phased.join(4, "s", lambda op: None, phased.start_ms, 0.0)
    herd = aligned.join(4, "s", lambda op: None, aligned.start_ms, 0.0)
    phased.top_up(mine, phased.start_ms)
    aligned.top_up(herd, aligned.start_ms)
    assert [b.batch_id for b in mine.pending] == [b.batch_id for b in herd.pending]
    assert any(b.due_ms % WINDOW_MS for b in mine.pending)  # the app's own phase
    for own, moved in zip(mine.pending, herd.pending, strict=True):
        assert moved.due_ms % WINDOW_MS == 0 and 0 <= moved.due_ms - own.due_ms < WINDOW_MS


def test_the_diurnal_curve_is_the_persona_mixs_awake_share_by_local_time() -> None:
    """By hand from the personas' rhythms (Berlin is UTC+1; 2024-01-09 is a Tuesday):
    at 03:00 only the night shift (10 % of the mix) is awake, at 10:00 all but the night
    shift, at 16:00 everyone, at 22:45 commuters, office workers and the night shift; on a
    Saturday at 03:00 nobody, so the floor (or one phone) is what stays online."""
    curve = DiurnalCurve.of_mix(DEFAULT_MIX, utc_offset_h=1)
    tuesday = parse_instant("2024-01-09T00:00:00Z")

    def at(local: str) -> float:
        h, m = (int(x) for x in local.split(":"))
        return curve.share_at(tuesday + (h - 1) * HOUR_MS + m * 60_000)

    assert at("03:00") == pytest.approx(0.1)
    assert at("10:00") == pytest.approx(0.9)
    assert at("16:00") == pytest.approx(1.0)
    assert at("22:45") == pytest.approx(0.7)
    saturday_3am = parse_instant("2024-01-13T02:00:00Z")
    assert curve.users(10_000, saturday_3am) == 1
    floored = DiurnalCurve.of_mix(DEFAULT_MIX, utc_offset_h=1, floor=0.2)
    assert floored.users(10_000, saturday_3am) == 2_000
    assert floored.users(10_000, tuesday + 15 * HOUR_MS) == 10_000
    hourly = curve.hourly(10_000, tuesday)
    assert len(hourly) == 24 and min(hourly) == 1_000 and max(hourly) == 10_000
    with pytest.raises(UsageError, match="diurnal-floor"):
        DiurnalPlan(floor=1.5)
    with pytest.raises(UsageError, match="positive weight"):
        DiurnalCurve.of_mix({"commuter": 0.0}, utc_offset_h=1)


def test_a_phone_loads_an_hour_past_where_it_stands_not_up_to_its_claim() -> None:
    """The load point is the next batch when the phone has one, else the clock (or the end
    of what it has, when it is behind): a claim hours away is not where it stands, and
    loading up to it held hours of batches per phone."""
    from simulator.fleet import scenario as scenarios
    from simulator.loadtest.worker import WorkerPhones

    chosen = scenarios.override(scenarios.load("smoke"), duration_s=24 * 3600.0)
    phones = WorkerPhones(chosen, 10)
    start = phones.start_ms
    phone = phones.join(3, "s", lambda op: None, start, wall_s=0.0)
    phone.claim_due_ms = start + 10 * HOUR_MS  # the user claims in the evening
    assert phones.load_point_ms(phone, start) == start
    phones.top_up(phone, phones.load_point_ms(phone, start))
    assert phone.pending
    assert phone.pending[-1].due_ms <= start + 3 * HOUR_MS  # this hour and the next
    first = phone.pending[0].due_ms
    assert phones.load_point_ms(phone, start + 5 * HOUR_MS) == first  # behind: its next
    loaded_until = phones.loaded_until_ms(phone)
    phone.pending.clear()  # it sent all it had, and the clock ran on
    assert phones.load_point_ms(phone, start + 5 * HOUR_MS) == loaded_until
    assert phones.load_point_ms(phone, start + 1) == start + 1  # ahead: the clock's now
