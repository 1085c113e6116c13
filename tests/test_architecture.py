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
