"""PostgreSQL's own accounting of what a table occupies: heap forks, TOAST and each index,
summed over a partitioned table's partitions.

The figures are `pg_relation_size` per fork of every leaf partition, the whole TOAST
relation (its heap and its index, `pg_total_relation_size` of `reltoastrelid`), and
every fork of each index (a GIN index has a free-space map); a partition's index is
counted under the partitioned index it belongs to (`pg_partition_root`). Invariant:
`TableSize.total_bytes` equals `pg_total_relation_size` summed over the leaves (checked
on every call), so nothing is counted twice or left out. Measure after `VACUUM (ANALYZE)`
when the visibility and free-space maps should exist, as on a server in service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.errors import InvariantError

FORKS = ("main", "fsm", "vm")

# pg_partition_tree gives nothing for a plain table: then the table is its own leaf
_TREE = """
(SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf
 UNION ALL
 SELECT $1::regclass WHERE NOT EXISTS (SELECT FROM pg_partition_tree($1::regclass)))
"""

_LEAVES = f"""
SELECT t.relid::regclass::text AS leaf, c.reltoastrelid,
       pg_relation_size(t.relid, 'main') AS main, pg_relation_size(t.relid, 'fsm') AS fsm,
       pg_relation_size(t.relid, 'vm') AS vm,
       CASE WHEN c.reltoastrelid = 0 THEN 0
            ELSE pg_total_relation_size(c.reltoastrelid) END AS toast,
       pg_total_relation_size(t.relid) AS total
FROM {_TREE} t JOIN pg_class c ON c.oid = t.relid
"""

_INDEXES = f"""
SELECT COALESCE(pg_partition_root(i.indexrelid), i.indexrelid)::regclass::text AS name,
       sum(pg_total_relation_size(i.indexrelid))::bigint AS bytes  -- every fork (GIN has an fsm)
FROM {_TREE} t JOIN pg_index i ON i.indrelid = t.relid
GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True)
class TableSize:
    """One table's bytes by fork and index, and its rows."""

    table: str
    rows: int
    heap_bytes: int  # the main fork
    fsm_bytes: int
    vm_bytes: int
    toast_bytes: int  # the TOAST heap and its index
    index_bytes: dict[str, int] = field(default_factory=dict)
    leaves: int = 1  # partitions holding rows' storage (1: not partitioned)

    @property
    def indexes_total_bytes(self) -> int:
        return sum(self.index_bytes.values())

    @property
    def total_bytes(self) -> int:
        return (self.heap_bytes + self.fsm_bytes + self.vm_bytes + self.toast_bytes
                + self.indexes_total_bytes)

    def per_row(self) -> dict[str, float]:
        """Bytes per row of each part (`nan` when the table is empty)."""
        rows = self.rows or float("nan")
        parts = {"heap": self.heap_bytes, "fsm": self.fsm_bytes, "vm": self.vm_bytes,
                 "toast": self.toast_bytes,
                 **{f"index {name}": size for name, size in self.index_bytes.items()}}
        return {name: size / rows for name, size in parts.items()} | {
            "total": self.total_bytes / rows}


@dataclass(frozen=True)
class JsonColumnSize:
    """How a JSONB column is stored: the stored (possibly compressed) datum against its
    JSON text, averaged over the rows."""

    rows: int
    stored_bytes_mean: float  # pg_column_size: after TOAST compression, with its header
    text_bytes_mean: float  # octet_length of the value as JSON text

    @property
    def compression_ratio(self) -> float:
        return self.text_bytes_mean / self.stored_bytes_mean if self.stored_bytes_mean else 0.0


async def table_size(conn: Any, table: str) -> TableSize:
    """The sizes of `table` (a name `search_path` finds, or schema-qualified) now."""
    leaves = await conn.fetch(_LEAVES, table)
    if not leaves:
        raise InvariantError(f"{table} has no storage (a partitioned table with no partitions?)")
    indexes = await conn.fetch(_INDEXES, table)
    rows = await conn.fetchval(f"SELECT count(*) FROM {_quote(table)}")
    total_leaves = sum(int(leaf["total"]) for leaf in leaves)
    size = TableSize(
        table=table, rows=int(rows),
        heap_bytes=sum(int(leaf["main"]) for leaf in leaves),
        fsm_bytes=sum(int(leaf["fsm"]) for leaf in leaves),
        vm_bytes=sum(int(leaf["vm"]) for leaf in leaves),
        toast_bytes=sum(int(leaf["toast"]) for leaf in leaves),
        index_bytes={_bare(row["name"]): int(row["bytes"]) for row in indexes},
        leaves=len(leaves))
    if size.total_bytes != total_leaves:  # the invariant of the module docstring
        raise AssertionError(f"{table}: parts add up to {size.total_bytes} bytes, "
                             f"pg_total_relation_size says {total_leaves}")
    return size


async def json_column_size(conn: Any, table: str, column: str,
                           sample_rows: int | None = None) -> JsonColumnSize:
    """`pg_column_size` against the JSON text length of `column`, over every row or a
    deterministic sample of about `sample_rows` (TABLESAMPLE SYSTEM with a fixed seed)."""
    source = _quote(table)
    if sample_rows is not None:
        total = await conn.fetchval(f"SELECT count(*) FROM {source}")
        if total > sample_rows:
            percent = max(0.01, min(100.0, 100.0 * sample_rows / total))
            source = f"{source} TABLESAMPLE SYSTEM ({percent}) REPEATABLE (42)"
    row = await conn.fetchrow(
        f"SELECT count(*), avg(pg_column_size({column}))::float8, "
        f"avg(octet_length({column}::text))::float8 FROM {source}")
    return JsonColumnSize(int(row[0]), float(row[1] or 0.0), float(row[2] or 0.0))


def _quote(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"')
