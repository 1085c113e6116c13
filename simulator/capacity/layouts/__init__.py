"""What a storage layout change is worth before making it (review §4.2: "Storage
efficiency POOR - 30+ readings per batch = bloat - consider batch table"), measured on a
real PostgreSQL with the same uploads stored four ways, each in its own tables of a scratch
schema that is dropped afterwards:

- `jsonb_pglz`: one row per batch with `sensor_batches`' columns, `batch_json` JSONB as
  the API stores it today, compressed by pglz (the default, set explicitly);
- `jsonb_lz4`: the same with `batch_json` compressed by lz4. A server built without lz4
  (the embedded one) refuses it: the layout is then reported not measured with the
  server's reason, never estimated;
- `readings_normalised`: one row per reading (batch key, ordinal, t, float4 per channel)
  and one row per batch whose summary, location and battery fields are typed columns;
- `typed_arrays`: one row per batch: the same typed columns and the readings as one array
  per channel (float4[], and int4[] millisecond offsets of t from the window timestamp).

Every layout has the indexes the backend's queries need on its batch rows (see `tables`).

One job per module, each opening with its invariants; a module imports only modules
above it in this list:

- `_types`: the vocabulary (array aliases, the progress callback, instants' formats);
- `tables`: the layouts, their columns, indexes and DDL; creating them in a scratch schema;
- `corpus`: the uploads parsed once into typed columns; the fleet samples;
- `load`: loading a corpus into a layout by COPY, timed;
- `size`: what the server stores (PostgreSQL's accounting, empty tails, JSONB storage);
- `roundtrip`: each layout's rows counted and rebuilt into the uploaded JSON;
- `report`: the report's dataclasses;
- `measure`: `measure_layouts`, which runs the above.

Names with a leading underscore are private to this package: its modules share them,
nothing outside it imports them.

Invariants:
- Equal information: every layout holds the same batches and readings, and the typed ones
  every number of the JSON: sensor values and summary statistics as float4 (the phone
  measures float32), coordinates as float8. Checked after each measurement: each layout's
  batches and readings are counted in the database, and sampled batches' payloads are
  rebuilt from every layout and compared with the uploaded JSON (`RoundTripError`). A
  payload the typed layouts could not hold (an unknown or missing key, readings that
  disagree on having a barometer) is refused up front with `InvariantError` (a `ValueError`).
- PostgreSQL's accounting is the ground truth (`pgsize.table_size`): main, fsm and vm
  forks, the TOAST relation (its heap and index) and every index, read after
  `VACUUM (ANALYZE)`; a layout's parts add up to its `total_bytes`.
- Fair ingest: each repeat loads every layout once into emptied tables (TRUNCATE, then a
  CHECKPOINT where allowed), in an order rotated each repeat, by COPY
  (`copy_records_to_table`) of the same batches in the same chunks. Only the COPY calls are
  timed (they include asyncpg encoding the records in this process); the median repeat is
  reported.
- Clean and bounded: the scratch schema is dropped however the measurement ends; with
  `time_budget_s`, no repeat starts that would be expected to end after the budget (the
  first always runs).
"""

from __future__ import annotations

from simulator.capacity.layouts.corpus import (
    LayoutCorpus,
    build_corpus,
    full_sample,
    quick_sample,
)
from simulator.capacity.layouts.load import load_layout
from simulator.capacity.layouts.measure import measure_layouts, measure_layouts_async
from simulator.capacity.layouts.report import BATCHES_PER_USER_DAY, LayoutReport, LayoutResult
from simulator.capacity.layouts.roundtrip import RoundTripError, round_trip_differences
from simulator.capacity.layouts.size import (
    JsonbStorage,
    LayoutSize,
    empty_tail_bytes,
    layout_size,
)
from simulator.capacity.layouts.tables import (
    LAYOUTS,
    create_layout,
    layout_tables,
    scratch_schema,
)

__all__ = [
    "BATCHES_PER_USER_DAY",
    "LAYOUTS",
    "JsonbStorage",
    "LayoutCorpus",
    "LayoutReport",
    "LayoutResult",
    "LayoutSize",
    "RoundTripError",
    "build_corpus",
    "create_layout",
    "empty_tail_bytes",
    "full_sample",
    "layout_size",
    "layout_tables",
    "load_layout",
    "measure_layouts",
    "measure_layouts_async",
    "quick_sample",
    "round_trip_differences",
    "scratch_schema",
]
