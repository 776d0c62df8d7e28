"""Reading a case through the API on SQLite and PostgreSQL: the stored assessment is served as stored (no
re-assessment under the knowledge base it was made with; one new one stored when the knowledge base changed), the
answers written as JSON here are exactly their documented response models' JSON, and every read keeps its audit
row, login and CSRF check."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

import decidua.app.cases as cases_module
from decidua.app.casefile import load_data
from decidua.entrypoints.http import Settings, create_app
from decidua.entrypoints.http.api import cases as cases_api
from decidua.entrypoints.http.api.public import assessment_public, case_public, saved_public, summary_public
from decidua.entrypoints.http.api.schemas import AssessmentPublic, CasePublic, CaseSavedPublic, CaseSummaryPublic
from decidua.knowledge.loader import KnowledgeBase

from conftest import EXAMPLES

Web = Any  # the ``web`` fixture of this folder's conftest
PASSWORD = "correct horse battery staple"


def _create(web: Web, csrf: str, name: str = "01-rpl-age36-nk-high.yaml") -> dict[str, Any]:
    case = json.loads(json.dumps(load_data(EXAMPLES / name), default=str))
    r = web.client.post("/api/cases", json={"case": case}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


def _audit(web: Web) -> list[tuple[Any, ...]]:
    return [(e.action, e.case_id, e.outcome) for e in web.store.list_audit(limit=100_000)]


def test_a_read_serves_the_stored_assessment_without_assessing_and_writes_its_audit_row(
    web: Web, kb: KnowledgeBase, assessed: list[str]
) -> None:
    csrf = web.login()
    created = _create(web, csrf)
    reference, number = created["case"]["case_id"], created["case"]["number"]
    assert assessed == [kb.kb_version]
    stored = web.store.list_assessments(number)
    for path, action in [
        (f"/api/cases/{reference}", "case.read"),
        (f"/api/cases/{reference}/assessment", "case.assessment"),
        (f"/api/cases/{reference}/assessment?version=1", "case.assessment"),
        (f"/api/cases/{reference}", "case.read"),
    ]:
        before = len(_audit(web))
        r = web.client.get(path)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert _audit(web)[0] == (action, number, "ok")
        assert len(_audit(web)) == before + 1
    assert assessed == [kb.kb_version]  # no read assessed the case again
    assert web.store.list_assessments(number) == stored  # nor stored another assessment
    result = web.client.get(f"/api/cases/{reference}").json()["assessment"]["result"]
    assert result == created["case"]["assessment"]["result"] == stored[0][1].result


def test_a_new_knowledge_base_stores_one_new_assessment_then_serves_it(
    web: Web, kb: KnowledgeBase, assessed: list[str]
) -> None:
    created = _create(web, web.login())
    reference, number = created["case"]["case_id"], created["case"]["number"]
    newer = replace(kb, kb_version=kb.kb_version + "+clinic")
    app = create_app(
        Settings(database_url="sqlite://"), web.store, newer, passwords=web.client.app.state.context.sessions.passwords
    )
    with TestClient(app, base_url="http://testserver") as client:
        assert client.post("/api/session", json={"email": "clin@clinic.test", "password": PASSWORD}).status_code == 200
        first = client.get(f"/api/cases/{reference}/assessment")
        assert (first.status_code, first.json()["kb_version"]) == (200, newer.kb_version)
        assert assessed == [kb.kb_version, newer.kb_version]
        again = client.get(f"/api/cases/{reference}")
        assert again.json()["assessment"] == first.json()
        assert assessed == [kb.kb_version, newer.kb_version]  # stored once, then served
        history = client.get(f"/api/cases/{reference}/assessments").json()
        assert [(a["version"], a["kb_version"]) for a in history] == [(1, kb.kb_version), (1, newer.kb_version)]
        listed = client.get("/api/cases").json()
        assert [c["triage"]["kb_version"] for c in listed] == [newer.kb_version]
    assert [a.kb_version for _, a in web.store.list_assessments(number)] == [kb.kb_version, newer.kb_version]


def test_the_answers_are_their_response_models_json(web: Web) -> None:
    """The routes that write their JSON themselves (the stored result put in as stored) answer exactly what the
    documented response models give for the same view."""
    csrf = web.login()
    for name in ("01-rpl-age36-nk-high.yaml", "09-egg-donation-donor-ranking.yaml", "12-unknown-history.yaml"):
        created = web.client.post(
            "/api/cases",
            json={"case": json.loads(json.dumps(load_data(EXAMPLES / name), default=str))},
            headers={"X-CSRF-Token": csrf},
        )
        reference = created.json()["case"]["case_id"]
        view = web.client.app.state.context.service.view(reference, None)
        CaseSavedPublic.model_validate_json(created.content)
        assert created.json() == json.loads(saved_public(cases_module.Saved(view, created=True)).model_dump_json())
        got = web.client.get(f"/api/cases/{reference}")
        CasePublic.model_validate_json(got.content)
        assert got.json() == json.loads(case_public(view).model_dump_json())
        assert list(got.json()) == list(CasePublic.model_fields)
        one = web.client.get(f"/api/cases/{reference}/assessment")
        AssessmentPublic.model_validate_json(one.content)
        expected = assessment_public(reference, view.version.version, view.stored)
        assert one.json() == json.loads(expected.model_dump_json())
        put = web.client.put(
            f"/api/cases/{reference}", json={"case": view.version.data}, headers={"X-CSRF-Token": csrf}
        )
        assert (put.status_code, put.json()["changed"]) == (200, False)
        assert put.json()["case"] == got.json()
    page = web.client.get("/api/cases")
    expected_page = TypeAdapter(list[CaseSummaryPublic]).dump_json([summary_public(s) for s in web.store.list_cases()])
    assert page.content == expected_page  # the same bytes as the models'
    assert page.headers["x-total-count"] == "3"


def test_an_answer_whose_case_holds_the_stand_in_is_still_right(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    created = _create(web, web.login())
    reference = created["case"]["case_id"]
    view = web.client.app.state.context.service.view(reference, None)
    monkeypatch.setattr(cases_api, "_STAND_IN_JSON", json.dumps(reference).encode())  # appears twice in the answer
    r = cases_api.answer(view, case_public)
    assert json.loads(r.body) == json.loads(case_public(view).model_dump_json())


def test_reads_keep_their_guards(web: Web) -> None:
    csrf = web.login()
    reference = _create(web, csrf)["case"]["case_id"]
    assert web.client.head(f"/api/cases/{reference}").status_code == 200
    r = web.client.post("/api/cases", json={"case": {"case_id": "X-2"}})  # no CSRF token
    assert r.status_code == 403
    web.client.cookies.clear()
    r = web.client.get(f"/api/cases/{reference}")
    assert r.status_code == 401
    assert _audit(web)[0] == ("case.read", created_number(web, reference), "unauthenticated")


def created_number(web: Web, reference: str) -> int:
    found = web.store.find_case(reference)
    assert found is not None
    return found.id
