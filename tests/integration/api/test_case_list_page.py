"""The case list page on SQLite and PostgreSQL: a column per status of each case's latest assessment (RPL, RIF,
blood and uterine NK) and its date, filtered and paged by the database from the summary row stored with each
assessment, at a cost that does not grow with the number of cases; and the migration that fills in the summary
rows of a database from before."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql

from decidua.adapters.store import NewAssessment, SqlCaseStore, open_store
from decidua.adapters.store.migrate import current_revision, head_revision, upgrade
from decidua.adapters.store.sql import make_engine
from decidua.app.casefile import load_data
from decidua.app.cases import CaseService
from decidua.app.ports import CaseFilter, StatusWord
from decidua.core.findings import Status
from decidua.knowledge.loader import KnowledgeBase

from conftest import EXAMPLES

Web = Any  # the ``web`` fixture of this folder's conftest: client, store, clock, admin_id, clinician_id
FLAGGED, WITHIN, MISSING = Status.FLAGGED, Status.WITHIN_RANGE, Status.NOT_ASSESSED


def _cases(store: SqlCaseStore, kb: KnowledgeBase, *names: str) -> CaseService:
    svc = CaseService(store, kb)
    for name in names:
        svc.create(load_data(EXAMPLES / name), by=None)
    return svc


def _result(rpl: Status, blood: Status = MISSING, uterine: Status = MISSING) -> dict[str, Any]:
    item = lambda s, **more: {"status": s.value, "status_label": f"{s.value} word", **more}  # noqa: E731
    return {
        "classification": {"rpl": item(rpl), "rif": item(WITHIN)},
        "findings": [item(blood, rule_id="nk.peripheral.clinic"), item(uterine, rule_id="nk.uterine.kuon2017")],
    }


def _rows(html: str) -> dict[str, list[str]]:
    """Case id -> the words of its RPL, RIF, blood NK and uterine NK cells."""
    out = {}
    for row in re.findall(r"<tr>\s*<td><a href=\"/cases/\d+\">(.*?)</tr>", html, re.S):
        reference = row.split("<", 1)[0]
        out[reference] = re.findall(r'class="triage-\w+"><span class="status status-\w+">([^<]*)</span>', row)
    return out


def test_the_case_list_shows_each_status_in_its_rules_words_and_filters_by_them(web: Web, kb: KnowledgeBase) -> None:
    _cases(web.store, kb, "01-rpl-age36-nk-high.yaml", "06-sle-rif-uterine-nk.yaml", "12-unknown-history.yaml")
    web.login_form()
    page = web.client.get("/cases")
    assert page.status_code == 200
    for heading in ("RPL", "RIF", "Blood NK", "Uterine NK", "Last assessed"):
        assert f"<th>{heading}</th>" in page.text
    assert _rows(page.text) == {
        "EX-12": ["not assessed", "not assessed", "above", "not assessed"],
        "EX-06": ["not met", "met", "not assessed", "outside the range (high)"],
        "EX-01": ["met", "not met", "above", "not assessed"],
    }
    assert len(re.findall(r'class="assessed">\d{4}-\d\d-\d\d \d\d:\d\d UTC<', page.text)) == 3  # when assessed
    # the filters' words are the rules' (met / not met, above / not above)
    assert '<option value="flagged">met</option>' in page.text
    assert '<option value="within_range">not above</option>' in page.text

    def listed(**params: str) -> list[str]:
        r = web.client.get("/cases", params=params)
        assert r.status_code == 200
        return list(_rows(r.text))

    assert listed(rpl="flagged") == ["EX-01"]
    assert listed(nk="flagged") == ["EX-12", "EX-06", "EX-01"]
    assert listed(rpl="not_assessed") == ["EX-12"]
    assert listed(rif="flagged", uterine_nk="flagged", q="ex-0") == ["EX-06"]
    assert listed(blood_nk="within_range") == []
    assert listed(rpl="bogus") == ["EX-12", "EX-06", "EX-01"]  # not a status: no filter
    empty = web.client.get("/cases", params={"blood_nk": "within_range"})
    assert "No case matches the filters" in empty.text
    filtered = web.client.get("/cases", params={"rpl": "flagged"})
    assert "Filtered: 1–1 of 1" in filtered.text
    assert '<option value="flagged" selected>met</option>' in filtered.text


def test_a_filtered_list_pages_with_its_filters(web: Web) -> None:
    for i in range(60):
        status = FLAGGED if i % 3 else WITHIN
        web.store.create_case(f"P-{i:03d}", {"case_id": f"P-{i:03d}"}, None, NewAssessment("kb", _result(status)))
    web.login_form()
    first = web.client.get("/cases", params={"rpl": "flagged"})
    assert "Filtered: 1–40 of 40" in first.text
    assert 'rel="next" href="/cases?rpl=flagged&amp;q=&amp;page=2"' not in first.text  # 40 fit on a page
    more = web.client.get("/cases", params={"nk": "flagged", "rpl": "within_range"})
    assert "No case matches the filters" in more.text
    page_one = web.client.get("/cases", params={"q": "p-"})
    assert 'rel="next" href="/cases?q=p-&amp;page=2"' in page_one.text
    for i in range(60, 100):
        web.store.create_case(f"P-{i:03d}", {"case_id": f"P-{i:03d}"}, None, NewAssessment("kb", _result(FLAGGED)))
    paged = web.client.get("/cases", params={"rpl": "flagged"})
    assert "Filtered: 1–50 of 80 · page 1 of 2" in paged.text
    assert 'rel="next" href="/cases?rpl=flagged&amp;q=&amp;page=2"' in paged.text
    second = web.client.get("/cases", params={"rpl": "flagged", "page": 2})
    assert "Filtered: 51–80 of 80 · page 2 of 2" in second.text
    older = [f"P-{i:03d}" for i in range(59, -1, -1) if i % 3]  # the 40 newest (60-99) fill most of page one
    assert list(_rows(second.text)) == older[10:]


def _statements(store: SqlCaseStore, action: Any) -> list[str]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    return seen


def test_the_list_reads_one_summary_row_per_case_whatever_the_number_of_cases(store: SqlCaseStore) -> None:
    def listing() -> None:
        store.count_cases("p", CaseFilter(any_nk_flagged=True))
        store.list_cases("p", 50, 0, CaseFilter(rpl=FLAGGED, any_nk_flagged=True))

    def add(n: int) -> None:
        for i in range(n):
            case = store.create_case(f"P-{i:03d}-{n}", {}, None, NewAssessment("kb", _result(FLAGGED, FLAGGED)))
            store.add_version(case.case_id, {"v": 2}, None, NewAssessment("kb", _result(FLAGGED, FLAGGED)))

    add(3)
    few = _statements(store, listing)
    add(60)
    many = _statements(store, listing)
    assert len(few) == len(many)  # no statement per case
    assert not any("GROUP BY" in s.upper() for s in many)  # no grouping of the versions
    assert len(store.list_cases("p", 50, 0, CaseFilter(rpl=FLAGGED, any_nk_flagged=True))) == 50


def test_another_assessment_shows_in_the_list_only_for_the_latest_version(store: SqlCaseStore) -> None:
    first = store.create_case("R-1", {}, None, NewAssessment("kb1", _result(FLAGGED)))
    second = store.add_version(first.case_id, {"v": 2}, None, NewAssessment("kb1", _result(WITHIN)))
    store.add_assessment(first.id, NewAssessment("kb2", _result(MISSING)))  # an earlier version: not shown
    triage = store.get_case(first.case_id).triage
    assert (triage.kb_version, triage.rpl) == ("kb1", StatusWord(WITHIN, "within_range word"))
    store.add_assessment(second.id, NewAssessment("kb2", _result(MISSING, uterine=FLAGGED)))
    triage = store.get_case(first.case_id).triage
    assert (triage.kb_version, triage.rpl.status, triage.uterine_nk.status) == ("kb2", MISSING, FLAGGED)
    assert [c.reference for c in store.list_cases(where=CaseFilter(any_nk_flagged=True))] == ["R-1"]


JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def test_the_migration_fills_in_the_summary_of_every_stored_case(database_url: str) -> None:
    """A database of the previous release: its cases get their list statuses from the stored assessments."""
    engine = make_engine(database_url)
    upgrade(engine, "0002")
    at = dt.datetime(2026, 1, 1, 9, 0)
    cases = sa.table("cases", *(sa.column(c) for c in ("id", "reference", "created_at")))
    versions = sa.table(
        "case_versions",
        sa.column("id"),
        sa.column("case_id"),
        sa.column("version"),
        sa.column("data", JSON),
        sa.column("created_at"),
    )
    assessments = sa.table(
        "assessments",
        sa.column("id"),
        sa.column("case_version_id"),
        sa.column("kb_version"),
        sa.column("result", JSON),
        sa.column("created_at"),
    )
    with engine.begin() as conn:
        conn.execute(sa.insert(cases), [{"id": i, "reference": f"OLD-{i}", "created_at": at} for i in (1, 2, 3)])
        conn.execute(
            sa.insert(versions),
            [
                {"id": 1, "case_id": 1, "version": 1, "data": {}, "created_at": at},
                {"id": 2, "case_id": 1, "version": 2, "data": {}, "created_at": at + dt.timedelta(days=1)},
                {"id": 3, "case_id": 2, "version": 1, "data": {}, "created_at": at},
                {"id": 4, "case_id": 3, "version": 1, "data": {}, "created_at": at},
            ],
        )
        conn.execute(
            sa.insert(assessments),
            [
                {"id": 1, "case_version_id": 1, "kb_version": "a", "result": _result(MISSING), "created_at": at},
                {"id": 2, "case_version_id": 2, "kb_version": "a", "result": _result(WITHIN), "created_at": at},
                {  # the newest assessment of the latest version is the one shown
                    "id": 3,
                    "case_version_id": 2,
                    "kb_version": "b",
                    "result": _result(FLAGGED, blood=FLAGGED),
                    "created_at": at + dt.timedelta(days=2),
                },
                {"id": 4, "case_version_id": 3, "kb_version": "a", "result": {"old": "shape"}, "created_at": at},
                # case 3's only version has no assessment
            ],
        )
        if engine.dialect.name == "postgresql":  # ids given above: the sequences go on after them
            for table in ("cases", "case_versions", "assessments"):
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100)"))
    engine.dispose()
    store = open_store(database_url)
    try:
        assert current_revision(store.engine) == head_revision()
        summaries = {c.reference: c for c in store.list_cases()}
        one = summaries["OLD-1"]
        assert (one.latest_version, one.updated_at) == (2, (at + dt.timedelta(days=1)).replace(tzinfo=dt.UTC))
        assert (one.triage.kb_version, one.triage.assessed_at) == (
            "b",
            (at + dt.timedelta(days=2)).replace(tzinfo=dt.UTC),
        )
        assert (one.triage.rpl, one.triage.blood_nk.status) == (StatusWord(FLAGGED, "flagged word"), FLAGGED)
        assert {w.status for w in (summaries["OLD-2"].triage.rpl, summaries["OLD-2"].triage.uterine_nk)} == {MISSING}
        assert summaries["OLD-2"].triage.kb_version == "a"
        assert (summaries["OLD-3"].triage.kb_version, summaries["OLD-3"].triage.assessed_at) == (None, None)
        assert summaries["OLD-3"].triage.rpl.word == "not assessed"
        assert [c.reference for c in store.list_cases(where=CaseFilter(rpl=MISSING))] == ["OLD-3", "OLD-2"]
        # and the store goes on from there: the next version of an old case replaces its summary
        store.add_version(3, {"v": 2}, None, NewAssessment("c", _result(WITHIN)))
        assert store.get_case(3).triage.rpl.status is WITHIN
    finally:
        store.engine.dispose()


def test_the_summary_table_is_dropped_on_downgrade_and_made_again(database_url: str) -> None:
    from alembic import command

    from decidua.adapters.store.migrate import alembic_config

    store = open_store(database_url)
    try:
        config = alembic_config()
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        assert "case_summaries" not in sa.inspect(store.engine).get_table_names()
        upgrade(store.engine)
        assert "case_summaries" in sa.inspect(store.engine).get_table_names()
    finally:
        store.engine.dispose()
