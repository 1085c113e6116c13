"""The review findings on archiving (§5.4): the partitioned archive table, the INSERT then
DELETE that moves old rows, and the weekly archival function.

Invariants: `F54` is a tuple of frozen `Finding` records (their checks run when
this module is imported); every review statement it runs is one of
`simulator.review.sql`'s verbatim statements, or is derived from one and says how in
its `adapted` text.
"""

from __future__ import annotations

from simulator.review.records import Finding, Probe
from simulator.review.sql import (
    ARCHIVE_FUNCTION,
    ARCHIVE_WITH_DEFAULT,
    ARCHIVED,
    AS_IS_SENSOR_BATCHES,
    DEFAULT_ARCHIVE_PARTITION,
    LATE_ROW,
    MOVE_ATOMICALLY,
    PARTITIONED_SERIAL_TABLE,
    S44_TABLE,
    S54_ARCHIVE,
    S54_DELETE,
    S54_FUNCTION,
    S54_INSERT,
    rows,
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
        setup_sql=AS_IS_SENSOR_BATCHES + S54_ARCHIVE + rows("d1", "40 days"),
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
        setup_sql=AS_IS_SENSOR_BATCHES + ARCHIVE_WITH_DEFAULT + rows("d1", "40 days"),
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
        setup_sql=AS_IS_SENSOR_BATCHES + ARCHIVE_WITH_DEFAULT + rows("d1", "40 days"),
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
        setup_sql=(AS_IS_SENSOR_BATCHES + ARCHIVE_WITH_DEFAULT + rows("d1", "40 days")
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
