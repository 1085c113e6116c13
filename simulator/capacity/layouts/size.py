"""What the server stores: a layout's tables as PostgreSQL accounts for them, the empty
pages a bulk load leaves at a table's end, and how JSONB's `batch_json` is stored.

Invariant: PostgreSQL's accounting is the ground truth (`pgsize.table_size`): main, fsm
and vm forks, the TOAST relation (its heap and index) and every index, read after
`VACUUM (ANALYZE)`; a layout's parts add up to its `total_bytes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simulator.capacity.layouts.tables import _has_compression_methods
from simulator.capacity.pgsize import TableSize, table_size


@dataclass(frozen=True)
class LayoutSize:
    """PostgreSQL's accounting of a layout's tables, summed (see `pgsize.TableSize`)."""

    tables: tuple[TableSize, ...]
    heap_bytes: int
    fsm_bytes: int
    vm_bytes: int
    toast_bytes: int
    index_bytes: dict[str, int]
    total_bytes: int

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


async def layout_size(conn: Any, tables: Sequence[str]) -> LayoutSize:
    """The summed sizes of `tables` (schema-qualified names) now; call after
    `VACUUM (ANALYZE)` for the maps to exist."""
    sizes = tuple([await table_size(conn, t) for t in tables])
    index_bytes: dict[str, int] = {}
    for size in sizes:
        index_bytes |= size.index_bytes
    return LayoutSize(
        tables=sizes, heap_bytes=sum(s.heap_bytes for s in sizes),
        fsm_bytes=sum(s.fsm_bytes for s in sizes), vm_bytes=sum(s.vm_bytes for s in sizes),
        toast_bytes=sum(s.toast_bytes for s in sizes), index_bytes=index_bytes,
        total_bytes=sum(s.total_bytes for s in sizes))


async def empty_tail_bytes(conn: Any, table: str) -> int:
    """Bytes of `table`'s main fork after its last page that holds a tuple. PostgreSQL 16+
    extends a relation by many pages at once for COPY and VACUUM gives back a tail only
    when it is at least 1/16 of the table, so a small bulk-loaded table keeps up to a few
    hundred KB of empty pages: real bytes, but a fixed cost, not a cost per row."""
    row = await conn.fetchrow(
        f"SELECT pg_relation_size($1::regclass), current_setting('block_size')::int, "
        f"max((ctid::text::point)[0])::bigint FROM {_quoted(table)}", table)
    main_bytes, block_bytes, last_page = int(row[0]), int(row[1]), row[2]
    used_pages = 0 if last_page is None else int(last_page) + 1
    return main_bytes - used_pages * block_bytes


def _quoted(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


@dataclass(frozen=True)
class JsonbStorage:
    """How `batch_json` is stored, averaged over the rows."""

    stored_bytes_mean: float  # pg_column_size: as stored (compressed or not), header included
    text_bytes_mean: float  # octet_length(batch_json::text): PostgreSQL's JSON text
    uncompressed_bytes_mean: float  # the JSONB datum before TOAST compression
    compression_methods: dict[str, int]  # pg_column_compression -> rows ("none": not
    # compressed); empty before PostgreSQL 14, where pglz is the only method

    @property
    def compression_ratio(self) -> float:
        """JSON text bytes per stored byte."""
        return self.text_bytes_mean / self.stored_bytes_mean


async def _jsonb_storage(conn: Any, table: str) -> JsonbStorage:
    # `|| '{}'` hands pg_column_size the detoasted (decompressed) datum
    means = await conn.fetchrow(
        f"SELECT avg(pg_column_size(batch_json))::float8, "
        f"avg(octet_length(batch_json::text))::float8, "
        f"avg(pg_column_size(batch_json || '{{}}'::jsonb))::float8 FROM {table}")
    methods = await conn.fetch(
        f"SELECT coalesce(pg_column_compression(batch_json), 'none') AS method, count(*) "
        f"FROM {table} GROUP BY 1 ORDER BY 1") if await _has_compression_methods(conn) else []
    return JsonbStorage(float(means[0]), float(means[1]), float(means[2]),
                        {row[0]: int(row[1]) for row in methods})
