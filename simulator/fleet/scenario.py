"""Scenario files: TOML in `scenarios/`, validated into frozen structs.

msgspec decodes and validates in one pass: unknown keys are errors, every value has its
type and range, and each error names the file, the key (`$.network.loss_probability`)
and what was expected; an unknown key's error names its table and the closest known key.
A file that is not UTF-8 or not TOML is an error naming the file and the line.
`json_schema()` gives the same rules as a JSON Schema for editors
(`scenarios/scenario.schema.json`, kept equal to it by a test).

Times in a scenario are simulated seconds from the scenario's start (`at_s`,
`duration_s`); `speed` is simulated seconds per wall second. The fault options
(`Network`, `Faults` and their windows) are defined in `simulator.faults.options` and
exported here too.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from msgspec import inspect as types

from simulator.errors import ScenarioError as ScenarioError
from simulator.errors import UsageError
from simulator.faults.options import ClockJump as ClockJump
from simulator.faults.options import DatabaseRestart as DatabaseRestart
from simulator.faults.options import Doze as Doze
from simulator.faults.options import Faults as Faults
from simulator.faults.options import Network as Network
from simulator.faults.options import Offline as Offline
from simulator.faults.options import Probability as Probability
from simulator.faults.options import Restart as Restart
from simulator.faults.options import Seconds as Seconds
from simulator.faults.options import ServerErrors as ServerErrors
from simulator.faults.options import Share as Share
from simulator.faults.options import _Strict as _Strict
from simulator.instants import parse_instant
from simulator.phone.profiles import profile as lookup_profile
from simulator.sensors.personas import PERSONAS


class Fleet(_Strict):
    """Who lives the scenario."""

    phones: Annotated[int, Meta(ge=1, le=100_000)] = 20
    full_phones: Annotated[int, Meta(ge=0)] | None = None  # None: all of them
    personas: dict[str, Annotated[float, Meta(ge=0.0)]] | None = None
    imperfections: bool = True
    uploads_required: Annotated[int, Meta(ge=1, le=288)] = 5


class Thresholds(_Strict):
    """Pass/fail: the run fails when any is broken."""

    p99_upload_latency_ms: Annotated[float, Meta(gt=0.0)] = 2_000.0
    max_anomalies: Annotated[int, Meta(ge=0)] = 0
    min_delivered_fraction: Share = 0.99


class Soak(_Strict):
    """A soak's sampling and bounds (`fleet/soak.py`): memory sampled every `sample_s`
    wall seconds; after the first `warmup_fraction` of the run, the trend of each
    process's memory may add at most `max_memory_growth_mib`, and that of the median
    upload latency at most `max_latency_growth_fraction` of its level."""

    sample_s: Annotated[float, Meta(ge=0.5, le=600.0)] = 5.0
    warmup_fraction: Annotated[float, Meta(ge=0.0, lt=0.9)] = 0.2
    max_memory_growth_mib: Annotated[float, Meta(gt=0.0)] = 64.0
    max_latency_growth_fraction: Annotated[float, Meta(gt=0.0)] = 0.25


class Scenario(_Strict):
    """One run: what, how long, how fast, against what, and how it is judged."""

    name: str
    description: str = ""
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 1
    start: str = "2024-01-01T07:00:00Z"
    # up to two weeks: past the week after which performMaintenance (review §5.5) drops
    # queued uploads and a full queue (`QueuePolicy.max_entries`) its oldest
    duration_s: Annotated[float, Meta(gt=0.0, le=14 * 86_400.0)] = 3_600.0
    speed: Annotated[float, Meta(gt=0.0, le=100_000.0)] = 60.0
    profile: str = "v2"
    schema: str = "recommended"
    fleet: Fleet = msgspec.field(default_factory=Fleet)
    network: Network = msgspec.field(default_factory=Network)
    faults: Faults = msgspec.field(default_factory=Faults)
    thresholds: Thresholds = msgspec.field(default_factory=Thresholds)
    soak: Soak | None = None  # sample memory and judge the trends (a soak)

    def __post_init__(self) -> None:
        lookup_profile(self.profile)  # raises UsageError naming the known ones
        parse_instant(self.start, "start")  # here, not when the run reaches it
        if self.schema not in ("as-is", "recommended"):
            raise UsageError(f"schema must be as-is or recommended, got {self.schema!r}")
        if self.fleet.full_phones is not None and self.fleet.full_phones > self.fleet.phones:
            raise UsageError(f"fleet.full_phones ({self.fleet.full_phones}) is more than "
                             f"fleet.phones ({self.fleet.phones})")
        unknown = set(self.fleet.personas or {}) - set(PERSONAS)
        if unknown:
            raise UsageError(f"unknown persona(s) {sorted(unknown)} in fleet.personas; "
                             f"known: {sorted(PERSONAS)}")
        if self.network.latency_ms_p99 < self.network.latency_ms_median:
            raise UsageError("network.latency_ms_p99 must be >= network.latency_ms_median")

    @property
    def full_phones(self) -> int:
        return self.fleet.phones if self.fleet.full_phones is None else self.fleet.full_phones


def scenarios_dir() -> Path:
    """The shipped scenarios (`scenarios/` beside the package, or inside the wheel)."""
    here = Path(__file__).resolve().parents[2] / "scenarios"
    packaged = Path(__file__).resolve().parents[1] / "scenarios"
    return packaged if packaged.is_dir() else here


def find(name_or_path: str) -> Path:
    """A scenario by path, or by name among the shipped ones."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
        return path
    shipped = scenarios_dir() / f"{name_or_path}.toml"
    if not shipped.is_file():
        names = sorted(p.stem for p in scenarios_dir().glob("*.toml"))
        raise ScenarioError(f"unknown scenario {name_or_path!r}; shipped: {', '.join(names)}")
    return shipped


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario TOML text; errors name `source` and the key (or the line)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    if not data:
        raise ScenarioError(f"{source}: empty scenario (it needs at least name = \"...\")")
    return from_dict(data, source)


