"""The application's use cases on the in-memory store, in milliseconds: the failed-login throttle, password
changes and resets, account management with the only-admin rule, case versioning, and the audit row each writes
(refusals too). The memory store is checked against the SQL store by ``tests/property/test_store_models.py``; the
HTTP tests check that the API and the pages call these use cases, not the rules again."""

from __future__ import annotations

import contextlib
import datetime as dt
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
from decidua.app.audit import AuditAction, AuditNote, Outcome, audited
from decidua.app.casefile import parse_case
from decidua.app.cases import CaseService
from decidua.app.ports import CaseNotFound, DuplicateCase, LastAdmin, LoginPolicy, NotFirstUser, Role, StaleVersion
from decidua.core.errors import CaseInvalid, InputInvalid
from decidua.knowledge.loader import KnowledgeBase

PASSWORD = "correct horse battery staple"
PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
PER_CLIENT = LoginPolicy(3, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
ALL_CLIENTS = LoginPolicy(10, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
CASE = {"case_id": "UC-1", "woman": {"age_years": 36}, "pregnancies": [{"outcome": "miscarriage"}] * 2}


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryCaseStore:
    return MemoryCaseStore(clock=clock)


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
    note = AuditNote(None)
    v1 = svc.create(CASE, by=1, note=note)
    assert (v1.version, note.case_id) == (1, v1.case_id)
    assert store.get_assessment(v1.id, kb.kb_version) is not None
    same = svc.update(v1.case_id, CASE, by=1, base_version=1, note=(unchanged := AuditNote(v1.case_id)))
    assert (same.version, unchanged.detail) == (1, "unchanged")  # nothing stored twice
    edited = CASE | {"woman": {"age_years": 37}}
    v2 = svc.update(v1.case_id, edited, by=1, base_version=1)
    assert v2.version == 2
    with pytest.raises(StaleVersion):  # an edit opened on version 1 would undo version 2
        svc.update(v1.case_id, CASE | {"woman": {"age_years": 38}}, by=1, base_version=1)
    with pytest.raises(CaseInvalid, match="cannot change"):
        svc.update(v1.case_id, CASE | {"case_id": "UC-2"}, by=1)
    with pytest.raises(DuplicateCase):
        svc.create(CASE, by=1)
    with pytest.raises(CaseNotFound):
        svc.view(99)
    assert [v.version for v in store.list_versions(v1.case_id)] == [1, 2]


def test_a_case_read_under_another_knowledge_base_keeps_the_old_assessment(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    v1 = CaseService(store, kb).create(CASE, by=1)
    newer = replace(kb, kb_version=kb.kb_version + "+clinic")
    view = CaseService(store, newer).view(v1.case_id)
    assert view.stored.kb_version == newer.kb_version
    assert [a.kb_version for _, a in store.list_assessments(v1.case_id)] == [kb.kb_version, newer.kb_version]


def test_an_imported_case_is_new_or_the_next_version_of_the_same_case_id(
    store: MemoryCaseStore, kb: KnowledgeBase
) -> None:
    svc = CaseService(store, kb)
    first, created = svc.import_case(parse_case(CASE), by=1, note=AuditNote(None))
    assert (first.version, created) == (1, True)
    changed = parse_case(CASE | {"woman": {"age_years": 40}})
    note = AuditNote(None)
    second, created = svc.import_case(changed, by=1, note=note)
    assert (second.case_id, second.version, created, note.case_id) == (first.case_id, 2, False, first.case_id)


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
