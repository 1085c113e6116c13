"""The lock (`constraints.txt`) pins exactly what pyproject.toml needs, inside its ranges, and
the environment the tests run in is the one it pins; each rule is shown catching a planted
fault. Refresh the lock with `scripts/refresh-lock` (README, 'Installing: the lock')."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from lock_check import Installed, disagreements, parse_lock
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = (ROOT / "constraints.txt").read_text(encoding="utf-8")


def installed_here() -> dict[NormalizedName, Installed]:
    found: dict[NormalizedName, Installed] = {}
    for dist in metadata.distributions():
        found[canonicalize_name(dist.metadata["Name"])] = Installed(
            dist.version, tuple(dist.requires or ()))
    return found


def test_the_lock_pyproject_and_this_environment_agree() -> None:
    problems = disagreements(PYPROJECT, LOCK, installed_here())
    assert not problems, ("\n".join(problems) + "\nrefresh the lock: scripts/refresh-lock; or "
                          "install from it: PIP_CONSTRAINT=constraints.txt pip install -e "
                          "'.[test]'")


def test_the_build_backend_is_pinned_for_pips_build_environment() -> None:
    assert "hatchling" in parse_lock(LOCK).build


# A small world with planted faults: pyproject needs a (with its extra) and b; a needs c.
WORLD = {"project": {"dependencies": ["a[fast]>=1"], "optional-dependencies": {"test": ["b"]}},
         "build-system": {"requires": ["builder>=2"]}}
INSTALLED = {
    canonicalize_name("a"): Installed("1.5", ("c>=1", "d; extra == 'fast'",
                                              "e; sys_platform == 'nowhere'")),
    canonicalize_name("b"): Installed("3.0", ()),
    canonicalize_name("c"): Installed("2.0", ("a",)),  # a cycle back to a
    canonicalize_name("d"): Installed("0.1", ()),
}
GOOD = "a==1.5\nb==3.0\nc==2.0\nd==0.1\n\n# build backend: ...\nbuilder==2.1\n"


def test_a_lock_that_agrees_has_no_disagreements() -> None:
    assert disagreements(WORLD, GOOD, INSTALLED) == []


@pytest.mark.parametrize(("lock", "expected"), [
    (GOOD.replace("b==3.0\n", ""), "b is in pyproject.toml but not pinned"),
    (GOOD.replace("d==0.1\n", ""), "d is needed (pyproject and its dependencies) but not"),
    (GOOD + "zzz==1.0\n", None),  # in the build section: allowed, it is pip's business
    (GOOD.replace("a==1.5\n", "a==1.5\nstale==1.0\n"), "pins stale, which nothing"),
    (GOOD.replace("a==1.5", "a==0.9"), "pins a==0.9, outside pyproject's a[fast]>=1"),
    (GOOD.replace("a==1.5", "a==1.6"), "a 1.5 is installed, the lock pins 1.6"),
    (GOOD.replace("builder==2.1", "builder==1.0"), "builder==1.0, outside"),
    (GOOD.replace("\nbuilder==2.1\n", "\n"), "builder>=2 is in pyproject.toml but not pinned"),
    (GOOD.replace("c==2.0\n", "") + "c==2.0\n", "c is needed at run time but pinned in the build"),
])
def test_each_planted_disagreement_is_named(lock: str, expected: str | None) -> None:
    problems = disagreements(WORLD, lock, INSTALLED)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_a_malformed_or_doubled_line_is_refused() -> None:
    with pytest.raises(ValueError, match="line 1: not 'name==version'"):
        parse_lock("a>=1\n")
    with pytest.raises(ValueError, match="line 2: A is pinned twice"):
        parse_lock("a==1\nA==2\n")
