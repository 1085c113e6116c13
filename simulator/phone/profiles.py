"""Fix profiles: named sets of switches, one per fix the review recommends.

Each switch names the platform fact it models (`simulator.phone.platform.FACTS`) and the
review section it comes from, so a user can ask "which fix removes which race?":
`v2` is the app as shipped, `v3` has every fix, and `only(<switch>)` is v2 plus one fix.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from simulator.errors import UsageError

JOURNAL_MODES = ("DELETE", "TRUNCATE", "PERSIST", "WAL")


@dataclass(frozen=True)
class Switch:
    """Documentation of one profile field."""

    review: str
    facts: tuple[str, ...]
    meaning: str


SWITCHES: dict[str, Switch] = {
    "flutter_journal_mode": Switch(
        "§2.3, §2.5 fix 2", ("sqflite_not_wal_by_default", "android_default_journal_mode",
                             "wal_is_per_file"),
        "journal mode the Flutter side asks for when it opens the file"),
    "kotlin_journal_mode": Switch(
        "§2.3, §2.5 fix 2", ("android_default_journal_mode", "mode_change_needs_exclusive_use"),
        "journal mode the Kotlin side asks for on each open"),
    "flutter_busy_timeout_ms": Switch(
        "§2.3", ("android_busy_timeout_ms",), "how long the Flutter side waits on a lock"),
    "kotlin_busy_timeout_ms": Switch(
        "§2.3", ("android_busy_timeout_ms",), "how long the Kotlin side waits on a lock"),
    "transactions": Switch(
        "§2.4, §2.5 fix 3", ("begin_immediate_takes_the_write_lock",),
        "multi-step operations run in BEGIN IMMEDIATE ... COMMIT"),
    "flutter_conflict": Switch(
        "§2.2 R1", ("replace_deletes_then_inserts",),
        "insertContribution's conflict algorithm: REPLACE (as shipped) or ABORT"),
    "single_writer": Switch(
        "§2.5 fix 1", ("android_insert_returns_minus_one", "sqflite_insert_raises"),
        "Kotlin hands its writes to Flutter over the MethodChannel instead of opening "
        "the file"),
    "user_scoping": Switch(
        "§1.3 C3/C4, §6.1", ("add_column_rules",),
        "rows carry user_id and queries filter by it (schema v3)"),
    "pot_versioning": Switch(
        "§3.3, §3.4", ("begin_immediate_takes_the_write_lock",),
        "cacheDailyPot keeps the newer backend state (compare backend_updated_at in one "
        "conditional upsert) instead of overwriting"),
    "auto_maintenance": Switch(
        "§5.5, §7 item 6", ("vacuum_outside_transactions",),
        "performMaintenance() runs at app start"),
    "honor_retry_after": Switch(
        "§7 item 8 (the retry worker)", ("http_retry_after",),
        "a 429 or 503 with Retry-After puts the batch's next try no earlier than the "
        "server asked and ends the retry worker's run (as shipped: its own backoff only, "
        "and the run goes on through the queue)"),
}


@dataclass(frozen=True)
class FixProfile:
    """The switches of one profile; field docs are in `SWITCHES`."""

    name: str
    flutter_journal_mode: str = "TRUNCATE"
    kotlin_journal_mode: str = "TRUNCATE"
    flutter_busy_timeout_ms: int = 2500
    kotlin_busy_timeout_ms: int = 2500
    transactions: bool = False
    flutter_conflict: str = "REPLACE"
    single_writer: bool = False
    user_scoping: bool = False
    pot_versioning: bool = False
    auto_maintenance: bool = False
    honor_retry_after: bool = False

    def __post_init__(self) -> None:
        for side in ("flutter_journal_mode", "kotlin_journal_mode"):
            if getattr(self, side) not in JOURNAL_MODES:
                raise UsageError(f"{side} must be one of {JOURNAL_MODES}, "
                                 f"got {getattr(self, side)!r}")
        if self.flutter_conflict not in ("REPLACE", "ABORT"):
            raise UsageError(f"flutter_conflict must be REPLACE or ABORT, "
                             f"got {self.flutter_conflict!r}")
        for side in ("flutter_busy_timeout_ms", "kotlin_busy_timeout_ms"):
            if getattr(self, side) < 0:
                raise UsageError(f"{side} must be >= 0, got {getattr(self, side)}")

    @property
    def schema_version(self) -> int:
        """3 when a fix needs the v3 columns (user_id, backend_updated_at), else 2."""
        return 3 if self.user_scoping or self.pot_versioning else 2


# As shipped (review §2): Android's defaults on both sides (facts above), no
# transactions, REPLACE on the Flutter insert, Kotlin opening the file itself.
V2 = FixProfile("v2")

# What each fix changes, relative to v2 (review §2.5 fixes 1-3, §1.3, §5.5).
FIXES: dict[str, dict[str, Any]] = {
    "wal": {"flutter_journal_mode": "WAL", "kotlin_journal_mode": "WAL"},
    "busy_timeout": {"flutter_busy_timeout_ms": 10_000, "kotlin_busy_timeout_ms": 10_000},
    "transactions": {"transactions": True},
    "abort_on_conflict": {"flutter_conflict": "ABORT"},
    "single_writer": {"single_writer": True},
    "user_scoping": {"user_scoping": True},
    "auto_maintenance": {"auto_maintenance": True},
    "pot_versioning": {"pot_versioning": True},
}

# Fixes of the app's network behaviour: in v3 and `only()`, not in the race matrix (they
# change nothing on the phone's database).
NETWORK_FIXES: dict[str, dict[str, Any]] = {
    "retry_after": {"honor_retry_after": True},
}
ALL_FIXES = {**FIXES, **NETWORK_FIXES}

V3 = replace(V2, name="v3", **{k: v for fix in ALL_FIXES.values() for k, v in fix.items()})


def only(fix: str) -> FixProfile:
    """v2 with exactly one fix applied (for the fix matrix)."""
    if fix not in ALL_FIXES:
        raise UsageError(f"unknown fix {fix!r}; known: {', '.join(ALL_FIXES)}")
    return replace(V2, name=f"v2+{fix}", **ALL_FIXES[fix])


def profile(name: str) -> FixProfile:
    """A profile by name: v2, v3, or v2+<fix>."""
    if name == "v2":
        return V2
    if name == "v3":
        return V3
    if name.startswith("v2+"):
        return only(name[3:])
    raise UsageError(f"unknown profile {name!r}; use v2, v3 or v2+<fix> with fix one of "
                     f"{', '.join(ALL_FIXES)}")


def documented_fields() -> set[str]:
    """Every profile field that a switch documents (tests: all of them)."""
    return {f.name for f in fields(FixProfile)} - {"name"}
