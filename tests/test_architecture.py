"""The public surface and the layering of the package stay as designed."""

from __future__ import annotations

import ast
from pathlib import Path

import simulator
import simulator.sensors

ROOT = Path(simulator.__file__).parent


def test_public_surface_is_pinned() -> None:
    assert simulator.__all__ == ["__version__"]
    assert sorted(simulator.sensors.__all__) == [
        "BatchBlock", "FleetConfig", "FleetGenerator", "Imperfections", "NumberFormat",
        "encode_lines", "reference_line",
    ]
    for name in simulator.sensors.__all__:
        assert hasattr(simulator.sensors, name)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_sensors_do_not_import_the_cli_or_read_the_wall_clock() -> None:
    for path in (ROOT / "sensors").glob("*.py"):
        imported = _imports(path)
        assert "simulator.cli" not in imported, path
        text = path.read_text()
        for forbidden in ("time.time(", "datetime.now(", "np.random.seed(", "random.random("):
            assert forbidden not in text, f"{path.name} uses {forbidden}"


def test_no_module_uses_the_global_numpy_random_state() -> None:
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        for forbidden in ("np.random.rand(", "np.random.normal(", "np.random.uniform(",
                          "np.random.default_rng()"):
            assert forbidden not in text, f"{path} uses {forbidden}"


def test_the_phone_core_never_imports_a_driver() -> None:
    for path in (ROOT / "phone").glob("*.py"):
        assert not any(name.startswith("simulator.drivers") for name in _imports(path)), path


def forbidden_imports(directory: Path, prefixes: tuple[str, ...]) -> list[str]:
    """`file: module` for every import under `directory` that starts with a prefix."""
    found = []
    for path in sorted(directory.rglob("*.py")):
        for name in sorted(_imports(path)):
            if name.startswith(prefixes):
                found.append(f"{path.relative_to(directory)}: {name}")
    return found


def test_only_the_locust_user_imports_locust_or_gevent() -> None:
    """Importing locust patches the standard library for gevent: only the module the
    locustfile loads may do it, or any command importing the rest would be patched."""
    for path in sorted(ROOT.rglob("*.py")):
        if _imports_gevent_world(path.read_text()):
            assert path.relative_to(ROOT).as_posix() in (
                "loadtest/user.py", "loadtest/locust_shapes.py"), path


