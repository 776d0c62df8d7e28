"""The application's use cases on the in-memory store, in milliseconds: the failed-login throttle, password
changes and resets, account management with the only-admin rule, case versioning, and the audit row each writes
(refusals too). The memory store is checked against the SQL store by ``tests/property/test_store_models.py``; the
HTTP tests check that the API and the pages call these use cases, not the rules again."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import replace
from typing import Any

import pytest
from argon2 import PasswordHasher

from decidua.adapters.store.memory import MemoryCaseStore
from decidua.app import users
from decidua.app.accounts import (
    LoginThrottled,
    Passwords,
    Sessions,
    change_own_password,
    log_in,
    set_up_first_admin,
)
from decidua.app.audit import AuditAction, Outcome, audited
from decidua.app.casefile import parse_case
from decidua.app.cases import CaseService, ImportRemoves
from decidua.app.labs import LabImport, LabValue
from decidua.app.ports import CaseNotFound, DuplicateCase, LastAdmin, LoginPolicy, NotFirstUser, Role, StaleVersion
from decidua.core.case import Case
from decidua.core.errors import CaseInvalid, InputError, InputInvalid, Problem
from decidua.knowledge.loader import KnowledgeBase
from unit.app.conftest import Clock

PASSWORD = "correct horse battery staple"
PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
PER_CLIENT = LoginPolicy(3, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
ALL_CLIENTS = LoginPolicy(10, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
CASE = {"case_id": "UC-1", "woman": {"age_years": 36}, "pregnancies": [{"outcome": "miscarriage"}] * 2}


@pytest.fixture
def sessions(store: MemoryCaseStore, clock: Clock) -> Sessions:
    idle, max_age = dt.timedelta(minutes=30), dt.timedelta(hours=12)
    return Sessions(store, clock, idle, max_age, PASSWORDS, PER_CLIENT, ALL_CLIENTS)


def audit(store: MemoryCaseStore) -> list[tuple[Any, ...]]:
    """The audit trail, oldest first, as (user, action, case, outcome)."""
    return [(e.user_id, e.action, e.case_id, e.outcome) for e in reversed(store.list_audit())]


# --- logging in -----------------------------------------------------------------------------------------------


def test_wrong_passwords_lock_the_address_for_that_client_and_each_attempt_is_audited(
    store: MemoryCaseStore, sessions: Sessions, clock: Clock
) -> None:
    user = store.add_user("clin@clinic.test", PASSWORDS.hash(PASSWORD), Role.CLINICIAN)
    for _ in range(3):
        assert log_in(sessions, "clin@clinic.test", "wrong password!!", "10.0.0.1") is None
    with pytest.raises(LoginThrottled) as locked:
        log_in(sessions, "Clin@Clinic.test ", PASSWORD, "10.0.0.1")  # the right password is not even looked at
    assert locked.value.until == clock.now + PER_CLIENT.lockout
    assert log_in(sessions, "clin@clinic.test", PASSWORD, "10.0.0.2") == user  # another client is not locked
    outcomes = [o for _, action, _, o in audit(store) if action == AuditAction.LOGIN]
    assert outcomes == ["failed", "failed", "failed", "locked", "ok"]
    assert {u for u, *_ in audit(store)} == {user.id}  # rows name the account, never the address typed


def test_an_unknown_address_is_counted_and_audited_without_an_account(
    store: MemoryCaseStore, sessions: Sessions
) -> None:
    assert log_in(sessions, "nobody@clinic.test", PASSWORD, None) is None
    assert log_in(sessions, "not an address", PASSWORD, None) is None
    assert audit(store) == [(None, "login", None, "failed"), (None, "login", None, "failed")]


def test_a_reset_lifts_the_lockout_everywhere_and_ends_every_session(
    store: MemoryCaseStore, sessions: Sessions
) -> None:
    admin = store.add_user("admin@clinic.test", PASSWORDS.hash(PASSWORD), Role.ADMIN)
    clin = store.add_user("clin@clinic.test", PASSWORDS.hash(PASSWORD), Role.CLINICIAN)
    token, _ = sessions.start(clin)
    for _ in range(4):
        with contextlib.suppress(LoginThrottled):
            log_in(sessions, "clin@clinic.test", "wrong password!!", "10.0.0.1")
    new = "a brand new passphrase"
    users.set_password(store, PASSWORDS, admin.id, clin.id, new, new)
    assert log_in(sessions, "clin@clinic.test", new, "10.0.0.1") is not None
    with pytest.raises(Exception, match="not logged in"):
        sessions.resume(token)
    assert (admin.id, "user.password_reset", None, "ok") in audit(store)


def test_a_password_change_keeps_this_session_and_ends_the_others(store: MemoryCaseStore, sessions: Sessions) -> None:
    clin = store.add_user("clin@clinic.test", PASSWORDS.hash(PASSWORD), Role.CLINICIAN)
    this_token, this = sessions.start(clin)
    other_token, _ = sessions.start(clin)
    with pytest.raises(InputInvalid) as wrong:
        change_own_password(sessions, this, "not the password", "x" * 12, "x" * 12, None)
    assert wrong.value.problems[0].path == "current_password"
    change_own_password(sessions, this, PASSWORD, "another long passphrase", "another long passphrase", None)
    assert sessions.resume(this_token).user.id == clin.id
    with pytest.raises(Exception, match="not logged in"):
        sessions.resume(other_token)
    assert [o for _, a, _, o in audit(store) if a == "user.password"] == ["invalid", "ok"]


def test_sessions_end_after_the_idle_timeout_and_when_the_account_is_deactivated(
    store: MemoryCaseStore, sessions: Sessions, clock: Clock
) -> None:
    admin = store.add_user("admin@clinic.test", PASSWORDS.hash(PASSWORD), Role.ADMIN)
    clin = store.add_user("clin@clinic.test", PASSWORDS.hash(PASSWORD), Role.CLINICIAN)
    token, _ = sessions.start(clin)
    clock.now += dt.timedelta(minutes=29)
    assert sessions.resume(token).user.id == clin.id
    clock.now += dt.timedelta(minutes=31)
    with pytest.raises(Exception, match="timed out"):
        sessions.resume(token)
    token, _ = sessions.start(clin)
    users.change_user(store, admin.id, clin.id, active=False)
    with pytest.raises(Exception, match="not logged in"):
        sessions.resume(token)


def test_the_first_admin_is_set_up_once(store: MemoryCaseStore, sessions: Sessions) -> None:
    _, login = set_up_first_admin(sessions, "admin@clinic.test", PASSWORD, PASSWORD)
    assert login.user.role is Role.ADMIN
    with pytest.raises(NotFirstUser):
        set_up_first_admin(sessions, "second@clinic.test", PASSWORD, PASSWORD)
    assert audit(store) == [(login.user.id, "user.add", None, "ok"), (login.user.id, "login", None, "ok")]


# --- managing accounts ----------------------------------------------------------------------------------------


def test_adding_a_user_is_audited_refusals_too(store: MemoryCaseStore) -> None:
    admin = store.add_user("admin@clinic.test", PASSWORDS.hash(PASSWORD), Role.ADMIN)
    added = users.add_user(store, PASSWORDS, admin.id, " New@Clinic.test", PASSWORD, "clinician")
    assert (added.email, added.role) == ("new@clinic.test", Role.CLINICIAN)
    with pytest.raises(InputInvalid) as bad:
        users.add_user(store, PASSWORDS, admin.id, "no-at-sign", "short", "nurse")
    assert {p.path for p in bad.value.problems} == {"email", "password", "role"}
    with pytest.raises(Exception, match="exists already"):
        users.add_user(store, PASSWORDS, admin.id, "new@clinic.test", PASSWORD, "admin")
    assert [o for _, a, _, o in audit(store) if a == "user.add"] == ["ok", "invalid", "conflict"]


def test_the_only_active_admin_can_be_neither_demoted_nor_deactivated(store: MemoryCaseStore) -> None:
    admin = store.add_user("admin@clinic.test", PASSWORDS.hash(PASSWORD), Role.ADMIN)
    with pytest.raises(LastAdmin):
        users.change_user(store, admin.id, admin.id, role="clinician")
    with pytest.raises(LastAdmin):
        users.change_user(store, admin.id, admin.id, active=False)
    second = users.add_user(store, PASSWORDS, admin.id, "second@clinic.test", PASSWORD, "admin")
    assert users.change_user(store, second.id, admin.id, role="clinician").role is Role.CLINICIAN
    with pytest.raises(InputInvalid):
        users.change_user(store, second.id, admin.id, role="superuser")
    with pytest.raises(Exception, match="no user 99"):
        users.change_user(store, second.id, 99, active=False)
    assert [(a, o) for _, a, _, o in audit(store) if a != "user.add"] == [
        ("user.role", "conflict"),
        ("user.inactive", "conflict"),
        ("user.role", "ok"),
        ("user.role", "invalid"),
        ("user.change", "not_found"),
    ]


# --- cases ----------------------------------------------------------------------------------------------------


def test_a_case_is_stored_with_its_assessment_and_edits_add_versions(store: MemoryCaseStore, kb: KnowledgeBase) -> None:
    svc = CaseService(store, kb)
    v1 = svc.create(CASE, by=1)
    number = v1.version.case_id
    assert (v1.version.version, [v.version for v in v1.versions]) == (1, [1])
    assert v1.stored == store.get_assessment(v1.version.id, kb.kb_version)
    same = svc.update(number, CASE, by=1, base_version=1)
    assert (same.view.version.version, same.changed, same.created) == (1, False, False)  # nothing stored twice
    edited = CASE | {"woman": {"age_years": 37}}
    v2 = svc.update(number, edited, by=1, base_version=1)
    assert (v2.view.version.version, v2.changed, [v.version for v in v2.view.versions]) == (2, True, [1, 2])
    with pytest.raises(StaleVersion):  # an edit opened on version 1 would undo version 2
        svc.update(number, CASE | {"woman": {"age_years": 38}}, by=1, base_version=1)
    with pytest.raises(CaseInvalid, match="cannot change"):
        svc.update(number, CASE | {"case_id": "UC-2"}, by=1)
    with pytest.raises(DuplicateCase):
        svc.create(CASE, by=1)
    with pytest.raises(CaseNotFound):
        svc.view(99, by=2)
    assert [v.version for v in store.list_versions(number)] == [1, 2]
    # Each use case wrote one audit row, refusals included; "unchanged" says the edit stored nothing.
    rows = [(e.user_id, e.action, e.case_id, e.outcome, e.detail) for e in reversed(store.list_audit())]
    assert rows == [
        (1, "case.create", number, "ok", None),
        (1, "case.update", number, "ok", "unchanged"),
        (1, "case.update", number, "ok", None),
        (1, "case.update", number, "conflict", None),
        (1, "case.update", number, "invalid", None),
        (1, "case.create", None, "conflict", None),
        (2, "case.read", 99, "not_found", None),
    ]


def test_problems_found_in_a_form_refuse_it_and_an_edit_of_a_missing_case_is_not_found_first(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    svc = CaseService(store, kb)
    problem = Problem("nk.peripheral.nk_percent", "abc", "a number from 0 to 100")
    with pytest.raises(CaseInvalid):
        svc.create(CASE, by=1, problems=[problem])
    with pytest.raises(CaseNotFound):
        svc.update(42, CASE, by=1, problems=[problem])
    assert store.count_cases() == 0
    assert audit(store) == [(1, "case.create", None, "invalid"), (1, "case.update", 42, "not_found")]


def test_a_case_read_under_another_knowledge_base_keeps_the_old_assessment(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    v1 = CaseService(store, kb).create(CASE, by=1).version
    newer = replace(kb, kb_version=kb.kb_version + "+clinic")
    view = CaseService(store, newer).view(v1.case_id, by=1, history=True)
    assert view.stored.kb_version == newer.kb_version
    assert [a.kb_version for _, a in view.history] == [kb.kb_version, newer.kb_version]
    assert [a.kb_version for _, a in store.list_assessments(v1.case_id)] == [kb.kb_version, newer.kb_version]


def test_an_imported_case_is_new_or_the_next_version_of_the_same_case_id(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    def read_bundle(bundle: Any) -> Case:  # a case file in a "Bundle" stands in for the FHIR adapter here
        return parse_case({k: v for k, v in bundle.items() if k != "resourceType"})

    svc = CaseService(store, kb, read_bundle=read_bundle)
    first = svc.import_bundle(CASE, by=1)
    assert (first.view.version.version, first.created) == (1, True)
    second = svc.import_bundle(CASE | {"woman": {"age_years": 40}}, by=1)
    assert (second.view.version.case_id, second.view.version.version, second.created) == (
        first.view.version.case_id,
        2,
        False,
    )
    again = svc.import_text(json.dumps({"resourceType": "Bundle"} | CASE), by=1)  # pasted: a Bundle is read
    assert (again.changed, again.view.version.version) == (True, 3)
    same = svc.import_text(json.dumps(CASE), by=1)  # a case file means the same as a Bundle: the next version
    assert (same.created, same.changed, same.view.version.version) == (False, False, 3)
    lacking = json.dumps({"case_id": "UC-1", "woman": {"age_years": 37}})
    with pytest.raises(ImportRemoves) as refused:  # it would drop the pregnancies: not without replace
        svc.import_text(lacking, by=1)
    assert [(r.path, r.was) for r in refused.value.removals] == [("pregnancies", "2 item(s)")]
    with pytest.raises(StaleVersion):
        svc.import_text(lacking, by=1, base_version=2, replace=True)
    replaced = svc.import_text(lacking, by=1, base_version=3, replace=True)
    assert (replaced.changed, replaced.view.version.version, replaced.view.case.pregnancies) == (True, 4, None)
    with pytest.raises(InputError, match="paste a case file"):
        svc.import_text("  ", by=1)
    n = first.view.version.case_id
    assert audit(store) == [
        (1, "case.fhir_import", n, "ok"),
        (1, "case.fhir_import", n, "ok"),
        (1, "case.import", n, "ok"),
        (1, "case.import", n, "ok"),
        (1, "case.import", n, "conflict"),
        (1, "case.import", n, "conflict"),
        (1, "case.import", n, "ok"),
        (1, "case.import", None, "invalid"),
    ]


def test_an_export_that_fails_to_render_is_audited_as_an_error_without_its_message(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    svc = CaseService(store, kb)
    n = svc.create(CASE, by=1).version.case_id
    assert svc.export(n, 2, AuditAction.CASE_REPORT_HTML, lambda v: v.case.case_id) == "UC-1"

    def broken(view: object) -> str:
        raise RuntimeError("UC-1 could not be drawn")

    with pytest.raises(RuntimeError):
        svc.export(n, 2, AuditAction.CASE_REPORT_PDF, broken)
    rows = [(e.action, e.outcome, e.detail) for e in reversed(store.list_audit())][1:]
    assert rows == [("case.report_html", "ok", None), ("case.report_pdf", "error", "RuntimeError")]


def test_the_case_list_pages_and_a_page_past_the_end_shows_the_last_one(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    svc = CaseService(store, kb)
    for i in range(5):
        svc.create(CASE | {"case_id": f"UC-{i}"}, by=1)
    page = svc.list_cases(1, None, 2, 2)
    assert (page.total, page.offset, len(page.cases)) == (5, 2, 2)
    assert (svc.list_cases(1, None, 2, 40).cases, svc.list_cases(1, None, 2, 40, clamp=True).offset) == ([], 4)
    assert svc.list_cases(1, "UC-3", 2).total == 1


# --- the audit wrapper ----------------------------------------------------------------------------------------


def test_audited_records_each_outcome_and_never_an_unexpected_errors_message(store: MemoryCaseStore) -> None:
    with audited(store, 1, AuditAction.CASE_READ, 5) as note:
        note.detail = "version 2"
    for exc in (CaseNotFound("no case 5"), StaleVersion(1, 2), InputInvalid([], "x"), KeyError("secret-NHS-123")):
        with pytest.raises(type(exc)), audited(store, 1, AuditAction.CASE_UPDATE, 5):
            raise exc
    rows = list(reversed(store.list_audit()))
    assert [(r.outcome, r.detail) for r in rows] == [
        (Outcome.OK, "version 2"),
        (Outcome.NOT_FOUND, None),
        (Outcome.CONFLICT, None),
        (Outcome.INVALID, None),
        (Outcome.ERROR, "KeyError"),  # the type only: a message may hold patient data
    ]


def test_lab_results_become_the_next_version_and_unread_segments_refuse_unless_skipped(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    nk = LabValue(1, "nk.peripheral.nk_percent", {"value": 25.0, "unit": "%"}, date="2026-10-01")
    messages = {
        "all read": LabImport((nk,)),
        "one unread": LabImport((nk,), ("OBX 2 2345-7 (LN): not read",)),
        "nothing": LabImport((), ("OBX 1 2345-7 (LN): not read",)),
    }
    svc = CaseService(store, kb, read_lab=messages.__getitem__)
    n = svc.create(CASE, by=1).version.case_id
    with pytest.raises(InputError, match="1 segment"):
        svc.import_lab(n, "one unread", by=1)
    with pytest.raises(InputError, match="no result decidua reads"):
        svc.import_lab(n, "nothing", by=1, skip_unread=True)
    saved, read = svc.import_lab(n, "one unread", by=1, skip_unread=True, base_version=1)
    assert (saved.view.version.version, read.unread) == (2, ("OBX 2 2345-7 (LN): not read",))
    assert saved.view.case.nk.peripheral is not None
    assert saved.view.case.nk.peripheral.date == dt.date(2026, 10, 1)
    with pytest.raises(StaleVersion):
        svc.import_lab(n, "all read", by=1, base_version=1)
    assert [r[1:4] for r in audit(store)][-4:] == [
        ("case.lab_import", n, "invalid"),
        ("case.lab_import", n, "invalid"),
        ("case.lab_import", n, "ok"),
        ("case.lab_import", n, "conflict"),
    ]
