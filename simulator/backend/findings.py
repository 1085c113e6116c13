"""The review's backend SQL (§4.3, §4.4, §5.4, §6.2) run verbatim on a real PostgreSQL.

Each `Finding` names the review's statement(s), what the review says they do, and what
PostgreSQL really does, with the SQL that works instead (`working_equivalent`, which the
project's `recommended` schema follows). `run_findings(url)` runs every finding twice,
once with the review's SQL and once with the working equivalent, each time in a fresh
scratch schema that is dropped afterwards.

Invariants:
- The review's statements are run one at a time in autocommit, as `psql -f` with
  `ON_ERROR_STOP` runs a script: the first error stops the run and is recorded with
  PostgreSQL's own message and SQLSTATE. They are never edited; a finding that had to adapt
  one says how in `adapted`.
- Setup, probes and concurrent SQL may name the scratch schema as `__SCRATCH__`; review
  statements never do. Every schema whose name starts with the scratch name is dropped,
  whatever happened.
- A probe runs in a transaction that is always rolled back, so probes do not change what
  later probes see.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from simulator.errors import SimulatorError

Expect = Literal["error", "ok", "ok-but-wrong"]
SCRATCH = "__SCRATCH__"
SCHEMA_PREFIX = "ggsim_review_"


@dataclass(frozen=True)
class Probe:
    """SQL run after the statements under test; its last statement's rows (rendered as
    `column=value` pairs, one line per row) or its error must contain `expect`, and must
    not contain `absent`. It runs in a transaction that is rolled back, unless
    `autocommit` (a single statement, run as a scheduler would call it)."""

    sql: tuple[str, ...]
    shows: str
    expect: str
    error: bool = False
    absent: str | None = None
    autocommit: bool = False

    def __post_init__(self) -> None:
        if self.autocommit and len(self.sql) != 1:
            raise SimulatorError("an autocommit probe is a single statement")

    def matches(self, outcome: Outcome) -> bool:
        """Whether `outcome` is what this probe expects."""
        if outcome.ok == self.error:
            return False
        text = outcome.text()
        return self.expect in text and (self.absent is None or self.absent not in text)


@dataclass(frozen=True)
class Finding:
    """One statement group of the review, what it claims, and what PostgreSQL does.

    `expect` is "error" (a review statement fails; `error_contains` is a fragment of
    PostgreSQL's message), "ok" (it runs and does what the review says, probes only add
    facts) or "ok-but-wrong" (it runs, and the probes show it does not do what the
    review says). `meanwhile` holds SQL another client commits just before review
    statement i.
    """

    id: str
    section: str
    review_sql: tuple[str, ...]
    setup_sql: str
    claim: str
    expect: Expect
    reality: str
    working_equivalent: tuple[str, ...]
    error_contains: str | None = None
    notice_contains: str | None = None
    probes: tuple[Probe, ...] = ()
    working_probes: tuple[Probe, ...] = ()
    meanwhile: tuple[tuple[int, str], ...] = ()
    adapted: str = ""

    def __post_init__(self) -> None:
        if (self.expect == "error") != (self.error_contains is not None):
            raise SimulatorError(f"{self.id}: error_contains goes with expect='error' only")
        if self.expect == "ok-but-wrong" and not self.probes:
            raise SimulatorError(f"{self.id}: 'ok-but-wrong' needs a probe that shows it")
        if any(SCRATCH in sql for sql in self.review_sql):
            raise SimulatorError(f"{self.id}: review statements are verbatim, no {SCRATCH}")

    def matches(self, outcome: Outcome) -> bool:
        """Whether the review statements' `outcome` is the expected one (probes aside). An
        expected error comes from the last review statement, after the others ran."""
        if self.notice_contains and not any(self.notice_contains in n for n in outcome.notices):
            return False
        if self.expect == "error":
            return (not outcome.ok and str(self.error_contains) in outcome.message
                    and outcome.statement == len(self.review_sql) - 1)
        return outcome.ok


@dataclass(frozen=True)
class Outcome:
    """What running some SQL did: `ok`, or PostgreSQL's error (message, detail, SQLSTATE,
    0-based index of the failing statement); the notices raised; the last statement's
    rows, rendered."""

    ok: bool
    sqlstate: str = ""
    message: str = ""
    detail: str = ""
    statement: int | None = None
    notices: tuple[str, ...] = ()
    rows: str = ""

    def text(self) -> str:
        """The rows when ok, else `message` and `detail`."""
        return self.rows if self.ok else f"{self.message}\n{self.detail}".strip()


@dataclass(frozen=True)
class Result:
    """A finding's run: the review statements' outcome and probes, the working
    equivalent's outcome and probes."""

    finding: Finding
    review: Outcome
    probes: tuple[Outcome, ...]
    working: Outcome
    working_probes: tuple[Outcome, ...]

    @property
    def review_matched(self) -> bool:
        """The review statements did what `finding.expect` says."""
        return self.finding.matches(self.review)

    @property
    def probes_matched(self) -> tuple[bool, ...]:
        """Per probe, whether it showed what it expects."""
        return tuple(p.matches(o) for p, o in zip(self.finding.probes, self.probes, strict=True))

    @property
    def matched(self) -> bool:
        """The review statements and every probe behaved as the finding expects."""
        return self.review_matched and all(self.probes_matched)

    @property
    def working_ran(self) -> bool:
        """The working equivalent ran without error."""
        return self.working.ok

    @property
    def working_probes_matched(self) -> tuple[bool, ...]:
        """Per working probe, whether it showed what it expects."""
        pairs = zip(self.finding.working_probes, self.working_probes, strict=True)
        return tuple(p.matches(o) for p, o in pairs)


# --- the review's statements, verbatim -----------------------------------------------

S44_TABLE = """CREATE TABLE IF NOT EXISTS sensor_batches (
  id BIGSERIAL PRIMARY KEY,
  device_hash TEXT NOT NULL,
  user_id TEXT,
  timestamp_utc TIMESTAMPTZ NOT NULL,
  batch_json JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

  -- Constraints
  CONSTRAINT valid_timestamp CHECK (timestamp_utc <= NOW() + INTERVAL '1 minute'),
  CONSTRAINT valid_batch CHECK (jsonb_typeof(batch_json -> 'batch') = 'array')
);"""
S44_PARTITION = """CREATE TABLE sensor_batches_2024_01 PARTITION OF sensor_batches
  FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');"""

S43_CLAIM_STATUS = (
    "CREATE INDEX idx_daily_pots_claim_status ON daily_pots(last_claim_date, uploads_today);")
