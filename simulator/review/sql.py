"""The SQL the review findings run: the review's statements, verbatim, and the project's
setup scripts and working equivalents, read from `fixtures/sql/review/` (inside the wheel:
`simulator/sql/review/`, found by `simulator.fixtures.sql_dir`).

- `verbatim/*.sql`: one review statement per file, exactly as the review quotes it; the file
  names sort in review order (§4.3, §4.4, §5.4, §6.2 and its steps).
- `setup/*.sql`: scripts that build a finding's starting point (the as-is tables of §4.1).
- `working/*.sql`: one statement per file, used by the working equivalents.

One-line fragments that the findings compose (a DEFAULT partition, a probe's query) and the
builders of parameterised SQL stay here as Python, next to where they are used.

Invariants:
- a verbatim statement is its file's text without the final newline: byte for byte the
  review's text. Never edit one; a finding that must adapt one says so in `adapted`.
- a working statement is likewise its file's text without the final newline; a setup script
  ends with exactly one newline, so scripts and `rows(...)` concatenate into one setup.
- `REVIEW_STATEMENTS` is every file in `verbatim/`, in file-name order: a statement added
  there is checked against the review and must be run by some finding (the tests say so).
- every file is read once, when this module is imported.
"""

from __future__ import annotations

from simulator.errors import SimulatorError
from simulator.fixtures import sql_dir, sql_text

REVIEW_DIR = "review"


def _statement(kind: str, name: str) -> str:
    """The single statement in `review/<kind>/<name>.sql`, without its final newline."""
    text = sql_text(REVIEW_DIR, kind, f"{name}.sql")
    if not text.endswith(";\n") or text.endswith("\n\n"):
        raise SimulatorError(f"{kind}/{name}.sql: one statement ending in ';' and one newline")
    return text.removesuffix("\n")


def verbatim(name: str) -> str:
    """The review statement `verbatim/<name>.sql`, exactly as the review quotes it."""
    return _statement("verbatim", name)


def working(name: str) -> str:
    """The working-equivalent statement `working/<name>.sql`."""
    return _statement("working", name)


def script(name: str) -> str:
    """The setup script `setup/<name>.sql`, ending with exactly one newline."""
    return sql_text(REVIEW_DIR, "setup", f"{name}.sql").rstrip("\n") + "\n"


def _all_verbatim() -> tuple[str, ...]:
    """Every review statement in `verbatim/`, in file-name order."""
    paths = sorted(sql_dir(REVIEW_DIR, "verbatim").glob("*.sql"))
    if not paths:
        raise SimulatorError("no review statement found under fixtures/sql/review/verbatim")
    return tuple(verbatim(path.stem) for path in paths)


# --- the review's statements, verbatim -----------------------------------------------

S43_CLAIM_STATUS = verbatim("4.3-claim-status-index")
S43_AGGREGATION = verbatim("4.3-aggregation-index")
S43_DEVICE_USER = verbatim("4.3-device-user-index")
S43_PRESSURE = verbatim("4.3-pressure-index")
S44_TABLE = verbatim("4.4-table")
S44_PARTITION = verbatim("4.4-partition")
S54_ARCHIVE = verbatim("5.4-archive-table")
S54_INSERT = verbatim("5.4-archive-insert")
S54_DELETE = verbatim("5.4-archive-delete")
S54_FUNCTION = verbatim("5.4-archive-function")
S62_ADD_ID = verbatim("6.2-1-add-id")
S62_CHECK = verbatim("6.2-2-check")
S62_POT_STATUS = verbatim("6.2-3-pot-status-index")
S62_HAS_PRESSURE = verbatim("6.2-4-has-pressure-index")
S62_TRIGGER = (verbatim("6.2-5a-trigger-function"), verbatim("6.2-5b-drop-trigger"),
               verbatim("6.2-5c-create-trigger"))

REVIEW_STATEMENTS = _all_verbatim()

# --- setup: the as-is tables (review §4.1, as in fixtures/sql/backend/as-is) ---------

AS_IS_SENSOR_BATCHES = script("as-is-sensor-batches")
AS_IS_USER_STATS = script("as-is-user-stats")
AS_IS_DAILY_POTS = script("as-is-daily-pots")
PRESSURE_ROWS = script("pressure-rows")
BATCH = ("""'{"summary": {"pressure": {"avg": 1013.25, "min": 1012, "max": 1014}}, """
         """"batch": [{"t": 1704067200000, "pressure": 1013.2}]}'""")
DEFAULT_ARCHIVE_PARTITION = (
    "CREATE TABLE sensor_batches_archive_default PARTITION OF sensor_batches_archive DEFAULT;")
ARCHIVE_WITH_DEFAULT = f"{S54_ARCHIVE}\n{DEFAULT_ARCHIVE_PARTITION}\n"


def rows(device: str, age: str, count: int = 1) -> str:
    """INSERT of `count` well-formed batches from `device`, `age` old."""
    return (f"INSERT INTO sensor_batches (device_hash, user_id, timestamp_utc, batch_json) "
            f"SELECT '{device}', 'u1', NOW() - INTERVAL '{age}', {BATCH}::jsonb "
            f"FROM generate_series(1, {count});\n")


# --- the working equivalents ----------------------------------------------------------

PARTITIONED_TABLE = working("partitioned-table")
PARTITIONED_SERIAL_TABLE = working("partitioned-serial-table")
MOVE_ATOMICALLY = working("move-atomically")
ARCHIVE_FUNCTION = working("archive-function")
DEFAULT_PARTITION = "CREATE TABLE sensor_batches_default PARTITION OF sensor_batches DEFAULT;"
ADD_ID_IF_MISSING = ("ALTER TABLE sensor_batches ADD COLUMN IF NOT EXISTS "
                     "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;")
VALID_BATCH = "jsonb_typeof(batch_json -> 'batch') IS NOT DISTINCT FROM 'array'"

# --- probes ---------------------------------------------------------------------------

NO_SEQSCAN = "SET enable_seqscan = off"
ID_COLUMNS_HERE = (
    "SELECT count(*) AS id_columns FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'sensor_batches' "
    "AND column_name = 'id'")
LATE_ROW = rows("late", "35 days")
ARCHIVED = ("SELECT (SELECT count(*) FROM sensor_batches_archive) AS archived, "
            "(SELECT count(*) FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL "
            "'30 days') AS old_left")


def insert_at(offset: str, returning: str = "") -> str:
    """INSERT of one batch stamped `offset` from the server clock."""
    return ("INSERT INTO sensor_batches (device_hash, timestamp_utc, batch_json) "
            f"VALUES ('d1', NOW() + INTERVAL '{offset}', {BATCH}) {returning}").strip()


def leading_column(index: str) -> str:
    """SQL for the name of `index`'s first column."""
    return (f"(SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            f"AND a.attnum = i.indkey[0] WHERE i.indexrelid = '{index}'::regclass)")