def _imports_gevent_world(source: str) -> bool:
    """Whether `source` imports locust, gevent or geventhttpclient, anywhere in it."""
    tree = ast.parse(source)
    names = {alias.name.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return bool(names & {"locust", "gevent", "geventhttpclient"})


def test_a_planted_locust_import_is_caught() -> None:
    assert _imports_gevent_world("def f():\n    import gevent.monkey\n")
    assert _imports_gevent_world("from locust.env import Environment\n")
    assert not _imports_gevent_world("import locusts_elsewhere\nfrom . import locust\n")


def test_capacity_measures_and_never_imports_the_fleet_the_report_or_the_cli() -> None:
    assert forbidden_imports(ROOT / "capacity", (
        "simulator.fleet", "simulator.report", "simulator.cli",
        "simulator.capacity_command")) == []


def test_the_report_reads_capacity_results_never_its_runner() -> None:
    assert forbidden_imports(ROOT / "report", ("simulator.capacity.run",
                                               "simulator.capacity_command")) == []


def test_the_review_oracle_stays_out_of_the_server_and_below_the_tools() -> None:
    """`simulator.review` is an oracle about the review, used by tests: the backend never
    imports it, and it imports nothing of the fleet, the report, the CLI or capacity."""
    assert (ROOT / "review").is_dir()
    assert forbidden_imports(ROOT / "backend", ("simulator.review",)) == []
    assert forbidden_imports(ROOT / "review", (
        "simulator.fleet", "simulator.report", "simulator.cli", "simulator.capacity")) == []


def test_a_planted_upward_import_is_caught(tmp_path: Path) -> None:
    (tmp_path / "measure.py").write_text("from simulator.report.capacity import as_json\n")
    (tmp_path / "fine.py").write_text("from simulator.capacity import model\n")
    assert forbidden_imports(tmp_path, ("simulator.report",)) == [
        "measure.py: simulator.report.capacity"]


# The layers of the package, lowest first. A module may import its own top-level unit
# (package or module of `simulator`) and any unit of a lower layer, never one above; the
# units of one layer are peers and do not import each other either, so the graph between
# units has no cycle. `__init__` is the package root (`from simulator import __version__`).
LAYERS: list[tuple[str, ...]] = [
    ("__init__", "errors"),
    ("seeds", "instants", "fixtures", "leftovers"),  # units, seeded draws, files, cleanup
    ("phone", "backend", "sensors", "review"),  # the app core, the server, data, the oracle
    ("drivers", "live"),  # execute the phone core's effects; receive a real phone's push
    ("checks", "faults", "capacity"),  # invariants and harnesses, fault models, measures
    ("fleet",),  # the fleet run
    ("report", "loadtest"),  # reads fleet and capacity results; the fleet under locust
    ("run_command", "capacity_command"),  # composition roots of `ggsim run` / `capacity`
    ("commands",),  # the other subcommands: options, help, the command's work
    ("cli",),
]
LAYER_OF = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def _units() -> set[str]:
    """The top-level units of `simulator`: its modules and its (sub)packages."""
    units = {path.stem for path in ROOT.glob("*.py")}
    units.update(path.relative_to(ROOT).parts[0] for path in ROOT.glob("*/**/*.py"))
    return units


def _unit_of(module: str) -> str:
    """`simulator.fleet.runner` -> `fleet`; a name the package root defines
    (`simulator.__version__`) -> `__init__`; anything else as it is (no layer)."""
    parts = module.split(".")
    if len(parts) == 1 or (parts[1] not in LAYER_OF and parts[1] in simulator.__all__):
        return "__init__"
    return parts[1]


def _layer_of(module: str) -> int:
    """The layer of an imported module; one above all for a name no layer holds."""
    return LAYER_OF.get(_unit_of(module), len(LAYERS))


def _simulator_imports(path: Path) -> set[str]:
    """Every `simulator...` module a file imports (`from simulator import x` as
    `simulator.x`), anywhere in it (functions and `TYPE_CHECKING` blocks too); a relative
    import as `relative import`, since the rule cannot place it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("relative import")
            elif node.module == "simulator":
                names.update(f"simulator.{alias.name}" for alias in node.names)
            elif node.module:
                names.add(node.module)
    return {name for name in names
            if name == "relative import" or name.split(".")[0] == "simulator"}


def _files(location: Path) -> list[Path]:
    return [location] if location.is_file() else sorted(location.rglob("*.py"))


def upward_imports(location: Path, unit: str) -> list[str]:
    """`file: module` for every import in `location` (the file or directory of `unit`)
    that goes to a higher layer than `unit`'s (or cannot be placed)."""
    return [f"{path.relative_to(location.parent)}: {name}"
            for path in _files(location) for name in sorted(_simulator_imports(path))
            if name == "relative import" or _layer_of(name) > LAYER_OF[unit]]


def peer_imports(location: Path, unit: str) -> list[str]:
    """`file: module` for every import in `location` of another unit of `unit`'s layer."""
    peers = set(LAYERS[LAYER_OF[unit]]) - {unit}
    return [f"{path.relative_to(location.parent)}: {name}"
            for path in _files(location) for name in sorted(_simulator_imports(path))
            if name != "relative import" and _unit_of(name) in peers]


def _unit_location(unit: str) -> Path:
    return ROOT / "__init__.py" if unit == "__init__" else (
        ROOT / unit if (ROOT / unit).is_dir() else ROOT / f"{unit}.py")


def _imported_units(unit: str) -> set[str]:
    return {_unit_of(name) for path in _files(_unit_location(unit))
            for name in _simulator_imports(path) if name != "relative import"} - {unit}


def test_every_unit_has_exactly_one_layer() -> None:
    listed = [unit for units in LAYERS for unit in units]
    assert len(listed) == len(set(listed)), "a unit is in two layers"
    assert set(listed) == _units(), "a new package or module needs its place in LAYERS"


def test_every_import_goes_to_its_own_unit_or_a_lower_layer() -> None:
    found = [violation for unit in sorted(LAYER_OF)
             for violation in upward_imports(_unit_location(unit), unit)]
    assert found == []


def test_the_units_of_a_layer_do_not_import_each_other() -> None:
    found = [violation for unit in sorted(LAYER_OF)
             for violation in peer_imports(_unit_location(unit), unit)]
    assert found == []


def test_the_cycles_that_were_cut_stay_gone() -> None:
    """Issue 14: the fault models read their options from `faults.options` and the clock
    through a protocol; the crash harness is a check; the composition root of `ggsim run`
    (`run_command`) is above the fleet and the report; checks know nothing of the fleet."""
    assert "fleet" not in _imported_units("faults")
    assert "checks" not in _imported_units("drivers")
    assert "report" not in _imported_units("fleet")
    assert "fleet" not in _imported_units("checks")
    assert not (ROOT / "clock.py").exists()  # time units are `instants`; clocks: fleet, backend


def test_a_planted_upward_or_sideways_import_is_caught(tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "network.py").write_text(
        "from simulator.drivers.network import Transport\n"
        "from simulator.fleet.clock import SimClock\n")
    (faults / "phone.py").write_text(
        "def later() -> None:\n    from simulator import report\n")
    (faults / "options.py").write_text("from simulator.errors import UsageError\n")
    (faults / "peer.py").write_text("from .options import Faults\n")
    (faults / "hunt.py").write_text("import simulator.checks.invariants\n")
    assert upward_imports(faults, "faults") == [
        "faults/network.py: simulator.fleet.clock",
        "faults/peer.py: relative import",
        "faults/phone.py: simulator.report",
    ]
    assert peer_imports(faults, "faults") == ["faults/hunt.py: simulator.checks.invariants"]


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def oversized(source: str, name: str) -> list[str]:
    """A module over MAX_MODULE_LINES lines, and each function over MAX_FUNCTION_LINES."""
    found = [f"{name}: {len(source.splitlines())} lines"] if len(
        source.splitlines()) > MAX_MODULE_LINES else []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{name}: {node.name} is {length} lines")
    return found


def test_no_module_over_500_lines_and_no_function_over_80() -> None:
    found = [f for path in sorted(ROOT.rglob("*.py"))
             for f in oversized(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


def test_a_planted_long_module_and_function_are_caught() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    long_function = f"def planted() -> None:\n{body}\n"
    assert oversized(long_function, "p.py") == [f"p.py: planted is {MAX_FUNCTION_LINES + 1} lines"]
    long_module = "\n".join(f"y{i} = {i}" for i in range(MAX_MODULE_LINES + 1))
    assert oversized(long_module, "m.py") == [f"m.py: {MAX_MODULE_LINES + 1} lines"]
