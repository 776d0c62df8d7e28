"""A store in memory: every port of :mod:`decidua.app.ports`, for the application's unit tests and for trying
the library without a database. Nothing survives the process.

It keeps the SQL store's contract (ids from 1, newest-first listings, case-insensitive e-mail addresses and
searches, versioning with ``base_version``, the only-admin protection, sessions ended on deactivation) and takes
the failed-login arithmetic from :func:`decidua.app.throttle.count_attempt`. One lock makes each method a
transaction.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from decidua.app.ports import (
    AuditEntry,
    AuditRecord,
    CaseFilter,
    CaseNotFound,
    CaseRead,
    CaseSummary,
    CaseVersion,
    DuplicateCase,
    DuplicateUser,
    LastAdmin,
    LoginPolicy,
    NewAssessment,
    NotFirstUser,
    Role,
    Session,
    StaleVersion,
    StoredAssessment,
    Triage,
    User,
    UserNotFound,
)
from decidua.app.presenters import triage_words
from decidua.app.throttle import Attempts, count_attempt, forgotten
from decidua.core.findings import Status

__all__ = ["MemoryCaseStore"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MemoryCaseStore:
    """:class:`~decidua.app.ports.CaseStore` in memory."""

    def __init__(self, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._ids: dict[str, Iterator[int]] = {}
        self._cases: dict[int, tuple[str, dt.datetime, int | None]] = {}  # id -> (reference, created, by)
        self._versions: dict[int, list[CaseVersion]] = {}  # case id -> versions, oldest first
        self._assessments: list[StoredAssessment] = []
        self._users: dict[int, User] = {}
        self._sessions: dict[str, Session] = {}
        self._attempts: dict[str, Attempts] = {}
        self._audit: list[AuditEntry] = []

    def _next_id(self, table: str) -> int:
        return next(self._ids.setdefault(table, itertools.count(1)))

    # --- cases ---
    def _triage(self, case_id: int) -> Triage:
        """What the case list shows: the newest assessment of the latest version (the SQL store keeps it in a
        summary row, written with the assessment; here it is looked up, as the definition of that row)."""
        latest = self._versions[case_id][-1].id
        newest = next((a for a in reversed(self._assessments) if a.case_version_id == latest), None)
        if newest is None:
            return Triage()
        return Triage(**triage_words(newest.result), kb_version=newest.kb_version, assessed_at=newest.created_at)

    def _summary(self, case_id: int) -> CaseSummary:
        reference, created, by = self._cases[case_id]
        versions = self._versions[case_id]
        latest = versions[-1]
        return CaseSummary(case_id, reference, created, by, latest.version, latest.created_at, self._triage(case_id))

    def _store_version(
        self,
        case_id: int,
        version: int,
        data: dict[str, Any],
        by: int | None,
        a: NewAssessment,
        audit: AuditRecord | None,
    ) -> CaseVersion:
        now = self._clock()
        if audit is not None:
            self._record(audit, now, case_id)
        row = CaseVersion(
            self._next_id("version"), case_id, self._cases[case_id][0], version, copy.deepcopy(data), now, by
        )
        self._versions.setdefault(case_id, []).append(row)
        self._assessments.append(
            StoredAssessment(self._next_id("assessment"), row.id, a.kb_version, copy.deepcopy(a.result), now)
        )
        return row

    def _record(self, audit: AuditRecord, at: dt.datetime, case_id: int) -> None:
        """The row of a patient read or write that succeeded, written with it."""
        self._audit.append(
            AuditEntry(self._next_id("audit"), at, audit.user_id, audit.action, case_id, "ok", audit.detail)
        )

    def create_case(
        self,
        reference: str,
        data: dict[str, Any],
        by: int | None,
        assessment: NewAssessment,
        audit: AuditRecord | None = None,
    ) -> CaseVersion:
        with self._lock:
            if any(ref == reference for ref, _, _ in self._cases.values()):
                raise DuplicateCase(
                    f"a case with case id {reference!r} exists already: edit it, or import it as its next version"
                )
            case_id = self._next_id("case")
            self._cases[case_id] = (reference, self._clock(), by)
            return self._store_version(case_id, 1, data, by, assessment, audit)

    def add_version(
        self,
        case_id: int,
        data: dict[str, Any],
        by: int | None,
        assessment: NewAssessment,
        base_version: int | None = None,
        audit: AuditRecord | None = None,
    ) -> CaseVersion:
        with self._lock:
            if case_id not in self._cases:
                raise CaseNotFound(f"no case {case_id}")
            latest = self._versions[case_id][-1].version
            if base_version is not None and base_version != latest:
                raise StaleVersion(base_version, latest)
            return self._store_version(case_id, latest + 1, data, by, assessment, audit)

    def find_case(self, reference: str) -> CaseSummary | None:
        with self._lock:
            hit = next((i for i, (ref, _, _) in self._cases.items() if ref == reference), None)
            return None if hit is None else self._summary(hit)

    def read_case(
        self,
        case: int | str,
        version: int | None = None,
        kb_version: str | None = None,
        audit: AuditRecord | None = None,
    ) -> CaseRead | None:
        with self._lock:
            if isinstance(case, str):
                case = next((i for i, (ref, _, _) in self._cases.items() if ref == case), 0)
            versions = list(self._versions.get(case, []))
            if not versions:
                return None
            chosen = versions[-1] if version is None else next((v for v in versions if v.version == version), None)
            stored = None if chosen is None or kb_version is None else self.get_assessment(chosen.id, kb_version)
            found = chosen is not None and (kb_version is None or stored is not None)
            if audit is not None and found:
                self._record(audit, self._clock(), case)
            return CaseRead(case, chosen, stored, versions, audited=audit is not None and found)

    def get_case(self, case_id: int) -> CaseSummary:
        with self._lock:
            if case_id not in self._cases:
                raise CaseNotFound(f"no case {case_id}")
            return self._summary(case_id)

    def get_version(self, case_id: int, version: int | None = None) -> CaseVersion:
        with self._lock:
            versions = [v for v in self._versions.get(case_id, []) if version is None or v.version == version]
            if not versions:
                raise CaseNotFound(f"no case {case_id}" + (f" version {version}" if version is not None else ""))
            return versions[-1]

    def list_versions(self, case_id: int) -> list[CaseVersion]:
        with self._lock:
            if case_id not in self._versions:
                raise CaseNotFound(f"no case {case_id}")
            return list(self._versions[case_id])

    def _matching(self, search: str | None, where: CaseFilter | None = None) -> list[int]:
        wanted = (search or "").replace("\x00", "").strip().lower()
        found = [i for i, (ref, _, _) in self._cases.items() if wanted in ref.lower()]
        if where is not None and where.active():
            found = [i for i in found if self._passes(self._triage(i), where)]
        return sorted(found, reverse=True)

    @staticmethod
    def _passes(triage: Triage, where: CaseFilter) -> bool:
        if any(getattr(triage, name).status is not status for name, status in where.statuses().items()):
            return False
        nk = (triage.blood_nk.status, triage.uterine_nk.status)
        return not where.any_nk_flagged or Status.FLAGGED in nk

    def list_cases(
        self, search: str | None = None, limit: int = 200, offset: int = 0, where: CaseFilter | None = None
    ) -> list[CaseSummary]:
        with self._lock:
            return [self._summary(i) for i in self._matching(search, where)[offset : offset + limit]]

    def count_cases(self, search: str | None = None, where: CaseFilter | None = None) -> int:
        with self._lock:
            return len(self._matching(search, where))

    def add_assessment(self, case_version_id: int, assessment: NewAssessment) -> StoredAssessment:
        with self._lock:
            row = StoredAssessment(
                self._next_id("assessment"),
                case_version_id,
                assessment.kb_version,
                copy.deepcopy(assessment.result),
                self._clock(),
            )
            self._assessments.append(row)
            return row

    def get_assessment(self, case_version_id: int, kb_version: str | None = None) -> StoredAssessment | None:
        with self._lock:
            hits = [
                a
                for a in self._assessments
                if a.case_version_id == case_version_id and (kb_version is None or a.kb_version == kb_version)
            ]
            return hits[-1] if hits else None

    def list_assessments(self, case_id: int) -> list[tuple[int, StoredAssessment]]:
        with self._lock:
            version_of = {v.id: v.version for v in self._versions.get(case_id, [])}
            return [(version_of[a.case_version_id], a) for a in self._assessments if a.case_version_id in version_of]

    # --- users ---
    def add_user(self, email: str, password_hash: str, role: Role) -> User:
        email = email.strip().lower()
        with self._lock:
            if any(u.email == email for u in self._users.values()):
                raise DuplicateUser(f"a user {email} exists already")
            user = User(self._next_id("user"), email, role, True, self._clock(), password_hash)
            self._users[user.id] = user
            return user

    def add_first_admin(self, email: str, password_hash: str) -> User:
        with self._lock:
            if self._users:
                raise NotFirstUser("the first admin exists already; log in, or ask an admin for an account")
            return self.add_user(email, password_hash, Role.ADMIN)

    def has_users(self) -> bool:
        with self._lock:
            return bool(self._users)

    def get_user(self, user_id: int) -> User | None:
        with self._lock:
            return self._users.get(user_id)

    def find_user(self, email: str) -> User | None:
        email = email.strip().lower()
        with self._lock:
            return next((u for u in self._users.values() if u.email == email), None)

    def list_users(self) -> list[User]:
        with self._lock:
            return [self._users[i] for i in sorted(self._users)]

    def _user(self, user_id: int) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise UserNotFound(f"no user {user_id}")
        return user

    def _check_other_admin(self, user: User) -> None:
        if user.role is not Role.ADMIN or not user.active:
            return
        if not any(u.role is Role.ADMIN and u.active and u.id != user.id for u in self._users.values()):
            raise LastAdmin("this is the only active admin; make another user admin first")

    def set_password_hash(self, user_id: int, password_hash: str) -> User:
        with self._lock:
            user = replace(self._user(user_id), password_hash=password_hash)
            self._users[user_id] = user
            return user

    def set_active(self, user_id: int, active: bool) -> User:
        with self._lock:
            user = self._user(user_id)
            if not active:
                self._check_other_admin(user)
                self.delete_user_sessions(user_id)
            self._users[user_id] = user = replace(user, active=active)
            return user

    def set_role(self, user_id: int, role: Role) -> User:
        with self._lock:
            user = self._user(user_id)
            if role is not Role.ADMIN:
                self._check_other_admin(user)
            self._users[user_id] = user = replace(user, role=role)
            return user

    # --- login attempts ---
    def reserve_login_attempt(
        self, counters: Sequence[tuple[str, LoginPolicy]], now: dt.datetime
    ) -> dt.datetime | None:
        with self._lock:
            longest = max(p.window for _, p in counters)
            for key in [k for k, a in self._attempts.items() if forgotten(a, now, longest)]:
                del self._attempts[key]
            for key, policy in counters:
                self._attempts[key] = counted = count_attempt(self._attempts.get(key), policy, now)
                if counted.locked(now):
                    return counted.locked_until
            return None

    def login_succeeded(self, counters: Sequence[str], now: dt.datetime) -> None:
        with self._lock:
            for key in counters:
                attempts = self._attempts.get(key)
                if attempts is not None and not attempts.locked(now):
                    del self._attempts[key]

    def lift_login_lockout(self, login_name: str) -> None:
        with self._lock:
            for key in [k for k in self._attempts if k == login_name or k.startswith(f"{login_name} ")]:
                del self._attempts[key]

    # --- sessions ---
    def add_session(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.token_hash] = session

    def get_session(self, token_hash: str) -> Session | None:
        with self._lock:
            return self._sessions.get(token_hash)

    def get_session_user(self, token_hash: str) -> tuple[Session, User | None] | None:
        with self._lock:
            session = self._sessions.get(token_hash)
            return None if session is None else (session, self._users.get(session.user_id))

    def touch_session(self, token_hash: str, at: dt.datetime) -> None:
        with self._lock:
            session = self._sessions.get(token_hash)
            if session is not None:
                self._sessions[token_hash] = replace(session, last_seen=at)

    def delete_session(self, token_hash: str) -> None:
        with self._lock:
            self._sessions.pop(token_hash, None)

    def delete_user_sessions(self, user_id: int, keep: str | None = None) -> int:
        with self._lock:
            ended = [h for h, s in self._sessions.items() if s.user_id == user_id and h != keep]
            for h in ended:
                del self._sessions[h]
            return len(ended)

    # --- audit ---
    def record_audit(
        self, user_id: int | None, action: str, case_id: int | None, outcome: str, detail: str | None = None
    ) -> AuditEntry:
        with self._lock:
            entry = AuditEntry(self._next_id("audit"), self._clock(), user_id, action, case_id, outcome, detail)
            self._audit.append(entry)
            return entry

    def list_audit(self, case_id: int | None = None, limit: int = 500) -> list[AuditEntry]:
        with self._lock:
            rows = [e for e in reversed(self._audit) if case_id is None or e.case_id == case_id]
            return rows[:limit]
