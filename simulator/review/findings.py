"""Every review finding, grouped by review section (§4.4, §4.3, §5.4, §6.2).

Invariants: `FINDINGS` holds each finding once (ids are unique, checked at import), and
every statement of `simulator.review.sql.REVIEW_STATEMENTS` is run by at least one finding
(tests/test_review_sql_findings.py checks that, and that each one quotes the review).
"""

from __future__ import annotations

from simulator.errors import SimulatorError
from simulator.review.archive_findings import F54
from simulator.review.migration_findings import F62
from simulator.review.records import Finding
from simulator.review.schema_findings import F43, F44

FINDINGS: tuple[Finding, ...] = F44 + F43 + F54 + F62

if len({f.id for f in FINDINGS}) != len(FINDINGS):
    raise SimulatorError("two review findings share an id")
