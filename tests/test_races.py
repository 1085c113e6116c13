"""The race-hunting state machine catches each v2 race on its own, and nothing under v3.

Both directions are asserted: a checker that cannot fail is worthless. The default run
is short; `pytest --hypothesis-profile=long` runs the same machines for much longer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from simulator.checks.races import RACES, machine_for
from simulator.errors import UsageError
from simulator.phone.profiles import V2, V3, only

EXPECTED = {"R1": r"R1 (overwrite|dropped write|lost write)", "R2": r"R2 double stop",
            "R3": r"R3 stale cache", "R4": r"R4 lost update", "R5": r"R5 torn operation"}


def budget() -> settings:
    """The loaded profile when it is a long one (>= 1,000 examples); otherwise a short,
    derandomized run, so the default suite is fast and never flaky."""
    current = settings.default
    quiet = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}
    if current.max_examples >= 1_000:
        return settings(current, **quiet)  # type: ignore[arg-type]
    # no explain phase: it reruns the failure for each step to annotate it (half the time)
    return settings(current, max_examples=40, stateful_step_count=16, derandomize=True,
                    phases=[p for p in Phase if p is not Phase.explain],
                    **quiet)  # type: ignore[arg-type]


@pytest.mark.parametrize("race", RACES)
def test_each_v2_race_is_caught_and_named(race: str) -> None:
    with pytest.raises(AssertionError, match=EXPECTED[race]):
        run_state_machine_as_test(machine_for(V2, [race]), settings=budget())


def test_all_operations_together_still_catch_a_v2_race() -> None:
    with pytest.raises(AssertionError, match="|".join(EXPECTED.values())):
        run_state_machine_as_test(machine_for(V2), settings=budget())


def test_v3_is_clean_within_the_budget() -> None:
    run_state_machine_as_test(machine_for(V3), settings=budget())


@pytest.mark.parametrize(("fix", "race"), [("transactions", "R2"), ("transactions", "R4"),
                                           ("transactions", "R5"), ("pot_versioning", "R3")])
def test_the_fix_for_a_race_removes_it_from_the_state_machine(fix: str, race: str) -> None:
    run_state_machine_as_test(machine_for(only(fix), [race]), settings=budget())


def test_unknown_race_names_are_rejected() -> None:
    with pytest.raises(UsageError, match="R9"):
        machine_for(V2, ["R9"])


def test_r1_shows_both_ways_a_kotlin_save_is_lost_under_v2() -> None:
    """Flutter's REPLACE overwrites Kotlin's row; Kotlin's INSERT after Flutter's returns
    -1 and its acknowledged upload never reaches the file."""
    from simulator.checks import hunt

    found, _ = hunt.hunt(V2, scenarios=["same-id-save"])
    assert {f.anomaly.kind for f in found} == {"overwrite", "dropped write"}
    assert hunt.hunt(V3, scenarios=["same-id-save"])[0] == []
