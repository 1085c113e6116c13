"""The race-hunting state machine finds R2 and R4 under v2 and nothing under v3."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from simulator.checks.races import machine_for
from simulator.phone.profiles import V2, V3

FAST = settings(max_examples=30, stateful_step_count=16, deadline=None, database=None,
                derandomize=True, suppress_health_check=list(HealthCheck))


def test_v2_races_are_found_and_named() -> None:
    with pytest.raises(AssertionError, match=r"R2 double stop|R4 lost update"):
        run_state_machine_as_test(machine_for(V2), settings=FAST)


def test_v3_is_clean_within_the_budget() -> None:
    run_state_machine_as_test(machine_for(V3), settings=FAST)
