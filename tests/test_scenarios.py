"""Scenario files: every shipped one is valid; bad ones fail naming the file, the key and
what was expected; the JSON Schema for editors matches the validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.fleet import scenario as sc

SHIPPED = sorted(p.stem for p in sc.scenarios_dir().glob("*.toml"))


def test_the_required_scenarios_are_shipped() -> None:
    assert {"smoke", "commuter-day", "backend-outage", "dual-writer-storm", "offline-claims",
            "tenk-day"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_is_valid(name: str) -> None:
    scenario = sc.load(name)
    assert scenario.name == name
    assert 0 <= scenario.full_phones <= scenario.fleet.phones


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\nspeeed = 2\n', r"unknown key `speeed` at the top level; did you mean `speed`\?"),
    ('name = "x"\n[network]\nloss_probability = 1.5\n',
     r"Expected `float` <= 1.0 - at `\$.network.loss_probability`"),
    ('name = "x"\nduration_s = "long"\n', r"Expected `float`, got `str` - at `\$.duration_s`"),
    ('name = "x"\n[fleet]\nphones = 5\nfull_phones = 9\n', r"full_phones \(9\) is more than"),
    ('name = "x"\nprofile = "v7"\n', r"unknown profile 'v7'"),
    ('name = "x"\nschema = "fancy"\n', r"schema must be as-is or recommended"),
    ('name = "x"\n[fleet]\npersonas = { pirate = 1.0 }\n', r"unknown persona"),
    ('name = "x"\n[[faults.server_errors]]\nat_s = 1\nduration_s = 2\nstatus = 404\n',
     r">= 500 - at `\$.faults.server_errors\[0\].status`"),
    ("name = \n", r"not valid TOML"),
    ("seed = 1\n", r"missing required field `name`"),
])
def test_bad_scenarios_name_the_file_and_the_key(text: str, message: str) -> None:
    with pytest.raises(sc.ScenarioError, match=r"^bad\.toml: .*" + message):
        sc.parse(text, "bad.toml")


def test_unknown_names_and_missing_files_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(sc.ScenarioError, match=r"unknown scenario 'nope'; shipped: .*smoke"):
        sc.load("nope")
    with pytest.raises(sc.ScenarioError, match="no such scenario file"):
        sc.load(str(tmp_path / "missing.toml"))


def test_overrides_are_validated_like_the_file() -> None:
    smoke = sc.load("smoke")
    assert sc.override(smoke, seed=9, profile="v3").seed == 9
    with pytest.raises(sc.ScenarioError, match=r"with command-line options.*unknown profile"):
        sc.override(smoke, profile="v9")


REGENERATE_SCHEMA = "ggsim scenario-schema --out scenarios/scenario.schema.json"


def test_the_json_schema_file_matches_the_validator() -> None:
    shipped = (sc.scenarios_dir() / "scenario.schema.json").read_text(encoding="utf-8")
    assert json.loads(shipped) == sc.json_schema(), (
        f"scenarios/scenario.schema.json differs from the validator; run: {REGENERATE_SCHEMA}")
    assert shipped == sc.json_schema_text(), f"same schema, other layout; run: {REGENERATE_SCHEMA}"


def test_scenario_schema_prints_and_writes_the_schema(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main
    assert main(["scenario-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == sc.json_schema()
    out = tmp_path / "schema.json"
    assert main(["scenario-schema", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == sc.json_schema_text()


def test_the_format_example_in_the_docs_is_a_valid_scenario() -> None:
    import re
    import tomllib

    docs = (Path(__file__).parent.parent / "docs" / "fleet.md").read_text()
    example = re.search(r"```toml\n(.*?)```", docs, re.S)
    assert example is not None
    scenario = sc.from_dict(tomllib.loads(example[1]), "docs/fleet.md")
    assert scenario.faults.doze and scenario.faults.clock_jumps
