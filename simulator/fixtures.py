"""The SQL files in `fixtures/sql/`, shipped inside the wheel as `simulator/sql/`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sql_dir(*parts: str) -> Path:
    """The directory `fixtures/sql/<parts>` (packaged copy first, then the source tree)."""
    packaged = resources.files("simulator").joinpath("sql", *parts)
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[1].joinpath("fixtures", "sql", *parts)


def sql_text(*parts: str) -> str:
    """The text of `fixtures/sql/<parts>`."""
    return sql_dir(*parts[:-1]).joinpath(parts[-1]).read_text(encoding="utf-8")