S43_AGGREGATION = ("CREATE INDEX idx_sensor_batches_aggregation ON sensor_batches"
                   "(timestamp_utc DESC)\n  WHERE timestamp_utc > NOW() - INTERVAL '1 hour';")
S43_DEVICE_USER = "CREATE INDEX idx_user_stats_device_user ON user_stats(device_hash, user_id);"
S43_PRESSURE = ("CREATE INDEX idx_sensor_batches_pressure ON sensor_batches USING GIN "
                "((batch_json -> 'summary' -> 'pressure'));")

S54_ARCHIVE = """CREATE TABLE sensor_batches_archive (
  LIKE sensor_batches INCLUDING ALL
) PARTITION BY RANGE (timestamp_utc);"""
S54_INSERT = """INSERT INTO sensor_batches_archive
SELECT * FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL '30 days';"""
S54_DELETE = "DELETE FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL '30 days';"
S54_FUNCTION = """CREATE OR REPLACE FUNCTION archive_old_batches() RETURNS void AS $$
BEGIN
  INSERT INTO sensor_batches_archive
  SELECT * FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL '30 days';

  DELETE FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL '30 days';

  VACUUM sensor_batches;
END;
$$ LANGUAGE plpgsql;"""

S62_ADD_ID = """DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM information_schema.columns
    WHERE table_name = 'sensor_batches' AND column_name = 'id'
  ) THEN
    ALTER TABLE sensor_batches ADD COLUMN id BIGSERIAL PRIMARY KEY;
  END IF;
END $$;"""
S62_CHECK = """ALTER TABLE sensor_batches
  ADD CONSTRAINT valid_batch_json
  CHECK (jsonb_typeof(batch_json -> 'batch') = 'array');"""
S62_POT_STATUS = """CREATE INDEX IF NOT EXISTS idx_daily_pots_status
  ON daily_pots(user_id, last_claim_date, uploads_today);"""
S62_HAS_PRESSURE = """CREATE INDEX IF NOT EXISTS idx_sensor_batches_has_pressure
  ON sensor_batches USING BTREE ((batch_json -> 'summary' -> 'pressure' IS NOT NULL));"""
S62_TRIGGER_FUNCTION = """CREATE OR REPLACE FUNCTION update_user_stats_timestamp()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;"""
S62_DROP_TRIGGER = "DROP TRIGGER IF EXISTS user_stats_updated_at ON user_stats;"
S62_CREATE_TRIGGER = """CREATE TRIGGER user_stats_updated_at
  BEFORE UPDATE ON user_stats
  FOR EACH ROW
  EXECUTE FUNCTION update_user_stats_timestamp();"""
S62_TRIGGER = (S62_TRIGGER_FUNCTION, S62_DROP_TRIGGER, S62_CREATE_TRIGGER)

REVIEW_STATEMENTS = (
    S44_TABLE, S44_PARTITION, S43_CLAIM_STATUS, S43_AGGREGATION, S43_DEVICE_USER, S43_PRESSURE,
    S54_ARCHIVE, S54_INSERT, S54_DELETE, S54_FUNCTION, S62_ADD_ID, S62_CHECK, S62_POT_STATUS,
    S62_HAS_PRESSURE, *S62_TRIGGER,
)

# --- setup: the as-is tables (review §4.1, as in fixtures/sql/backend/as-is) ---------

AS_IS_SENSOR_BATCHES = """
CREATE TABLE sensor_batches (
  device_hash TEXT, user_id TEXT, timestamp_utc TIMESTAMPTZ, batch_json JSONB
);
CREATE INDEX sensor_batches_timestamp ON sensor_batches (timestamp_utc);
CREATE INDEX sensor_batches_json ON sensor_batches USING GIN (batch_json);
"""
AS_IS_USER_STATS = """
CREATE TABLE user_stats (
  device_hash TEXT PRIMARY KEY, user_id TEXT,
  total_uploads BIGINT NOT NULL DEFAULT 0, last_upload_at TIMESTAMPTZ
);
CREATE INDEX user_stats_user ON user_stats (user_id);
INSERT INTO user_stats (device_hash, user_id) VALUES ('d1', 'u1'), ('d2', 'u1');
"""
AS_IS_DAILY_POTS = """
CREATE TABLE daily_pots (
  user_id TEXT PRIMARY KEY, total_credits INTEGER NOT NULL DEFAULT 0,
  uploads_today INTEGER NOT NULL DEFAULT 0, uploads_required INTEGER NOT NULL DEFAULT 12,
  last_claim_date DATE
);
CREATE INDEX daily_pots_last_claim ON daily_pots (last_claim_date);
INSERT INTO daily_pots (user_id) SELECT 'u' || g FROM generate_series(1, 20) g;
"""
BATCH = ("""'{"summary": {"pressure": {"avg": 1013.25, "min": 1012, "max": 1014}}, """
         """"batch": [{"t": 1704067200000, "pressure": 1013.2}]}'""")


def _rows(device: str, age: str, count: int = 1) -> str:
    """INSERT of `count` well-formed batches from `device`, `age` old."""
    return (f"INSERT INTO sensor_batches (device_hash, user_id, timestamp_utc, batch_json) "
            f"SELECT '{device}', 'u1', NOW() - INTERVAL '{age}', {BATCH}::jsonb "
            f"FROM generate_series(1, {count});\n")


PRESSURE_ROWS = """
INSERT INTO sensor_batches (device_hash, user_id, timestamp_utc, batch_json)
SELECT 'd' || (g % 7), 'u1', NOW() - g * INTERVAL '1 minute',
       jsonb_build_object('batch', '[]'::jsonb, 'summary', jsonb_build_object('pressure',
         jsonb_build_object('avg', 1000 + g % 30, 'min', 990, 'max', 1014)))
FROM generate_series(1, 500) g;
ANALYZE sensor_batches;
"""
DEFAULT_ARCHIVE_PARTITION = (
    "CREATE TABLE sensor_batches_archive_default PARTITION OF sensor_batches_archive DEFAULT;")
ARCHIVE_WITH_DEFAULT = f"{S54_ARCHIVE}\n{DEFAULT_ARCHIVE_PARTITION}\n"

# --- the working equivalents ----------------------------------------------------------

