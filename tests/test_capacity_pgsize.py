"""PostgreSQL's accounting, checked on tables whose size follows from the page layout."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from simulator.capacity.pgsize import json_column_size, table_size

PAGE = 8192
PAGE_HEADER = 24
LINE_POINTER = 4
TUPLE_HEADER = 24  # 23 bytes, padded to the 8-byte alignment


def run(database_url: str, body: Any) -> Any:
    async def main() -> Any:
        conn = await asyncpg.connect(database_url)
        try:
            return await body(conn)
        finally:
            await conn.close()
    return asyncio.run(main())


def test_a_table_of_known_rows_has_the_size_its_page_layout_gives(database_url: str) -> None:
    rows = 10_000

    async def body(conn: Any) -> Any:
        await conn.execute("CREATE TABLE known (id bigint NOT NULL)")
        await conn.execute("INSERT INTO known SELECT g FROM generate_series(1, $1) g", rows)
        await conn.execute("CREATE INDEX known_id ON known (id)")
        await conn.execute("VACUUM (ANALYZE) known")
        return await table_size(conn, "known")

    size = run(database_url, body)
    per_page = (PAGE - PAGE_HEADER) // (TUPLE_HEADER + 8 + LINE_POINTER)  # 226
    assert size.rows == rows
    assert size.heap_bytes == -(-rows // per_page) * PAGE
    assert size.toast_bytes == 0  # a bigint has no TOAST table
    assert set(size.index_bytes) == {"known_id"}
    assert size.vm_bytes == PAGE and size.fsm_bytes > 0  # VACUUM made both maps
    assert size.per_row()["heap"] == size.heap_bytes / rows


def test_a_partitioned_table_sums_its_partitions_and_names_its_indexes(
        database_url: str) -> None:
    async def body(conn: Any) -> Any:
        await conn.execute("CREATE TABLE parted (k int NOT NULL, v text) PARTITION BY RANGE (k)")
        await conn.execute("CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (500)")
        await conn.execute("CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (500) "
                           "TO (1000)")
        await conn.execute("CREATE INDEX parted_k ON parted (k)")
        # incompressible text over the TOAST threshold: md5 chains of 4,000 characters
        await conn.execute("INSERT INTO parted SELECT g, (SELECT string_agg(md5(g::text || "
                           "i::text), '') FROM generate_series(1, 125) i) "
                           "FROM generate_series(0, 999) g")
        await conn.execute("VACUUM (ANALYZE) parted")
        whole = await table_size(conn, "parted")
        one = await table_size(conn, "parted_a")
        return whole, one

    whole, one = run(database_url, body)
    assert whole.rows == 1000 and whole.leaves == 2 and one.leaves == 1
    assert set(whole.index_bytes) == {"parted_k"}  # partition indexes under their parent
    assert whole.toast_bytes >= 1000 * 4000  # every 4,000-byte value went out of line
    assert whole.heap_bytes < whole.toast_bytes / 10  # the heap holds only pointers
    assert one.total_bytes < whole.total_bytes


def test_json_column_size_compares_the_stored_datum_with_its_text(database_url: str) -> None:
    async def body(conn: Any) -> Any:
        await conn.execute("CREATE TABLE docs (j jsonb)")
        # a repetitive 20 KB document compresses well; a small one is stored as is
        await conn.execute("INSERT INTO docs SELECT jsonb_build_object('a', repeat('x', 20000)) "
                           "FROM generate_series(1, 20)")
        big = await json_column_size(conn, "docs", "j")
        sampled = await json_column_size(conn, "docs", "j", sample_rows=5)
        return big, sampled

    big, sampled = run(database_url, body)
    assert big.rows == 20 and big.text_bytes_mean == len('{"a": ""}') + 20000
    assert big.compression_ratio > 20  # pglz squeezed the repeated character
    assert sampled.rows <= 20
