"""An oracle about the review: its backend SQL (§4.3, §4.4, §5.4, §6.2) run verbatim on a
real PostgreSQL, with what each statement claims, what it really does, and what works
instead. Used by the tests and docs/findings-postgres.md, never by the server.

Modules: `sql` loads the SQL texts from `fixtures/sql/review/`; `records` holds the record
types (`Finding`, `Probe`, `Outcome`, `Result`) and their checks; `schema_findings`,
`archive_findings` and `migration_findings` hold the findings, by review section;
`findings` lists them all; `run` runs them on a server.

Invariants:
- nothing in `simulator.backend` imports this package, and this package imports nothing
  from `simulator.fleet`, `simulator.report`, `simulator.cli` or `simulator.capacity`
  (tests/test_architecture.py);
- importing this package imports no submodule: `simulator.review.sql` can be read without
  asyncpg.
"""