PARTITIONED_TABLE = """CREATE TABLE sensor_batches (
  id BIGINT GENERATED ALWAYS AS IDENTITY,
  device_hash TEXT NOT NULL,
  user_id TEXT,
  timestamp_utc TIMESTAMPTZ NOT NULL,
  batch_json JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (id, timestamp_utc),
  CONSTRAINT valid_batch CHECK (jsonb_typeof(batch_json -> 'batch') IS NOT DISTINCT FROM 'array')
) PARTITION BY RANGE (timestamp_utc);"""
PARTITIONED_SERIAL_TABLE = """CREATE TABLE sensor_batches (
  id BIGSERIAL,
  device_hash TEXT NOT NULL,
  user_id TEXT,
  timestamp_utc TIMESTAMPTZ NOT NULL,
  batch_json JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (id, timestamp_utc)
) PARTITION BY RANGE (timestamp_utc);"""
DEFAULT_PARTITION = "CREATE TABLE sensor_batches_default PARTITION OF sensor_batches DEFAULT;"
ADD_ID_IF_MISSING = ("ALTER TABLE sensor_batches ADD COLUMN IF NOT EXISTS "
                     "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;")
MOVE_ATOMICALLY = """WITH moved AS (
  DELETE FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL '30 days' RETURNING *
)
INSERT INTO sensor_batches_archive SELECT * FROM moved;"""
ARCHIVE_FUNCTION = """CREATE OR REPLACE FUNCTION archive_old_batches() RETURNS BIGINT AS $$
DECLARE
  moved BIGINT;
BEGIN
  WITH gone AS (
    DELETE FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL '30 days' RETURNING *
  )
  INSERT INTO sensor_batches_archive SELECT * FROM gone;
  GET DIAGNOSTICS moved = ROW_COUNT;
  RETURN moved;
END;
$$ LANGUAGE plpgsql;"""
VALID_BATCH = "jsonb_typeof(batch_json -> 'batch') IS NOT DISTINCT FROM 'array'"

# --- probes ---------------------------------------------------------------------------

NO_SEQSCAN = "SET enable_seqscan = off"
ID_COLUMNS_HERE = (
    "SELECT count(*) AS id_columns FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'sensor_batches' "
    "AND column_name = 'id'")
LATE_ROW = _rows("late", "35 days")
CURRENT_ROW = _rows("now", "1 second")
ARCHIVED = ("SELECT (SELECT count(*) FROM sensor_batches_archive) AS archived, "
            "(SELECT count(*) FROM sensor_batches WHERE timestamp_utc < NOW() - INTERVAL "
            "'30 days') AS old_left")


def _insert_at(offset: str, returning: str = "") -> str:
    """INSERT of one batch stamped `offset` from the server clock."""
    return ("INSERT INTO sensor_batches (device_hash, timestamp_utc, batch_json) "
            f"VALUES ('d1', NOW() + INTERVAL '{offset}', {BATCH}) {returning}").strip()


def _hot_probe(shows: str, hot: int) -> Probe:
    """Increment every pot's uploads_today (what each upload does) and count HOT updates."""
    return Probe(
        sql=("UPDATE daily_pots SET uploads_today = uploads_today + 1",
             "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
             "WHERE relid = 'daily_pots'::regclass"),
        shows=shows, expect=f"n_tup_upd=20 n_tup_hot_upd={hot}")


def _explain(query: str, shows: str, expect: str, absent: str | None = None) -> Probe:
    """EXPLAIN of `query` with sequential scans disabled, so any usable index is used."""
    return Probe(sql=(NO_SEQSCAN, f"EXPLAIN (COSTS OFF) {query}"), shows=shows, expect=expect,
                 absent=absent)


def _leading_column(index: str) -> str:
    """SQL for the name of `index`'s first column."""
    return (f"(SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            f"AND a.attnum = i.indkey[0] WHERE i.indexrelid = '{index}'::regclass)")


# --- the findings -----------------------------------------------------------------------