def from_dict(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate an already-parsed scenario table."""
    try:
        return msgspec.convert(data, Scenario)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{source}: {_explained(str(exc))}") from None
    except (ValueError, UsageError) as exc:
        raise ScenarioError(f"{source}: {exc}") from None


_UNKNOWN_KEY = re.compile(r"Object contains unknown field `(?P<key>[^`]*)`"
                          r"(?: - at `(?P<path>[^`]*)`)?")


def _explained(message: str) -> str:
    """msgspec's message; for an unknown key, one naming its table and the closest known
    key (msgspec leaves out the table at the top level and suggests nothing)."""
    match = _UNKNOWN_KEY.fullmatch(message)
    if match is None:
        return message
    key, path = match["key"], match["path"] or "$"
    where = "at the top level" if path == "$" else f"in `{path.removeprefix('$.')}`"
    close = difflib.get_close_matches(key, _keys_at(path), n=1)
    hint = f"did you mean `{close[0]}`?" if close else "`ggsim scenario-schema` lists the keys"
    return f"unknown key `{key}` {where}; {hint}"


def _keys_at(path: str) -> list[str]:
    """The keys of the table at msgspec's `path` (`$.faults.restarts[0]`); none if the
    path does not lead to a table of the scenario's structure."""
    info: types.Type = types.type_info(Scenario)
    for name, _index in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        while isinstance(info, types.UnionType):  # `X | None`: the X
            info = next(t for t in info.types if not isinstance(t, types.NoneType))
        if isinstance(info, types.ListType) and not name:
            info = info.item_type
        elif isinstance(info, types.StructType) and name:
            info = next((f.type for f in info.fields if f.encode_name == name),
                        types.AnyType())
        else:
            return []
    if not isinstance(info, types.StructType):
        return []
    return [f.encode_name for f in info.fields]


def load(name_or_path: str) -> Scenario:
    """Find and validate a scenario."""
    path = find(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(f"{path}, line {line}: not UTF-8 text") from None
    return parse(text, str(path))


def override(scenario: Scenario, **changes: Any) -> Scenario:
    """The scenario with top-level fields replaced (command-line options), revalidated."""
    data = msgspec.to_builtins(scenario)
    data.update({k: v for k, v in changes.items() if v is not None})
    return from_dict(data, f"{scenario.name} (with command-line options)")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (for editors)."""
    return msgspec.json.schema(Scenario)


def json_schema_text() -> str:
    """`json_schema()` as `scenarios/scenario.schema.json` holds it: sorted keys, two-space
    indents, a final newline (the descriptions are docstrings, so the text depends on the
    msgspec version: the lock pins it)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
