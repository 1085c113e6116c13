"""Does `constraints.txt` (the lock) agree with pyproject.toml and the installed environment?

A pure function of three inputs so that tests can plant faults in each: pyproject's
requirements (the roots: dependencies, every optional group, the build backend), the lock's
text, and what is installed (name -> version and its requirement strings). The lock's first
section must be exactly the installed closure of the runtime and optional roots, each pin
inside pyproject's range; its last section (after `BUILD_MARKER`) holds what only pip's
isolated build environment installs, and must pin the build-system requirements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

BUILD_MARKER = "# build backend"


@dataclass(frozen=True)
class Installed:
    version: str
    requires: tuple[str, ...]


@dataclass(frozen=True)
class Lock:
    runtime: dict[NormalizedName, str]  # name -> pinned version
    build: dict[NormalizedName, str]


def parse_lock(text: str) -> Lock:
    """`name==version` lines; comments and blanks skipped; the build section starts at the
    first comment line that begins with `BUILD_MARKER`."""
    runtime: dict[NormalizedName, str] = {}
    build: dict[NormalizedName, str] = {}
    section = runtime
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith(BUILD_MARKER):
            section = build
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        if not sep or not version or any(c in name for c in "<>=!~;[ "):
            raise ValueError(f"constraints.txt line {number}: not 'name==version': {raw!r}")
        key = canonicalize_name(name)
        if key in runtime or key in build:
            raise ValueError(f"constraints.txt line {number}: {name} is pinned twice")
        section[key] = version
    return Lock(runtime, build)


def roots(pyproject: Mapping[str, object]) -> tuple[list[Requirement], list[Requirement]]:
    """(runtime and optional requirements, build-system requirements) of a parsed pyproject."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    runtime = [Requirement(r) for r in project.get("dependencies", [])]
    for group in project.get("optional-dependencies", {}).values():
        runtime += [Requirement(r) for r in group]
    build_system = pyproject["build-system"]
    assert isinstance(build_system, dict)
    return runtime, [Requirement(r) for r in build_system["requires"]]


def closure(start: Iterable[Requirement],
            installed: Mapping[NormalizedName, Installed]) -> set[NormalizedName]:
    """Every installed distribution that `start` needs here (markers evaluated on this
    platform, extras followed). A requirement whose package is not installed is kept in the
    closure, so that the caller reports it missing."""
    needed: set[NormalizedName] = set()
    visited: set[tuple[NormalizedName, frozenset[str]]] = set()
    todo = [(r, frozenset(r.extras)) for r in start if _applies(r, "")]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        needed.add(name)
        if name not in installed or (name, extras) in visited:
            continue
        visited.add((name, extras))
        for text in installed[name].requires:
            child = Requirement(text)
            if any(_applies(child, extra) for extra in ("", *extras)):
                todo.append((child, frozenset(child.extras)))
    return needed


def _applies(requirement: Requirement, extra: str) -> bool:
    return requirement.marker is None or requirement.marker.evaluate({"extra": extra})


def disagreements(pyproject: Mapping[str, object], lock_text: str,
                  installed: Mapping[NormalizedName, Installed]) -> list[str]:
    """What is wrong, one sentence each; empty when the lock, pyproject and the environment
    agree."""
    lock = parse_lock(lock_text)
    runtime_roots, build_roots = roots(pyproject)
    problems: list[str] = []
    pins = {**lock.runtime, **lock.build}
    for requirement in [*runtime_roots, *build_roots]:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is in pyproject.toml but not pinned in the lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"the lock pins {name}=={pins[name]}, outside pyproject's "
                            f"{requirement}")
    needed = closure(runtime_roots, installed)
    for name in sorted(needed - lock.runtime.keys() - lock.build.keys()):
        problems.append(f"{name} is needed (pyproject and its dependencies) but not pinned")
    for name in sorted(lock.runtime.keys() - needed):
        problems.append(f"the lock pins {name}, which nothing in pyproject.toml needs")
    for name in sorted(lock.build.keys() & needed):
        problems.append(f"{name} is needed at run time but pinned in the build section")
    for name in sorted(needed & lock.runtime.keys()):
        if name in installed and installed[name].version != lock.runtime[name]:
            problems.append(f"{name} {installed[name].version} is installed, the lock pins "
                            f"{lock.runtime[name]}")
    return problems