F44 = (
    Finding(
        id="partition-of-unpartitioned-table", section="§4.4",
        review_sql=(S44_TABLE, S44_PARTITION), setup_sql="",
        claim="The table definition plus a monthly partition partitions sensor_batches.",
        expect="error", error_contains='"sensor_batches" is not partitioned',
        reality="The CREATE TABLE runs (an ordinary heap table), then the PARTITION OF "
                "statement fails: the table is not declared PARTITION BY, and a table cannot "
                "be made partitioned after the fact.",
        working_equivalent=(PARTITIONED_TABLE, S44_PARTITION, DEFAULT_PARTITION)),
    Finding(
        id="partitioned-pk-omits-partition-column", section="§4.4",
        review_sql=(S44_TABLE.removesuffix(");") + ") PARTITION BY RANGE (timestamp_utc);",),
        setup_sql="",
        adapted="`PARTITION BY RANGE (timestamp_utc)` added, as the review's PARTITION OF "
                "statement requires",
        claim="`id BIGSERIAL PRIMARY KEY` gives the partitioned table a primary key.",
        expect="error",
        error_contains="unique constraint on partitioned table must include all partitioning "
                       "columns",
        reality="A unique constraint on a partitioned table must include the partition key "
                "(SQLSTATE 0A000, DETAIL: PRIMARY KEY constraint lacks column timestamp_utc).",
        working_equivalent=(PARTITIONED_TABLE, DEFAULT_PARTITION),
        working_probes=(Probe(sql=(_insert_at("0 seconds", "RETURNING tableoid::regclass"),),
                              shows="a current row is accepted (into the default partition)",
                              expect="tableoid=sensor_batches_default"),)),
    Finding(
        id="single-partition-rejects-current-rows", section="§4.4",
        review_sql=(S44_PARTITION,), setup_sql=PARTITIONED_TABLE,
        claim="Partition by month for scalability.",
        expect="ok-but-wrong",
        reality="With only the January 2024 partition and no DEFAULT partition, every row of "
                "any other month is rejected: no upload after January 2024 can be stored.",
        probes=(Probe(sql=(_insert_at("0 seconds"),), error=True,
                      shows="an upload stamped now has no partition",
                      expect='no partition of relation "sensor_batches" found for row'),),
        working_equivalent=(S44_PARTITION, DEFAULT_PARTITION),
        working_probes=(Probe(sql=(_insert_at("0 seconds", "RETURNING tableoid::regclass"),),
                              shows="with a DEFAULT partition (and monthly partitions made "
                                    "ahead by a job) the row is stored",
                              expect="tableoid=sensor_batches_default"),)),
    Finding(
        id="create-if-not-exists-skips-as-is-table", section="§4.4",
        review_sql=(S44_TABLE,), setup_sql=AS_IS_SENSOR_BATCHES + _rows("d1", "1 day"),
        claim="The recommended definition gives sensor_batches a primary key, NOT NULL "
              "columns, created_at and CHECK constraints.",
        expect="ok-but-wrong", notice_contains="already exists, skipping",
        reality="sensor_batches already exists in production (the first INSERT made it), so "
                "IF NOT EXISTS makes the statement a no-op with only a NOTICE: no column, "
                "key or constraint of the definition is applied.",
        probes=(Probe(sql=("SELECT count(*) AS new_columns FROM information_schema.columns "
                           "WHERE table_schema = current_schema() AND table_name = "
                           "'sensor_batches' AND column_name IN ('id', 'created_at')",),
                      shows="the existing table got neither id nor created_at",
                      expect="new_columns=0"),),
        working_equivalent=(
            "ALTER TABLE sensor_batches RENAME TO sensor_batches_implicit;",
            PARTITIONED_TABLE, DEFAULT_PARTITION,
            "INSERT INTO sensor_batches (device_hash, user_id, timestamp_utc, batch_json) "
            "SELECT device_hash, user_id, timestamp_utc, batch_json FROM sensor_batches_implicit;"),
        working_probes=(Probe(sql=("SELECT count(*) AS copied FROM sensor_batches",),
                              shows="the rows are in the new table", expect="copied=1"),)),
    Finding(
        id="check-now-rejects-fast-phone-clock", section="§4.4",
        review_sql=(S44_TABLE,), setup_sql="",
        claim="CHECK (timestamp_utc <= NOW() + INTERVAL '1 minute') rejects bad timestamps.",
        expect="ok-but-wrong",
        reality="Accepted, although PostgreSQL assumes CHECK expressions are immutable and "
                "NOW() is not: the clock is read only when a row is inserted or updated, and "
                "never again. A phone whose clock is 2 minutes fast gets every upload "
                "rejected, and since its retries carry the same skew, it loses all of them.",
        probes=(
            Probe(sql=(_insert_at("2 minutes"),), error=True,
                  shows="a batch stamped 2 minutes ahead of the server clock is rejected",
                  expect='violates check constraint "valid_timestamp"'),
            Probe(sql=(_insert_at("30 seconds", "RETURNING 1 AS stored"),),
                  shows="30 seconds ahead passes", expect="stored=1"),
        ),
        working_equivalent=(PARTITIONED_TABLE, DEFAULT_PARTITION),
        working_probes=(Probe(sql=(_insert_at("2 minutes", "RETURNING 1 AS stored"),),
                              shows="the API, not the table, decides on clock skew (with a "
                                    "stated tolerance)",
                              expect="stored=1"),)),
    Finding(
        id="valid-batch-check-passes-missing-batch", section="§4.4, §6.2",
        review_sql=(S62_CHECK,), setup_sql=AS_IS_SENSOR_BATCHES,
        claim="CHECK (jsonb_typeof(batch_json -> 'batch') = 'array') validates the JSONB "
              "schema: every batch has a readings array.",
        expect="ok-but-wrong",
        reality="A CHECK passes when its expression is NULL. A document with no `batch` key "
                "(or a NULL batch_json) makes jsonb_typeof return NULL, so it is accepted; "
                "only a `batch` that is present and not an array is rejected.",
        probes=(Probe(sql=("INSERT INTO sensor_batches (batch_json) VALUES "
                           """('{"summary": {}}') RETURNING 1 AS stored""",),
                      shows="a document without `batch` is stored", expect="stored=1"),),
        working_equivalent=(f"ALTER TABLE sensor_batches ADD CONSTRAINT valid_batch_json "
                            f"CHECK ({VALID_BATCH});",),
        working_probes=(Probe(sql=("""INSERT INTO sensor_batches (batch_json) VALUES """
                                   """('{"summary": {}}')""",),
                              error=True, shows="IS NOT DISTINCT FROM rejects a missing batch",
                              expect='violates check constraint "valid_batch_json"'),)),
)

