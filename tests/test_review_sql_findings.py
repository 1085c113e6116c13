"""The review's backend SQL (§4.3, §4.4, §5.4, §6.2) on a real PostgreSQL: each finding of
`simulator.review` behaves as recorded in docs/findings-postgres.md."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from simulator.backend.postgres import Database, open_database
from simulator.review.findings import FINDINGS
from simulator.review.records import Finding, Probe, Result
from simulator.review.run import SCHEMA_PREFIX, run_findings
from simulator.review.sql import REVIEW_STATEMENTS

REVIEW = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_13de461d21d86262.txt"
BY_ID = {f.id: f for f in FINDINGS}
PROBES = [(f.id, i) for f in FINDINGS for i in range(len(f.probes))]
WORKING_PROBES = [(f.id, i) for f in FINDINGS for i in range(len(f.working_probes))]


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    """One PostgreSQL for this module ($DATABASE_URL, else embedded)."""
    with open_database() as db:
        yield db


@pytest.fixture(scope="module")
def results(database: Database) -> dict[str, Result]:
    """Every finding, run once."""
    return {r.finding.id: r for r in asyncio.run(run_findings(database.url))}


def test_finding_ids_are_unique() -> None:
    assert len(BY_ID) == len(FINDINGS)


@pytest.mark.parametrize("finding_id", list(BY_ID))
def test_review_sql_does_what_the_finding_records(finding_id: str,
                                                  results: dict[str, Result]) -> None:
    result = results[finding_id]
    assert result.review_matched, (result.finding.expect, result.finding.error_contains,
                                   result.review)


@pytest.mark.parametrize(("finding_id", "index"), PROBES, ids=[f"{f}-{i}" for f, i in PROBES])
def test_probe_shows_what_it_claims(finding_id: str, index: int,
                                    results: dict[str, Result]) -> None:
    result = results[finding_id]
    probe = result.finding.probes[index]
    assert probe.matches(result.probes[index]), (probe.shows, probe.expect,
                                                 result.probes[index])


@pytest.mark.parametrize("finding_id", list(BY_ID))
def test_working_equivalent_runs(finding_id: str, results: dict[str, Result]) -> None:
    result = results[finding_id]
    assert result.working_ran, result.working


@pytest.mark.parametrize(("finding_id", "index"), WORKING_PROBES,
                         ids=[f"{f}-{i}" for f, i in WORKING_PROBES])
def test_working_equivalent_fixes_it(finding_id: str, index: int,
                                     results: dict[str, Result]) -> None:
    result = results[finding_id]
    probe = result.finding.working_probes[index]
    assert probe.matches(result.working_probes[index]), (probe.shows, probe.expect,
                                                         result.working_probes[index])


@pytest.mark.skipif(not REVIEW.exists(), reason="the review text is not beside the repo")
@pytest.mark.parametrize("finding_id", list(BY_ID))
def test_review_sql_is_quoted_verbatim(finding_id: str) -> None:
    finding = BY_ID[finding_id]
    text = REVIEW.read_text(encoding="utf-8")
    quoted = [sql in text for sql in finding.review_sql]
    assert all(quoted) != bool(finding.adapted), (quoted, finding.adapted)


@pytest.mark.skipif(not REVIEW.exists(), reason="the review text is not beside the repo")
def test_the_statement_list_quotes_the_review() -> None:
    text = REVIEW.read_text(encoding="utf-8")
    assert [sql for sql in REVIEW_STATEMENTS if sql not in text] == []


def test_every_reviewed_statement_is_run_by_some_finding() -> None:
    run = {sql for f in FINDINGS for sql in f.review_sql}
    assert [sql for sql in REVIEW_STATEMENTS if sql not in run] == []


def test_no_scratch_schema_is_left(database: Database, results: dict[str, Result]) -> None:
    async def leftovers() -> list[str]:
        conn = await asyncpg.connect(database.url)
        try:
            rows = await conn.fetch("SELECT nspname FROM pg_namespace "
                                    "WHERE starts_with(nspname, $1)", SCHEMA_PREFIX)
            return [r["nspname"] for r in rows]
        finally:
            await conn.close()

    assert results
    assert asyncio.run(leftovers()) == []


def test_a_wrong_expectation_is_reported(database: Database) -> None:
    """The checks can fail: the partial index expected to work, and a probe expecting the
    wrong count, are both reported as not matched."""
    partial = BY_ID["partial-index-on-now"]
    hot = BY_ID["claim-status-index-blocks-hot-updates"]
    wrong = [
        dataclasses.replace(partial, id="wrong-ok", expect="ok", error_contains=None),
        dataclasses.replace(hot, id="wrong-probe", probes=(
            dataclasses.replace(hot.probes[0], expect="n_tup_hot_upd=20"),)),
        dataclasses.replace(partial, id="wrong-statement", review_sql=(
            partial.review_sql[0], "SELECT 1;")),
    ]
    results = asyncio.run(run_findings(database.url, wrong))
    assert [r.matched for r in results] == [False, False, False]


def test_a_broken_working_equivalent_is_reported(database: Database) -> None:
    finding: Finding = dataclasses.replace(
        BY_ID["partial-index-on-now"], working_equivalent=("CREATE INDEX ON missing (x);",),
        working_probes=(Probe(sql=("SELECT 1 AS one",), shows="-", expect="one=2"),))
    [result] = asyncio.run(run_findings(database.url, [finding]))
    assert not result.working_ran
    assert "does not exist" in result.working.message
    assert result.working_probes_matched == (False,)
