"""Reading a stored case serves the assessment stored for it under the knowledge base in force: nothing is parsed
or assessed again unless the knowledge base changed (then one new assessment is stored, as before), every read
still writes its audit row, and a session is refreshed at most once per :data:`TOUCH_INTERVAL` while the idle
timeout still ends it (to that precision)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from argon2 import PasswordHasher

from decidua.adapters.store.memory import MemoryCaseStore
from decidua.app.accounts import TOUCH_INTERVAL, NotAuthenticated, Passwords, Sessions
from decidua.app.audit import AuditAction
from decidua.app.casefile import parse_case
from decidua.app.cases import CaseService
from decidua.app.ports import CaseNotFound, LoginPolicy, Role, StoredAssessment
from decidua.app.presenters import assessment_data
from decidua.knowledge.loader import KnowledgeBase
from unit.app.conftest import Clock

CASE = {"case_id": "UC-1", "woman": {"age_years": 36}, "pregnancies": [{"outcome": "miscarriage"}] * 2}
IDLE = dt.timedelta(minutes=30)
POLICY = LoginPolicy(5, dt.timedelta(minutes=15), dt.timedelta(minutes=15))


def reads(store: MemoryCaseStore) -> list[tuple[Any, ...]]:
    return [
        (e.action, e.case_id, e.outcome, e.detail) for e in reversed(store.list_audit()) if e.action != "case.create"
    ]


def test_a_read_under_the_same_knowledge_base_serves_the_stored_assessment_and_assesses_nothing(
    store: MemoryCaseStore, kb: KnowledgeBase, assessed: list[str]
) -> None:
    svc = CaseService(store, kb)
    created = svc.create(CASE, by=1)
    number = created.version.case_id
    assert assessed == [kb.kb_version]  # the create assessed it, once
    stored = store.list_assessments(number)
    views = [
        svc.view(number, by=1),
        svc.view("UC-1", by=1),
        svc.view("UC-1", by=1, version=1),
        svc.assessment("UC-1", by=1),
        svc.export("UC-1", by=1, action=AuditAction.CASE_EXPORT, render=lambda v: v),
    ]
    assert all(v.stored == created.stored for v in views)
    assert all([x.version for x in v.versions] == [1] for v in views)
    assert assessed == [kb.kb_version]  # no read assessed again
    assert store.list_assessments(number) == stored  # nor stored anything
    assert reads(store) == [  # one row per read
        ("case.read", number, "ok", None),
        ("case.read", number, "ok", None),
        ("case.read", number, "ok", "version 1"),
        ("case.assessment", number, "ok", None),
        ("case.export", number, "ok", None),
    ]


def test_a_new_knowledge_base_stores_one_new_assessment_which_later_reads_serve(
    store: MemoryCaseStore, kb: KnowledgeBase, assessed: list[str]
) -> None:
    number = CaseService(store, kb).create(CASE, by=1).version.case_id
    newer = replace(kb, kb_version=kb.kb_version + "+clinic")
    svc = CaseService(store, newer)
    first = svc.assessment("UC-1", by=1)
    assert (assessed, first.stored.kb_version) == ([kb.kb_version, newer.kb_version], newer.kb_version)
    again = svc.view("UC-1", by=1)
    assert again.stored == first.stored
    assert assessed == [kb.kb_version, newer.kb_version]  # stored once, then served
    assert [a.kb_version for _, a in store.list_assessments(number)] == [kb.kb_version, newer.kb_version]
    assert store.get_case(number).triage.kb_version == newer.kb_version  # the case list shows the new one
    assert reads(store) == [("case.assessment", number, "ok", None), ("case.read", number, "ok", None)]


def test_a_read_that_fails_after_the_store_read_it_has_one_failed_row(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    svc = CaseService(store, kb)
    number = svc.create(CASE, by=1).version.case_id

    def render(_: object) -> None:
        raise RuntimeError("the report did not render")

    with pytest.raises(RuntimeError):
        svc.export("UC-1", by=1, action=AuditAction.CASE_REPORT_PDF, render=render)
    assert reads(store) == [("case.report_pdf", number, "error", "RuntimeError")]


def test_the_case_and_the_engine_result_of_a_read_are_made_when_first_used(
    store: MemoryCaseStore, kb: KnowledgeBase, assessed: list[str]
) -> None:
    svc = CaseService(store, kb)
    svc.create(CASE, by=1)
    view = svc.view("UC-1", by=1)
    assert view.case == parse_case(CASE)
    assert assessed == [kb.kb_version]
    assert assessment_data(view.assessment, kb) == view.stored.result  # what the report and the plots use
    assert view.assessment is view.assessment
    assert assessed == [kb.kb_version, kb.kb_version]


def test_reads_of_a_missing_case_or_version_are_audited_as_not_found(store: MemoryCaseStore, kb: KnowledgeBase) -> None:
    svc = CaseService(store, kb)
    number = svc.create(CASE, by=1).version.case_id
    with pytest.raises(CaseNotFound, match="no case with case id 'NOPE'"):
        svc.view("NOPE", by=1)
    with pytest.raises(CaseNotFound, match=f"no case {number} version 5"):
        svc.view("UC-1", by=1, version=5)
    with pytest.raises(CaseNotFound, match="no case 99"):
        svc.assessment(99, by=1)
    with pytest.raises(CaseNotFound):
        svc.version("UC-1", by=1, number=2, purpose="edit form")
    assert svc.versions("UC-1", by=1) == store.list_versions(number)
    assert reads(store) == [
        ("case.read", None, "not_found", None),
        ("case.read", number, "not_found", "version 5"),
        ("case.assessment", 99, "not_found", None),
        ("case.read", number, "not_found", "edit form"),
        ("case.versions", number, "ok", None),
    ]


def test_a_stored_assessment_read_as_json_text_is_parsed_when_first_read() -> None:
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    text = StoredAssessment(1, 2, "kb", None, at, result_json='{"findings": [1, 2]}')
    data = StoredAssessment(1, 2, "kb", {"findings": [1, 2]}, at)
    assert (text.result_json, data.result_json) == ('{"findings": [1, 2]}', None)
    assert text == data
    assert text.result == {"findings": [1, 2]}
    assert text != StoredAssessment(1, 2, "kb2", {"findings": [1, 2]}, at)
    with pytest.raises(AttributeError):
        text.kb_version = "other"
    with pytest.raises(ValueError, match="needs its result"):
        StoredAssessment(1, 2, "kb", None, at)


# --- sessions --------------------------------------------------------------------------------------------------


@pytest.fixture
def sessions(store: MemoryCaseStore, clock: Clock) -> Sessions:
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return Sessions(store, clock, IDLE, dt.timedelta(hours=12), passwords, POLICY, POLICY)


def test_a_session_is_refreshed_at_most_once_per_interval_and_the_idle_timeout_still_ends_it(
    store: MemoryCaseStore, sessions: Sessions, clock: Clock
) -> None:
    user = store.add_user("clin@clinic.test", "hash", Role.CLINICIAN)
    token, login = sessions.start(user)
    started = clock.now

    def last_seen() -> dt.datetime:
        session = store.get_session(login.token_hash)
        assert session is not None
        return session.last_seen

    clock.now += TOUCH_INTERVAL / 2
    assert sessions.resume(token).user == user
    assert last_seen() == started  # not written: refreshed less than an interval ago
    clock.now = started + TOUCH_INTERVAL
    sessions.resume(token)
    assert last_seen() == clock.now
    touched = clock.now
    clock.now += TOUCH_INTERVAL / 2  # the last request, not written
    sessions.resume(token)
    clock.now = touched + IDLE  # idle counts from the stored last_seen: still in at its end
    sessions.resume(token)
    assert last_seen() == clock.now
    clock.now += IDLE + dt.timedelta(seconds=1)
    with pytest.raises(NotAuthenticated, match="timed out"):
        sessions.resume(token)
    assert store.get_session(login.token_hash) is None


def test_a_session_ends_no_earlier_than_the_idle_timeout_less_one_interval_after_the_last_request(
    store: MemoryCaseStore, sessions: Sessions, clock: Clock
) -> None:
    user = store.add_user("clin@clinic.test", "hash", Role.CLINICIAN)
    token, _ = sessions.start(user)
    started = clock.now
    clock.now += TOUCH_INTERVAL - dt.timedelta(seconds=1)  # the last request, not written
    sessions.resume(token)
    last_request = clock.now
    clock.now = started + IDLE + dt.timedelta(seconds=1)
    assert clock.now - last_request > IDLE - TOUCH_INTERVAL
    with pytest.raises(NotAuthenticated, match="timed out"):
        sessions.resume(token)


def test_a_session_whose_account_is_gone_ends_at_its_next_request(store: MemoryCaseStore, sessions: Sessions) -> None:
    user = store.add_user("clin@clinic.test", "hash", Role.CLINICIAN)
    token, login = sessions.start(user)
    session = store.get_session(login.token_hash)
    assert session is not None
    store.add_session(replace(session, user_id=user.id + 1))  # the same token, for a user that does not exist
    with pytest.raises(NotAuthenticated, match="not active"):
        sessions.resume(token)
    assert store.get_session(login.token_hash) is None
