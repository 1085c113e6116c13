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
