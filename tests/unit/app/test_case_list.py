"""The case list's triage on the in-memory store: each case with the statuses of its latest version's newest stored
assessment (RPL, RIF, blood and uterine NK) in the words of the rules' kinds, filtered by status, never re-assessed.
The SQL store keeps the same statuses in a summary row (``tests/property/test_store_models.py`` compares the two;
``tests/integration/api/test_case_list_page.py`` runs the page on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from decidua.adapters.store.memory import MemoryCaseStore
from decidua.app.casefile import load_data, parse_case
from decidua.app.cases import CaseService
from decidua.app.ports import NOT_ASSESSED, CaseFilter, StatusWord, Triage
from decidua.app.presenters import assessment_data, triage_filter_words, triage_words
from decidua.core.findings import Status
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase

from conftest import EXAMPLES

FLAGGED, WITHIN, MISSING = Status.FLAGGED, Status.WITHIN_RANGE, Status.NOT_ASSESSED


def example(name: str) -> dict[str, Any]:
    data = load_data(EXAMPLES / name)
    assert isinstance(data, dict)
    return data


def words(triage: Triage) -> tuple[str, ...]:
    return (triage.rpl.word, triage.rif.word, triage.blood_nk.word, triage.uterine_nk.word)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("01-rpl-age36-nk-high.yaml", (FLAGGED, "met", WITHIN, "not met", FLAGGED, "above", MISSING, "not assessed")),
        (
            "06-sle-rif-uterine-nk.yaml",
            (WITHIN, "not met", FLAGGED, "met", MISSING, "not assessed", FLAGGED, "outside the range (high)"),
        ),
        (
            "07-uterine-nk-per-mm2.yaml",
            (FLAGGED, "met", MISSING, "not assessed", MISSING, "not assessed", FLAGGED, "above"),
        ),
        (
            "12-unknown-history.yaml",
            (MISSING, "not assessed", MISSING, "not assessed", FLAGGED, "above", MISSING, "not assessed"),
        ),
    ],
)
def test_the_list_reads_the_statuses_and_words_the_case_page_shows(
    name: str, expected: tuple[Any, ...], kb: KnowledgeBase
) -> None:
    result = assessment_data(assess(parse_case(example(name)), kb), kb)
    found = triage_words(result)
    assert list(found) == ["rpl", "rif", "blood_nk", "uterine_nk"]
    assert tuple(x for w in found.values() for x in (w.status, w.word)) == expected
    # the words are the findings' own (the case page's), not new ones
    labels = {f["status_label"] for f in result["findings"]}
    assert {w.word for w in found.values()} <= labels


def test_missing_or_unreadable_parts_are_not_assessed_never_normal() -> None:
    assert set(triage_words({}).values()) == {NOT_ASSESSED}
    odd = {"classification": {"rpl": {"status": "maybe"}, "rif": "met"}, "findings": [None, {"rule_id": 3}]}
    assert set(triage_words(odd).values()) == {NOT_ASSESSED}
    # a column of several rules: flagged when one is, within range when one is and none is flagged
    two = [{"rule_id": "nk.uterine.a", "status": s, "status_label": s} for s in ("not_assessed", "within_range")]
    assert triage_words({"findings": two})["uterine_nk"] == StatusWord(WITHIN, "within_range")
    two.append({"rule_id": "nk.uterine.b", "status": "flagged"})  # no word stored: the generic one
    assert triage_words({"findings": two})["uterine_nk"] == StatusWord(FLAGGED, "flagged")


def test_the_filters_speak_the_words_of_the_rules_in_force(kb: KnowledgeBase) -> None:
    filters = triage_filter_words(kb)
    assert filters["rpl"] == {FLAGGED: "met", WITHIN: "not met", MISSING: "not assessed"}
    assert filters["blood_nk"] == {FLAGGED: "above", WITHIN: "not above", MISSING: "not assessed"}
    # uterine NK sums up a reference range and a cut-off: the words every status has
    assert filters["uterine_nk"] == {FLAGGED: "flagged", WITHIN: "within range", MISSING: "not assessed"}


@pytest.fixture
def service(kb: KnowledgeBase) -> tuple[CaseService, MemoryCaseStore, list[dt.datetime]]:
    now = [dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)]
    store = MemoryCaseStore(clock=lambda: now[0])
    svc = CaseService(store, kb)
    for name in ("01-rpl-age36-nk-high.yaml", "06-sle-rif-uterine-nk.yaml", "12-unknown-history.yaml"):
        svc.create(example(name), by=1)
    return svc, store, now


def test_the_list_filters_by_status_and_pages_what_is_left(service: Any) -> None:
    svc, _, _ = service
    page = svc.list_cases(1, None, 50)
    assert [(c.reference, words(c.triage)) for c in page.cases] == [
        ("EX-12", ("not assessed", "not assessed", "above", "not assessed")),
        ("EX-06", ("not met", "met", "not assessed", "outside the range (high)")),
        ("EX-01", ("met", "not met", "above", "not assessed")),
    ]

    def refs(where: CaseFilter, search: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[str], int]:
        found = svc.list_cases(1, search, limit, offset, where=where)
        return [c.reference for c in found.cases], found.total

    assert refs(CaseFilter(rpl=FLAGGED)) == (["EX-01"], 1)
    assert refs(CaseFilter(any_nk_flagged=True)) == (["EX-12", "EX-06", "EX-01"], 3)
    assert refs(CaseFilter(any_nk_flagged=True), limit=1, offset=1) == (["EX-06"], 3)
    assert refs(CaseFilter(rpl=MISSING)) == (["EX-12"], 1)
    assert refs(CaseFilter(blood_nk=MISSING, uterine_nk=FLAGGED)) == (["EX-06"], 1)
    assert refs(CaseFilter(rif=FLAGGED), search="01") == ([], 0)
    assert refs(CaseFilter(rif=WITHIN, uterine_nk=WITHIN)) == ([], 0)


def test_the_list_shows_the_newest_assessment_of_the_latest_version(service: Any, kb: KnowledgeBase) -> None:
    svc, store, now = service
    ex01 = store.find_case("EX-01")
    assert ex01.triage.kb_version == kb.kb_version
    assert ex01.triage.assessed_at == now[0]

    # a new version: its statuses (peripheral NK now below the cut-off)
    now[0] += dt.timedelta(days=1)
    edited = example("01-rpl-age36-nk-high.yaml")
    edited["nk"]["peripheral"]["nk_percent"]["value"] = 10
    svc.update(ex01.id, edited, by=1)
    latest = store.get_case(ex01.id).triage
    assert (latest.blood_nk, latest.assessed_at) == (StatusWord(WITHIN, "not above"), now[0])
    assert svc.list_cases(1, None, 50, where=CaseFilter(blood_nk=FLAGGED)).total == 1  # EX-12 only

    # a new knowledge base: the list keeps the last stored assessment until the case is opened, which stores one
    now[0] += dt.timedelta(days=1)
    newer = CaseService(store, replace(kb, kb_version=kb.kb_version + "+clinic"))
    assert store.get_case(ex01.id).triage.kb_version == kb.kb_version
    newer.view(ex01.id, by=1)
    assert (store.get_case(ex01.id).triage.kb_version, store.get_case(ex01.id).triage.assessed_at) == (
        kb.kb_version + "+clinic",
        now[0],
    )
    # opening an earlier version stores its assessment, but the list still shows the latest version's
    now[0] += dt.timedelta(days=1)
    CaseService(store, replace(kb, kb_version="another")).view(ex01.id, by=1, version=1)
    assert store.get_case(ex01.id).triage.kb_version == kb.kb_version + "+clinic"


def test_a_case_whose_latest_version_has_no_assessment_is_not_assessed(kb: KnowledgeBase) -> None:
    store = MemoryCaseStore()
    svc = CaseService(store, kb)
    case_id = svc.create(example("01-rpl-age36-nk-high.yaml"), by=1).version.case_id
    store._assessments.clear()  # as a database of an earlier release could hold
    assert store.get_case(case_id).triage == Triage()
    assert Triage().rpl == NOT_ASSESSED
    assert svc.list_cases(1, None, 50, where=CaseFilter(rpl=MISSING)).total == 1
