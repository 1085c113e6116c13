"""Capacity planning (`ggsim capacity`): what PostgreSQL and the phone's SQLite really
store and how fast the reference stack ingests, measured on the real engines, projected to
1K/10K/100K users with intervals, and put beside the review's §5 tables.

Layer: beside `fleet/` (it runs things); it may import `sensors/`, `phone/`, `backend/`,
`drivers/` and `checks/`, never `fleet/`, `report/` or the CLI. Each module measures one
thing and returns frozen dataclasses whose field names carry their units.
"""