F43 = (
    Finding(
        id="partial-index-on-now", section="§4.3",
        review_sql=(S43_AGGREGATION,), setup_sql=AS_IS_SENSOR_BATCHES,
        claim="A partial index over the last hour serves the per-minute aggregation job.",
        expect="error",
        error_contains="functions in index predicate must be marked IMMUTABLE",
        reality="NOW() is STABLE, not IMMUTABLE, so it cannot appear in an index predicate "
                "(SQLSTATE 42P17). Had it been allowed, the predicate would have been frozen "
                "at creation time. The as-is index on timestamp_utc already serves the query.",
        probes=(_explain("SELECT count(*) FROM sensor_batches "
                         "WHERE timestamp_utc > NOW() - INTERVAL '1 hour'",
                         shows="the as-is B-tree on timestamp_utc already serves the job",
                         expect="sensor_batches_timestamp"),),
        working_equivalent=("CREATE INDEX idx_sensor_batches_aggregation "
                            "ON sensor_batches (timestamp_utc DESC);",),
        working_probes=(_explain("SELECT count(*) FROM sensor_batches "
                                 "WHERE timestamp_utc > NOW() - INTERVAL '1 hour'",
                                 shows="a plain index serves the last-hour range",
                                 expect="Index", absent="Seq Scan"),)),
    Finding(
        id="claim-status-index-blocks-hot-updates", section="§4.3",
        review_sql=(S43_CLAIM_STATUS,), setup_sql=AS_IS_DAILY_POTS,
        claim="For /daily-pot queries (frequently accessed).",
        expect="ok-but-wrong",
        reality="Created, but /daily-pot looks a pot up by user_id (the primary key), which "
                "this index cannot serve; and because it indexes uploads_today, which every "
                "upload increments, no pot update can be HOT any more: each one writes a new "
                "entry into every index of daily_pots.",
        probes=(
            _hot_probe("with the index, none of 20 uploads_today increments is HOT", 0),
            _explain("SELECT * FROM daily_pots WHERE user_id = 'u1'",
                     shows="the /daily-pot lookup uses the primary key",
                     expect="daily_pots_pkey", absent="idx_daily_pots_claim_status"),
        ),
        working_equivalent=("CREATE INDEX IF NOT EXISTS daily_pots_last_claim "
                            "ON daily_pots (last_claim_date);",),
        working_probes=(_hot_probe("without uploads_today in an index, all 20 are HOT", 20),)),
    Finding(
        id="user-stats-index-repeats-primary-key", section="§4.3",
        review_sql=(S43_DEVICE_USER,), setup_sql=AS_IS_USER_STATS,
        claim="For user stats lookups.",
        expect="ok",
        reality="Created, and redundant: device_hash is already the primary key (unique), so "
                "a lookup by device finds at most one row through it; lookups by user use the "
                "as-is index on user_id. It only adds index-only scans of user_id by device, "
                "at the cost of one more index to write.",
        probes=(Probe(sql=(f"SELECT {_leading_column('user_stats_pkey')} AS pk_leads, "
                           f"{_leading_column('idx_user_stats_device_user')} AS new_leads",),
                      shows="the new index leads with the primary key's (unique) column",
                      expect="pk_leads=device_hash new_leads=device_hash"),),
        working_equivalent=("CREATE INDEX IF NOT EXISTS user_stats_user "
                            "ON user_stats (user_id);",)),
    Finding(
        id="pressure-gin-serves-containment-only", section="§4.3",
        review_sql=(S43_PRESSURE,), setup_sql=AS_IS_SENSOR_BATCHES + PRESSURE_ROWS,
        claim="A JSONB expression index for pressure data.",
        expect="ok",
        reality="Created. A GIN (jsonb_ops) index on the expression serves only containment "
                "and key-existence tests on that exact expression (`@>`, `?`), e.g. exact "
                "float equality; not range queries on pressure values. The as-is GIN on the "
                "whole batch_json already serves the same containment, written on batch_json.",
        probes=(
            _explain("SELECT count(*) FROM sensor_batches "
                     """WHERE (batch_json -> 'summary' -> 'pressure') @> '{"max": 1014}'""",
                     shows="containment on the expression uses it",
                     expect="Bitmap Index Scan on idx_sensor_batches_pressure"),
            _explain("SELECT count(*) FROM sensor_batches "
                     "WHERE (batch_json -> 'summary' -> 'pressure' ->> 'avg')::float8 > 1020",
                     shows="a range on pressure cannot use it, even with seq scans disabled",
                     expect="Seq Scan", absent="idx_sensor_batches_pressure"),
            Probe(sql=("DROP INDEX idx_sensor_batches_pressure", NO_SEQSCAN,
                       "EXPLAIN (COSTS OFF) SELECT count(*) FROM sensor_batches WHERE "
                       """batch_json @> '{"summary": {"pressure": {"max": 1014}}}'"""),
                  shows="without it, the as-is whole-document GIN answers containment",
                  expect="Bitmap Index Scan on sensor_batches_json"),
        ),
        working_equivalent=(
            "CREATE INDEX idx_sensor_batches_pressure_avg ON sensor_batches "
            "(((batch_json -> 'summary' -> 'pressure' ->> 'avg')::double precision));",),
        working_probes=(_explain("SELECT count(*) FROM sensor_batches WHERE "
                                 "(batch_json -> 'summary' -> 'pressure' ->> 'avg')::float8 "
                                 "> 1020",
                                 shows="a B-tree on the extracted number serves ranges",
                                 expect="idx_sensor_batches_pressure_avg"),)),
)

