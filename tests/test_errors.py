"""One exception tree (issue 14): every exception class of the package is defined in
`simulator/errors.py`, and that module's docstring draws all of them as they inherit."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
from pathlib import Path

import pytest

import simulator
from simulator import errors

ROOT = Path(simulator.__file__).parent
SUFFIXES = ("Error", "Exception", "Killed", "Fault")
_NODE = re.compile(r"── (\w+)(?:\s+\((\w+)\))?")


def exception_classes(directory: Path) -> list[str]:
    """`file: Class` for every class under `directory` with a base whose name ends in
    Error, Exception, Killed or Fault (`X`, `module.X`, `X[...]`), at any depth."""
    found = []
    for path in sorted(directory.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = [ast.unparse(b.value if isinstance(b, ast.Subscript) else b)
                     for b in node.bases]
            if any(base.split(".")[-1].endswith(SUFFIXES) for base in bases):
                found.append(f"{path.relative_to(directory).as_posix()}: {node.name}")
    return found


def defined_in_errors() -> dict[str, type[BaseException]]:
    return {name: cls for name, cls in vars(errors).items()
            if inspect.isclass(cls) and issubclass(cls, BaseException)
            and cls.__module__ == errors.__name__}


def drawn_tree() -> dict[str, tuple[str, str | None]]:
    """Each class the docstring draws: (its parent in the drawing, its builtin base noted
    in parentheses or None)."""
    doc = errors.__doc__ or ""
    lines = [line for line in doc.splitlines() if "──" in line or line.strip() == "Exception"]
    columns: dict[int, str] = {}  # column of a drawn name -> the last name drawn there
    tree: dict[str, tuple[str, str | None]] = {}
    for line in lines:
        if "──" not in line:
            columns[line.index("Exception")] = "Exception"
            continue
        branch = min(i for i in (line.find("├"), line.find("└")) if i >= 0)
        match = _NODE.search(line, branch)
        assert match, line
        name, builtin = match.group(1), match.group(2)
        assert name not in tree, f"{name} drawn twice"
        tree[name] = (columns[branch - 1], builtin)
        columns[match.start(1)] = name
    return tree


def test_every_exception_class_of_the_package_is_defined_in_errors() -> None:
    elsewhere = [found for found in exception_classes(ROOT)
                 if not found.startswith("errors.py: ")]
    assert elsewhere == []


def test_the_walker_catches_a_planted_exception_class(tmp_path: Path) -> None:
    (tmp_path / "faults").mkdir()
    (tmp_path / "faults" / "planted.py").write_text(
        "from simulator import errors\n"
        "from simulator.errors import SimulatorError\n\n"
        "class PlantedError(SimulatorError):\n    pass\n\n"
        "class Dropped(errors.SimulatedFault):\n    pass\n\n"
        "def later() -> None:\n"
        "    class Inner(ValueError, Exception):\n        pass\n\n"
        "class NotAnError:\n    pass\n\n"
        "class Options(dict[str, int]):\n    pass\n", encoding="utf-8")
    assert exception_classes(tmp_path) == [
        "faults/planted.py: PlantedError", "faults/planted.py: Dropped",
        "faults/planted.py: Inner"]


def test_the_docstring_draws_every_class_as_it_inherits() -> None:
    classes = defined_in_errors()
    tree = drawn_tree()
    assert sorted(tree) == sorted(classes), "errors.py's tree and its classes differ"
    for name, (parent, builtin) in tree.items():
        cls = classes[name]
        parent_cls = getattr(builtins, parent) if parent == "Exception" else classes[parent]
        assert parent_cls in cls.__bases__, f"{name} is drawn under {parent}"
        others = [base.__name__ for base in cls.__bases__
                  if base is not parent_cls and base.__module__ == "builtins"]
        assert others == ([builtin] if builtin else []), f"{name}'s builtin base"


def test_every_class_says_when_it_is_raised() -> None:
    for name, cls in defined_in_errors().items():
        assert cls.__doc__ and "Raised" in cls.__doc__, name


def test_a_class_missing_from_the_drawing_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = errors.__doc__ or ""
    monkeypatch.setattr(errors, "__doc__", doc.replace("── ScenarioError", "── Renamed"))
    assert "ScenarioError" not in drawn_tree()
    assert "Renamed" in drawn_tree()


@pytest.mark.parametrize(("module", "name"), [
    ("simulator.backend.migrations", "MigrationError"),
    ("simulator.backend.payload", "InputError"),
    ("simulator.drivers.network", "AppKilled"),
    ("simulator.phone.effects", "NetworkError"),
    ("simulator.phone.schema", "SchemaError"),
    ("simulator.capacity.layouts.roundtrip", "RoundTripError"),
    ("simulator.capacity.layouts", "RoundTripError"),
    ("simulator.capacity.api_load", "ApiLoadError"),
    ("simulator.fleet.scenario", "ScenarioError"),
])
def test_each_class_is_still_importable_where_it_was_defined(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_the_builtin_bases_stay() -> None:
    assert issubclass(errors.UsageError, ValueError)
    assert issubclass(errors.ScenarioError, errors.UsageError)
    assert issubclass(errors.RecordingError, ValueError)
    assert issubclass(errors.InvariantError, ValueError)
    assert issubclass(errors.StateError, RuntimeError)
    assert issubclass(errors.RoundTripError, AssertionError)
    for fault in (errors.AppKilled, errors.NetworkError):
        assert issubclass(fault, errors.SimulatedFault)
        assert not issubclass(fault, errors.SimulatorError | errors.InternalError)
    refused = errors.InputError(422, "invalid_field", "seq must be >= 0", "$.seq")
    assert (str(refused), refused.status) == ("seq must be >= 0", 422)
    assert refused.body() == {"error": "invalid_field", "detail": "seq must be >= 0",
                              "path": "$.seq"}
    assert errors.NetworkError("timeout", "no response").kind == "timeout"


def test_errors_imports_nothing_of_the_package() -> None:
    tree = ast.parse((ROOT / "errors.py").read_text(encoding="utf-8"))
    imported = [ast.unparse(node) for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)]
    assert imported == ["from __future__ import annotations"]
