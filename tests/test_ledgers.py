"""The three-ledger reconciliation, each anomaly proven by a planted fault."""

from __future__ import annotations

from simulator.checks.ledgers import MAINTENANCE_LOSS, Generated, group_arrivals, reconcile


def batches(n: int) -> list[Generated]:
    return [Generated(f"b{i}", i % 2, 100 + i, f"dev{i % 2}", 1_000 * i, 300_000 + 1_000 * i)
            for i in range(n)]


def test_a_clean_run_is_all_delivered() -> None:
    gen = batches(4)
    verdict = reconcile(gen, {g.batch_id: "saved" for g in gen}, {g.batch_id for g in gen},
                        {g.batch_id: 1 for g in gen}, {}, {})
    assert verdict.buckets == {"delivered": 4} and verdict.anomaly_count == 0
    assert verdict.delivered_fraction == 1.0


def test_every_batch_lands_in_one_bucket_and_unexplained_ones_are_anomalies() -> None:
    gen = batches(9)
    final = {"b0": "saved", "b1": "saved", "b2": "queued", "b3": "refused", "b4": "overflow",
             "b5": "saved", "b6": "not_sent", "b7": "killed"}  # b8: no outcome at all
    acknowledged = {"b0", "b1", "b5"}
    backend = {"b0": 1, "b1": 3}  # b1 stored three times; b5 acknowledged but not stored
    verdict = reconcile(gen, final, acknowledged, backend, {}, {"b3": "http 422"})
    assert verdict.buckets == {"delivered": 2, "pending": 1, "refused": 1, "overflow": 1,
                               "lost": 1, "not_sent": 1, "killed": 1, "missing": 1}
    assert sum(verdict.buckets.values()) == verdict.generated == 9
    assert verdict.anomalies == {"duplicate upload": 2, "lost acknowledged upload": 1,
                                 "lost to an app kill": 1, "missing upload": 1}
    assert "b5" in verdict.examples["lost acknowledged upload"].detail
    assert verdict.refused_reasons == {"http 422": 1}


def test_a_phone_claiming_success_without_an_acknowledgement_is_a_missing_upload() -> None:
    gen = batches(1)
    verdict = reconcile(gen, {"b0": "saved"}, set(), {}, {}, {})
    assert verdict.anomalies == {"missing upload": 1}


def test_reordered_arrivals_are_counted_per_device() -> None:
    arrivals = group_arrivals([("dev0", 1, 10), ("dev0", 2, 12), ("dev0", 3, 11),
                               ("dev1", 1, 5), ("dev1", 2, 6)])
    verdict = reconcile([], {}, set(), {}, arrivals, {})
    assert verdict.reordered == 1 and verdict.anomaly_count == 0


def test_batches_deleted_by_maintenance_are_their_own_anomaly() -> None:
    gen = batches(3)
    final = {"b0": "maintenance", "b1": "maintenance", "b2": "vanished"}
    at = 8 * 86_400_000
    verdict = reconcile(gen, final, set(), {}, {}, {}, maintained={"b0": at, "b1": at + 1})
    assert verdict.buckets == {"maintenance": 2, "missing": 1}
    assert verdict.anomalies == {MAINTENANCE_LOSS: 2, "missing upload": 1}
    example = verdict.examples[MAINTENANCE_LOSS]
    assert (example.phone, example.at_ms) == (0, at) and "b0" in example.detail
    assert "performMaintenance" in example.detail and "8.0 days later" in example.detail
    # a deleted batch the backend has anyway (a retry in flight got through) is delivered
    delivered = reconcile(gen[:1], {"b0": "maintenance"}, set(), {"b0": 1}, {}, {})
    assert delivered.buckets == {"delivered": 1} and delivered.anomaly_count == 0