F54 = (
    Finding(
        id="archive-like-copies-id-only-primary-key", section="§5.4",
        review_sql=(S54_ARCHIVE,), setup_sql=S44_TABLE,
        claim="The archive is a partitioned copy of sensor_batches.",
        expect="error",
        error_contains="unique constraint on partitioned table must include all partitioning "
                       "columns",
        reality="INCLUDING ALL copies the primary key on id alone (from §4.4's table, or from "
                "§6.2's migration), which a table partitioned by timestamp_utc cannot have.",
        working_equivalent=(
            "CREATE TABLE sensor_batches_archive (LIKE sensor_batches, "
            "PRIMARY KEY (id, timestamp_utc)) PARTITION BY RANGE (timestamp_utc);",
            DEFAULT_ARCHIVE_PARTITION),
        working_probes=(Probe(sql=("SELECT count(*) AS defaults FROM information_schema.columns "
                                   "WHERE table_schema = current_schema() AND table_name = "
                                   "'sensor_batches_archive' AND column_default IS NOT NULL",),
                              shows="the archive shares no sequence with sensor_batches",
                              expect="defaults=0"),)),
    Finding(
        id="archive-like-shares-sequence", section="§5.4",
        review_sql=(S54_ARCHIVE,), setup_sql=PARTITIONED_SERIAL_TABLE,
        claim="The archive is a partitioned copy of sensor_batches.",
        expect="ok",
        reality="With §4.4's table fixed (BIGSERIAL, primary key (id, timestamp_utc)) it is "
                "created, but INCLUDING ALL copies the default nextval('sensor_batches_id_seq'): "
                "the archive depends on the live table's sequence, and sensor_batches can no "
                "longer be dropped or replaced without CASCADE, which strips the archive's "
                "default.",
        probes=(
            Probe(sql=("SELECT column_default FROM information_schema.columns WHERE "
                       "table_schema = current_schema() AND table_name = "
                       "'sensor_batches_archive' AND column_name = 'id'",),
                  shows="the archive's id default is the live table's sequence",
                  expect="sensor_batches_id_seq"),
            Probe(sql=("DROP TABLE sensor_batches",), error=True,
                  shows="the live table cannot be dropped any more",
                  expect="cannot drop table sensor_batches because other objects depend on it"),
        ),
        working_equivalent=(
            "CREATE TABLE sensor_batches_archive (LIKE sensor_batches, "
            "PRIMARY KEY (id, timestamp_utc)) PARTITION BY RANGE (timestamp_utc);",
            DEFAULT_ARCHIVE_PARTITION),
        working_probes=(Probe(sql=("DROP TABLE sensor_batches",
                                   "SELECT to_regclass('sensor_batches') IS NULL AS dropped"),
                              shows="the archive stands on its own", expect="dropped=True"),)),
    Finding(
        id="archive-like-as-is-has-no-partitions", section="§5.4",
        review_sql=(S54_ARCHIVE,), setup_sql=AS_IS_SENSOR_BATCHES,
        claim="The archive is a partitioned copy of sensor_batches.",
        expect="ok",
        reality="On the as-is table (no primary key) it is created, with copies of every index "
                "(the whole-document GIN included), and with no partition at all.",
        probes=(Probe(sql=("SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = "
                           "'sensor_batches_archive'::regclass) AS partitions, "
                           "(SELECT count(*) FROM pg_index WHERE indrelid = "
                           "'sensor_batches_archive'::regclass) AS indexes",),
                      shows="no partition; both as-is indexes copied",
                      expect="partitions=0 indexes=2"),),
        working_equivalent=(S54_ARCHIVE, DEFAULT_ARCHIVE_PARTITION)),
    Finding(
        id="archive-insert-without-partitions", section="§5.4",
        review_sql=(S54_INSERT,),
        setup_sql=AS_IS_SENSOR_BATCHES + S54_ARCHIVE + _rows("d1", "40 days"),
        claim="Move data older than 30 days to the archive.",
        expect="error",
        error_contains='no partition of relation "sensor_batches_archive" found for row',
        reality="The archive is partitioned but the review creates no partition, so the first "
                "old row fails the INSERT (SQLSTATE 23514).",
        working_equivalent=(DEFAULT_ARCHIVE_PARTITION, MOVE_ATOMICALLY),
        working_probes=(Probe(sql=(ARCHIVED,), shows="the old row moved",
                              expect="archived=1 old_left=0"),)),
    Finding(
        id="archive-insert-then-delete-loses-late-rows", section="§5.4",
        review_sql=(S54_INSERT, S54_DELETE),
        setup_sql=AS_IS_SENSOR_BATCHES + ARCHIVE_WITH_DEFAULT + _rows("d1", "40 days"),
        meanwhile=((1, LATE_ROW),),
        claim="INSERT ... SELECT then DELETE moves old rows to the archive.",
        expect="ok-but-wrong",
        reality="The two statements see different data: a row older than 30 days committed "
                "between them (a phone's queued upload arriving late, or NOW() moving past a "
                "row's timestamp) is deleted without having been archived. Inside one "
                "READ COMMITTED transaction each statement still takes its own snapshot.",
        probes=(Probe(sql=("SELECT (SELECT count(*) FROM sensor_batches "
                           "WHERE device_hash = 'late') + (SELECT count(*) FROM "
                           "sensor_batches_archive WHERE device_hash = 'late') AS late_rows",),
                      shows="the late upload is in neither table", expect="late_rows=0"),),
        working_equivalent=(MOVE_ATOMICALLY,),
        working_probes=(Probe(sql=(ARCHIVED,), shows="one statement: what is deleted is "
                                                      "exactly what is archived",
                              expect="archived=1 old_left=0"),)),
    Finding(
        id="archive-function-vacuum", section="§5.4",
        review_sql=(S54_FUNCTION,),
        setup_sql=AS_IS_SENSOR_BATCHES + ARCHIVE_WITH_DEFAULT + _rows("d1", "40 days"),
        claim="A weekly archival procedure that moves old rows and vacuums.",
        expect="ok-but-wrong",
        reality="CREATE FUNCTION succeeds (plpgsql checks statements only when run), but every "
                "call fails at VACUUM (SQLSTATE 25001) and rolls back the move, so nothing is "
                "ever archived.",
        probes=(
            Probe(sql=("SELECT archive_old_batches()",), error=True, autocommit=True,
                  shows="calling it on its own (as pg_cron would) fails",
                  expect="VACUUM cannot be executed from a function"),
            Probe(sql=("SELECT archive_old_batches()",), error=True,
                  shows="calling it in a transaction (as a job runner might) fails too",
                  expect="VACUUM cannot run inside a transaction block"),
            Probe(sql=(ARCHIVED,), shows="nothing was archived, the old row stays",
                  expect="archived=0 old_left=1"),
        ),
        working_equivalent=(ARCHIVE_FUNCTION, "SELECT archive_old_batches();",
                            "VACUUM sensor_batches;"),
        working_probes=(Probe(sql=(ARCHIVED,), shows="moved; VACUUM run by the job runner "
                                                      "outside any transaction",
                              expect="archived=1 old_left=0"),)),
    Finding(
        id="archive-select-star-after-migration", section="§5.4, §6.2",
        review_sql=(S54_INSERT,),
        setup_sql=(AS_IS_SENSOR_BATCHES + ARCHIVE_WITH_DEFAULT + _rows("d1", "40 days")
                   + "ALTER TABLE sensor_batches ADD COLUMN id BIGSERIAL PRIMARY KEY;"),
        claim="INSERT INTO sensor_batches_archive SELECT * keeps working.",
        expect="error",
        error_contains="INSERT has more expressions than target columns",
        reality="An archive created LIKE the as-is table has four columns; after §6.2 adds id "
                "to sensor_batches, SELECT * yields five (SQLSTATE 42601).",
        working_equivalent=(
            "INSERT INTO sensor_batches_archive (device_hash, user_id, timestamp_utc, batch_json)"
            "\nSELECT device_hash, user_id, timestamp_utc, batch_json FROM sensor_batches "
            "WHERE timestamp_utc < NOW() - INTERVAL '30 days';",)),
)

