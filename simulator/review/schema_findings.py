"""The review findings on the tables and indexes it recommends: §4.4 (the sensor_batches
definition and its monthly partition) and §4.3 (indexes).

Invariants: `F44` and `F43` are each a tuple of frozen `Finding` records (their checks run when
this module is imported); every review statement they run is one of
`simulator.review.sql`'s verbatim statements, or is derived from one and says how in
its `adapted` text.
"""

from __future__ import annotations

from simulator.review.records import Finding, Probe, explain, hot_probe
from simulator.review.sql import (
    AS_IS_DAILY_POTS,
    AS_IS_SENSOR_BATCHES,
    AS_IS_USER_STATS,
    DEFAULT_PARTITION,
    NO_SEQSCAN,
    PARTITIONED_TABLE,
    PRESSURE_ROWS,
    S43_AGGREGATION,
    S43_CLAIM_STATUS,
    S43_DEVICE_USER,
    S43_PRESSURE,
    S44_PARTITION,
    S44_TABLE,
    S62_CHECK,
    VALID_BATCH,
    insert_at,
    leading_column,
    rows,
)

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
        working_probes=(Probe(sql=(insert_at("0 seconds", "RETURNING tableoid::regclass"),),
                              shows="a current row is accepted (into the default partition)",
                              expect="tableoid=sensor_batches_default"),)),
    Finding(
        id="single-partition-rejects-current-rows", section="§4.4",
        review_sql=(S44_PARTITION,), setup_sql=PARTITIONED_TABLE,
        claim="Partition by month for scalability.",
        expect="ok-but-wrong",
        reality="With only the January 2024 partition and no DEFAULT partition, every row of "
                "any other month is rejected: no upload after January 2024 can be stored.",
        probes=(Probe(sql=(insert_at("0 seconds"),), error=True,
                      shows="an upload stamped now has no partition",
                      expect='no partition of relation "sensor_batches" found for row'),),
        working_equivalent=(S44_PARTITION, DEFAULT_PARTITION),
        working_probes=(Probe(sql=(insert_at("0 seconds", "RETURNING tableoid::regclass"),),
                              shows="with a DEFAULT partition (and monthly partitions made "
                                    "ahead by a job) the row is stored",
                              expect="tableoid=sensor_batches_default"),)),
    Finding(
        id="create-if-not-exists-skips-as-is-table", section="§4.4",
        review_sql=(S44_TABLE,), setup_sql=AS_IS_SENSOR_BATCHES + rows("d1", "1 day"),
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
            Probe(sql=(insert_at("2 minutes"),), error=True,
                  shows="a batch stamped 2 minutes ahead of the server clock is rejected",
                  expect='violates check constraint "valid_timestamp"'),
            Probe(sql=(insert_at("30 seconds", "RETURNING 1 AS stored"),),
                  shows="30 seconds ahead passes", expect="stored=1"),
        ),
        working_equivalent=(PARTITIONED_TABLE, DEFAULT_PARTITION),
        working_probes=(Probe(sql=(insert_at("2 minutes", "RETURNING 1 AS stored"),),
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
        probes=(explain("SELECT count(*) FROM sensor_batches "
                         "WHERE timestamp_utc > NOW() - INTERVAL '1 hour'",
                         shows="the as-is B-tree on timestamp_utc already serves the job",
                         expect="sensor_batches_timestamp"),),
        working_equivalent=("CREATE INDEX idx_sensor_batches_aggregation "
                            "ON sensor_batches (timestamp_utc DESC);",),
        working_probes=(explain("SELECT count(*) FROM sensor_batches "
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
            hot_probe("with the index, none of 20 uploads_today increments is HOT", 0),
            explain("SELECT * FROM daily_pots WHERE user_id = 'u1'",
                     shows="the /daily-pot lookup uses the primary key",
                     expect="daily_pots_pkey", absent="idx_daily_pots_claim_status"),
        ),
        working_equivalent=("CREATE INDEX IF NOT EXISTS daily_pots_last_claim "
                            "ON daily_pots (last_claim_date);",),
        working_probes=(hot_probe("without uploads_today in an index, all 20 are HOT", 20),)),
    Finding(
        id="user-stats-index-repeats-primary-key", section="§4.3",
        review_sql=(S43_DEVICE_USER,), setup_sql=AS_IS_USER_STATS,
        claim="For user stats lookups.",
        expect="ok",
        reality="Created, and redundant: device_hash is already the primary key (unique), so "
                "a lookup by device finds at most one row through it; lookups by user use the "
                "as-is index on user_id. It only adds index-only scans of user_id by device, "
                "at the cost of one more index to write.",
        probes=(Probe(sql=(f"SELECT {leading_column('user_stats_pkey')} AS pk_leads, "
                           f"{leading_column('idx_user_stats_device_user')} AS new_leads",),
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
            explain("SELECT count(*) FROM sensor_batches "
                     """WHERE (batch_json -> 'summary' -> 'pressure') @> '{"max": 1014}'""",
                     shows="containment on the expression uses it",
                     expect="Bitmap Index Scan on idx_sensor_batches_pressure"),
            explain("SELECT count(*) FROM sensor_batches "
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
        working_probes=(explain("SELECT count(*) FROM sensor_batches WHERE "
                                 "(batch_json -> 'summary' -> 'pressure' ->> 'avg')::float8 "
                                 "> 1020",
                                 shows="a B-tree on the extracted number serves ranges",
                                 expect="idx_sensor_batches_pressure_avg"),)),
)
