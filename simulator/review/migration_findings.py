"""The review findings on its migration script (§6.2): the added id column, the CHECK
constraint, the two indexes and the updated_at trigger.

Invariants: `F62` is a tuple of frozen `Finding` records (their checks run when
this module is imported); every review statement it runs is one of
`simulator.review.sql`'s verbatim statements, or is derived from one and says how in
its `adapted` text.
"""

from __future__ import annotations

from simulator.review.records import SCRATCH, Finding, Probe, explain, hot_probe
from simulator.review.sql import (
    ADD_ID_IF_MISSING,
    AS_IS_DAILY_POTS,
    AS_IS_SENSOR_BATCHES,
    AS_IS_USER_STATS,
    DEFAULT_PARTITION,
    ID_COLUMNS_HERE,
    PRESSURE_ROWS,
    S62_ADD_ID,
    S62_CHECK,
    S62_HAS_PRESSURE,
    S62_POT_STATUS,
    S62_TRIGGER,
    VALID_BATCH,
    leading_column,
    rows,
)

F62 = (
    Finding(
        id="add-id-rewrites-table", section="§6.2",
        review_sql=(S62_ADD_ID,),
        setup_sql=(AS_IS_SENSOR_BATCHES + rows("d1", "1 day", 3)
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
        setup_sql=(AS_IS_SENSOR_BATCHES + rows("d1", "1 day")
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
            Probe(sql=(f"SELECT {leading_column('daily_pots_pkey')} AS pk_leads, "
                       f"{leading_column('idx_daily_pots_status')} AS new_leads",),
                  shows="the new index leads with the primary key's column",
                  expect="pk_leads=user_id new_leads=user_id"),
            hot_probe("none of 20 uploads_today increments is HOT", 0),
        ),
        working_equivalent=(),
        working_probes=(hot_probe("without it (the primary key serves the lookup) all 20 "
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
            explain("SELECT count(*) FROM sensor_batches "
                     "WHERE batch_json -> 'summary' -> 'pressure' IS NOT NULL",
                     shows="IS NOT NULL can use it",
                     expect="Bitmap Index Scan on idx_sensor_batches_has_pressure"),
            explain("SELECT count(*) FROM sensor_batches "
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
        working_probes=(explain("SELECT count(*) FROM sensor_batches WHERE timestamp_utc > "
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