F62 = (
    Finding(
        id="add-id-rewrites-table", section="§6.2",
        review_sql=(S62_ADD_ID,),
        setup_sql=(AS_IS_SENSOR_BATCHES + _rows("d1", "1 day", 3)
                   + "CREATE TABLE filenode_before AS "
                     "SELECT pg_relation_filenode('sensor_batches') AS f;"),
        claim="Add an explicit primary key to sensor_batches if missing.",
        expect="ok",
        reality="Works on the as-is heap table, but a BIGSERIAL column's default is volatile "
                "(nextval), so the whole table is rewritten, and the index built, under an "
                "ACCESS EXCLUSIVE lock that blocks every upload meanwhile.",
        probes=(
            Probe(sql=("SELECT count(DISTINCT id) AS ids, count(*) AS n FROM sensor_batches",),
                  shows="every row got an id", expect="ids=3 n=3"),
            Probe(sql=("SELECT pg_relation_filenode('sensor_batches') <> f AS rewritten "
                       "FROM filenode_before",),
                  shows="the table got a new file: it was rewritten", expect="rewritten=True"),
        ),
        working_equivalent=(ADD_ID_IF_MISSING,)),
    Finding(
        id="add-id-check-ignores-schema", section="§6.2",
        review_sql=(S62_ADD_ID,),
        setup_sql=(AS_IS_SENSOR_BATCHES + f"CREATE SCHEMA {SCRATCH}_other;\n"
                   f"CREATE TABLE {SCRATCH}_other.sensor_batches (id BIGINT);"),
        claim="Add the id column if sensor_batches does not have one.",
        expect="ok-but-wrong",
        reality="The information_schema test does not filter on table_schema: any table named "
                "sensor_batches with an id column in any schema (an archive or staging copy) "
                "makes it skip silently, leaving the real table without a key.",
        probes=(Probe(sql=(ID_COLUMNS_HERE,), shows="the table in the search path got no id",
                      expect="id_columns=0"),),
        working_equivalent=(ADD_ID_IF_MISSING,),
        working_probes=(Probe(sql=(ID_COLUMNS_HERE,), shows="ADD COLUMN IF NOT EXISTS looks "
                                                            "at this table only",
                              expect="id_columns=1"),)),
    Finding(
        id="add-id-on-partitioned-table", section="§6.2",
        review_sql=(S62_ADD_ID,),
        setup_sql=("CREATE TABLE sensor_batches (device_hash TEXT, user_id TEXT, "
                   "timestamp_utc TIMESTAMPTZ, batch_json JSONB) "
                   "PARTITION BY RANGE (timestamp_utc);\n" + DEFAULT_PARTITION),
        claim="Add an explicit primary key to sensor_batches if missing.",
        expect="error",
        error_contains="unique constraint on partitioned table must include all partitioning "
                       "columns",
        reality="Once sensor_batches is partitioned (§4.4, §7 item 9), a primary key on id "
                "alone is refused.",
        working_equivalent=("ALTER TABLE sensor_batches "
                            "ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY, "
                            "ADD PRIMARY KEY (id, timestamp_utc);",)),
    Finding(
        id="valid-batch-json-violated-by-existing-rows", section="§6.2",
        review_sql=(S62_CHECK,),
        setup_sql=(AS_IS_SENSOR_BATCHES + _rows("d1", "1 day")
                   + """INSERT INTO sensor_batches (device_hash, timestamp_utc, batch_json) """
                     """VALUES ('d2', NOW(), '{"batch": null}');"""),
        claim="Add CHECK constraints to existing sensor_batches.",
        expect="error",
        error_contains='check constraint "valid_batch_json" of relation "sensor_batches" is '
                       "violated by some row",
        reality="ADD CONSTRAINT scans the table under ACCESS EXCLUSIVE lock and fails on the "
                "first existing row whose `batch` is present but not an array (here JSON "
                "null); the whole migration step is lost.",
        working_equivalent=(
            f"ALTER TABLE sensor_batches ADD CONSTRAINT valid_batch_json CHECK ({VALID_BATCH}) "
            "NOT VALID;",
            "CREATE TABLE sensor_batches_rejected (LIKE sensor_batches);",
            f"WITH bad AS (DELETE FROM sensor_batches WHERE NOT ({VALID_BATCH}) RETURNING *)\n"
            "INSERT INTO sensor_batches_rejected SELECT * FROM bad;",
            "ALTER TABLE sensor_batches VALIDATE CONSTRAINT valid_batch_json;"),
        working_probes=(Probe(sql=("SELECT convalidated FROM pg_constraint WHERE "
                                   "conname = 'valid_batch_json' AND conrelid = "
                                   "'sensor_batches'::regclass",),
                              shows="validated after the bad row was set aside",
                              expect="convalidated=True"),)),
    Finding(
        id="migration-not-rerunnable", section="§6.2",
        review_sql=(S62_CHECK,), setup_sql=AS_IS_SENSOR_BATCHES + S62_CHECK,
        claim="The migration script (with IF NOT EXISTS elsewhere) can be applied again.",
        expect="error",
        error_contains='constraint "valid_batch_json" for relation "sensor_batches" already '
                       "exists",
        reality="Steps 1, 3, 4 and 5 are guarded, step 2 is not: a second run fails there "
                "(SQLSTATE 42710). PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS.",
        working_equivalent=(
            "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = "
            "'sensor_batches'::regclass AND conname = 'valid_batch_json') THEN\n"
            f"    ALTER TABLE sensor_batches ADD CONSTRAINT valid_batch_json CHECK ({VALID_BATCH})"
            ";\n  END IF;\nEND $$;",)),
    Finding(
        id="pot-status-index-blocks-hot-updates", section="§6.2",
        review_sql=(S62_POT_STATUS,), setup_sql=AS_IS_DAILY_POTS,
        claim="A composite index for daily pot queries.",
        expect="ok-but-wrong",
        reality="Created, but it leads with user_id, already the primary key, so it adds no "
                "lookup; and it indexes uploads_today, so every upload's pot update stops "
                "being HOT (as §4.3's idx_daily_pots_claim_status).",
        probes=(
            Probe(sql=(f"SELECT {_leading_column('daily_pots_pkey')} AS pk_leads, "
                       f"{_leading_column('idx_daily_pots_status')} AS new_leads",),
                  shows="the new index leads with the primary key's column",
                  expect="pk_leads=user_id new_leads=user_id"),
            _hot_probe("none of 20 uploads_today increments is HOT", 0),
        ),
        working_equivalent=(),
        working_probes=(_hot_probe("without it (the primary key serves the lookup) all 20 "
                                   "are HOT", 20),)),
    Finding(
        id="has-pressure-btree", section="§6.2",
        review_sql=(S62_HAS_PRESSURE,), setup_sql=AS_IS_SENSOR_BATCHES + PRESSURE_ROWS,
        claim="An expression index for JSONB pressure queries.",
        expect="ok",
        reality="Created. It serves only the exact expression `... IS NOT NULL` (as `= true`) "
                "and is a two-valued index: when most batches have a barometer it is not "
                "selective and the planner prefers a sequential scan. IS NULL cannot use it.",
        probes=(
            _explain("SELECT count(*) FROM sensor_batches "
                     "WHERE batch_json -> 'summary' -> 'pressure' IS NOT NULL",
                     shows="IS NOT NULL can use it",
                     expect="Bitmap Index Scan on idx_sensor_batches_has_pressure"),
            _explain("SELECT count(*) FROM sensor_batches "
                     "WHERE batch_json -> 'summary' -> 'pressure' IS NULL",
                     shows="IS NULL cannot", expect="Seq Scan",
                     absent="idx_sensor_batches_has_pressure"),
            Probe(sql=("EXPLAIN (COSTS OFF) SELECT count(*) FROM sensor_batches "
                       "WHERE batch_json -> 'summary' -> 'pressure' IS NOT NULL",),
                  shows="left to itself, with every batch having pressure, the planner "
                        "does not use it", expect="Seq Scan",
                  absent="idx_sensor_batches_has_pressure"),
        ),
        working_equivalent=(
            "CREATE INDEX idx_sensor_batches_pressure_time ON sensor_batches (timestamp_utc) "
            "WHERE batch_json -> 'summary' -> 'pressure' IS NOT NULL;",),
        working_probes=(_explain("SELECT count(*) FROM sensor_batches WHERE timestamp_utc > "
                                 "NOW() - INTERVAL '1 hour' AND "
                                 "batch_json -> 'summary' -> 'pressure' IS NOT NULL",
                                 shows="a partial index serves recent batches with pressure",
                                 expect="idx_sensor_batches_pressure_time"),)),
    Finding(
        id="trigger-without-updated-at-column", section="§6.2",
        review_sql=S62_TRIGGER, setup_sql=AS_IS_USER_STATS,
        claim="Maintain user_stats.updated_at on every update.",
        expect="ok-but-wrong",
        reality="user_stats has no updated_at column (§4.1 lists none and the migration adds "
                "none). The function and the trigger are created, then every UPDATE of "
                "user_stats fails (SQLSTATE 42703): every upload's stats update breaks.",
        probes=(Probe(sql=("UPDATE user_stats SET total_uploads = total_uploads + 1",),
                      error=True, shows="any update of user_stats fails",
                      expect='record "new" has no field "updated_at"'),),
        working_equivalent=("ALTER TABLE user_stats ADD COLUMN IF NOT EXISTS updated_at "
                            "TIMESTAMPTZ NOT NULL DEFAULT NOW();", *S62_TRIGGER),
        working_probes=(Probe(sql=("UPDATE user_stats SET total_uploads = total_uploads + 1 "
                                   "RETURNING updated_at IS NOT NULL AS stamped",),
                              shows="with the column, updates work and are stamped",
                              expect="stamped=True"),)),
)

FINDINGS: tuple[Finding, ...] = F44 + F43 + F54 + F62


# --- running ----------------------------------------------------------------------------

async def run_findings(url: str, findings: Sequence[Finding] = FINDINGS) -> list[Result]:
    """Run every finding's review SQL and working equivalent on the server at `url`, each
    in its own scratch schema, and return what happened; the server is left as it was."""
    tag = secrets.token_hex(4)
    results = []
    for n, finding in enumerate(findings):
        base = f"{SCHEMA_PREFIX}{tag}_{n:02d}"
        review, probes = await _run_case(url, f"{base}_r", finding, finding.review_sql,
                                         finding.probes, finding.meanwhile)
        working, working_probes = await _run_case(url, f"{base}_w", finding,
                                                  finding.working_equivalent,
                                                  finding.working_probes, ())
        results.append(Result(finding, review, probes, working, working_probes))
    return results


async def _run_case(url: str, schema: str, finding: Finding, statements: Sequence[str],
                    probes: Sequence[Probe],
                    meanwhile: Sequence[tuple[int, str]]) -> tuple[Outcome, tuple[Outcome, ...]]:
    """Setup, `statements`, then `probes`, in the fresh schema `schema` (dropped after)."""
    conn = await _connect(url)
    other = await _connect(url) if meanwhile else None
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        for c in (conn, other):
            if c is not None:
                await c.execute(f'SET search_path = "{schema}"')
        await _setup(conn, finding, schema)
        outcome = await _run_statements(conn, statements, other, dict(meanwhile), schema)
        probed = tuple([await _probe(conn, p, schema) for p in probes])
        return outcome, probed
    finally:
        try:
            await _drop_schemas(conn, schema)
        finally:
            await conn.close()
            if other is not None:
                await other.close()


async def _connect(url: str) -> Any:
    """A connection without a statement cache (schemas come and go between statements)."""
    return await asyncpg.connect(url, statement_cache_size=0)


async def _setup(conn: Any, finding: Finding, schema: str) -> None:
    """Run the finding's setup; a failure is a broken finding, not a result."""
    if not finding.setup_sql.strip():
        return
    try:
        await conn.execute(_scoped(finding.setup_sql, schema))
    except asyncpg.PostgresError as exc:
        raise SimulatorError(f"setup of finding {finding.id!r} failed: {exc}") from exc


async def _run_statements(conn: Any, statements: Sequence[str], other: Any,
                          meanwhile: dict[int, str], schema: str) -> Outcome:
    """Each statement in autocommit, stopping at the first error; `meanwhile[i]` is
    committed by `other` just before statement i. Notices are collected."""
    notices: list[str] = []

    def listen(_conn: Any, message: Any) -> None:
        notices.append(str(message.message))

    conn.add_log_listener(listen)
    try:
        for i, statement in enumerate(statements):
            if i in meanwhile:
                await other.execute(_scoped(meanwhile[i], schema))
            try:
                await conn.execute(statement)
            except asyncpg.PostgresError as exc:
                return _failure(exc, i, notices)
        return Outcome(ok=True, notices=tuple(notices))
    finally:
        conn.remove_log_listener(listen)


async def _probe(conn: Any, probe: Probe, schema: str) -> Outcome:
    """Run `probe` (in a transaction that is rolled back, unless autocommit); the last
    statement's rows, or its error."""
    if probe.autocommit:
        try:
            return Outcome(ok=True, rows=_render(await conn.fetch(_scoped(probe.sql[0], schema))))
        except asyncpg.PostgresError as exc:
            return _failure(exc, 0, [])
    transaction = conn.transaction()
    await transaction.start()
    try:
        *before, last = [_scoped(sql, schema) for sql in probe.sql]
        for i, sql in enumerate(before):
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                return _failure(exc, i, [])
        try:
            rows = await conn.fetch(last)
        except asyncpg.PostgresError as exc:
            return _failure(exc, len(before), [])
        return Outcome(ok=True, rows=_render(rows))
    finally:
        await transaction.rollback()


async def _drop_schemas(conn: Any, schema: str) -> None:
    """Drop `schema` and every schema whose name starts with it."""
    names = await conn.fetch("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
                             schema)
    for row in names:
        await conn.execute(f'DROP SCHEMA "{row["nspname"]}" CASCADE')


def _failure(exc: asyncpg.PostgresError, statement: int, notices: Sequence[str]) -> Outcome:
    """An Outcome from PostgreSQL's error."""
    return Outcome(ok=False, sqlstate=str(exc.sqlstate), message=str(exc.args[0]),
                   detail=str(getattr(exc, "detail", None) or ""), statement=statement,
                   notices=tuple(notices))


def _render(rows: Sequence[Any]) -> str:
    """One line per row, `column=value` pairs separated by spaces."""
    return "\n".join(" ".join(f"{k}={v}" for k, v in row.items()) for row in rows)


def _scoped(sql: str, schema: str) -> str:
    """`sql` with the scratch schema placeholder filled in."""
    return sql.replace(SCRATCH, schema)
