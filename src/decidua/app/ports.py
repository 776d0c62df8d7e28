"""The ports of the application: what it stores, as plain records, and the protocols a store implements.

The protocols are split by concern (cases, users, sessions, the failed-login throttle, the audit trail); a store
implements all of them (:class:`CaseStore`). The SQL store (``decidua.adapters.store.sql``) is the one in use.
Cases are versioned and never overwritten: an edit adds a version. Each stored assessment names the case
version and the ``kb_version`` it used. Every read and write of a patient record is audited by the use case
(:mod:`decidua.app.audit`), failures included.

Store errors, drawn once::

    DeciduaError
    + StoreError
      - NotFound (LookupError)
        - CaseNotFound                 no case with that id (or version)
        - UserNotFound                 no user with that id
      - DuplicateCase                  a case with that reference (pseudonymous case id) exists already
      - DuplicateUser                  a user with that e-mail address exists already
      - NotFirstUser                   the first-admin setup was asked for, but users exist already
      - StaleVersion                   an edit started from a version that is no longer the latest
      - LastAdmin                      deactivating or demoting the only active admin (no one could manage users)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from decidua.core.errors import DeciduaError
from decidua.core.findings import Status


class Role(StrEnum):
    """What a user may do: clinicians work with cases; admins also manage users and read the audit trail."""

    CLINICIAN = "clinician"
    ADMIN = "admin"


class StoreError(DeciduaError):
    """A store operation that cannot be done."""

    audit_outcome = "conflict"  # what the audit trail records when a use case fails with it


class NotFound(StoreError, LookupError):
    """Nothing with the id asked for."""

    audit_outcome = "not_found"


class CaseNotFound(NotFound):
    """No case with the id (or version) asked for."""


class UserNotFound(NotFound):
    """No user with the id asked for."""


class DuplicateCase(StoreError):
    """A case with the same reference exists already."""


class DuplicateUser(StoreError):
    """A user with the same e-mail address exists already."""


class NotFirstUser(StoreError):
    """The first-admin setup was asked for, but the database has users already."""


class LastAdmin(StoreError):
    """Deactivating or demoting the only active admin would leave no one able to manage the accounts."""


class StaleVersion(StoreError):
    """An edit based on a version that another edit has superseded: saving it would silently undo that edit."""

    def __init__(self, base: int, latest: int) -> None:
        self.base, self.latest = base, latest
        super().__init__(
            f"the case was changed since version {base} was opened (it is now at version {latest}); "
            "nothing was saved: reload it and make the change again"
        )


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    role: Role
    active: bool
    created_at: dt.datetime
    password_hash: str


@dataclass(frozen=True, slots=True)
class StatusWord:
    """One status of an assessment as the case list shows it: the status and the clinician's word for it (the
    rule kind's: met / not met, above / not above, ..., and always "not assessed" when an input is missing)."""

    status: Status
    word: str


NOT_ASSESSED = StatusWord(Status.NOT_ASSESSED, "not assessed")


@dataclass(frozen=True, slots=True)
class Triage:
    """What the case list shows of a case's latest version: the statuses of its newest stored assessment (RPL,
    RIF, blood and uterine NK) and when and under which knowledge base it was made. Stored with the assessment, so
    that the list never re-assesses; a case whose latest version has no assessment shows every status as not
    assessed (``kb_version`` and ``assessed_at`` ``None``)."""

    rpl: StatusWord = NOT_ASSESSED
    rif: StatusWord = NOT_ASSESSED
    blood_nk: StatusWord = NOT_ASSESSED
    uterine_nk: StatusWord = NOT_ASSESSED
    kb_version: str | None = None
    assessed_at: dt.datetime | None = None


TRIAGE_COLUMNS = ("rpl", "rif", "blood_nk", "uterine_nk")
"""The statuses of :class:`Triage`, in the order the list shows them."""


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """Which cases the list shows, by the statuses of their latest version's newest assessment: each given status
    must match (``None``: any), and with ``any_nk_flagged`` the blood or the uterine NK status is flagged."""

    rpl: Status | None = None
    rif: Status | None = None
    blood_nk: Status | None = None
    uterine_nk: Status | None = None
    any_nk_flagged: bool = False

    def statuses(self) -> dict[str, Status]:
        """The statuses asked for, by :data:`TRIAGE_COLUMNS` name."""
        wanted = {name: getattr(self, name) for name in TRIAGE_COLUMNS}
        return {name: status for name, status in wanted.items() if status is not None}

    def active(self) -> bool:
        return self.any_nk_flagged or bool(self.statuses())


@dataclass(frozen=True, slots=True)
class CaseSummary:
    id: int
    reference: str  # the case file's pseudonymous case_id
    created_at: dt.datetime
    created_by: int | None
    latest_version: int
    updated_at: dt.datetime
    triage: Triage = Triage()  # the latest version's newest assessment, for the case list


@dataclass(frozen=True, slots=True)
class CaseVersion:
    id: int
    case_id: int
    reference: str
    version: int
    data: dict[str, Any]  # the case as ``casefile.case_to_data`` writes it
    created_at: dt.datetime
    created_by: int | None


class StoredAssessment:
    """A stored assessment: the case version and the ``kb_version`` it used, and the ``result`` (the assessment as
    :func:`decidua.app.presenters.assessment_data` writes it).

    A store may hand the result over as the JSON text it holds (``result_json``): it is then parsed only when
    :attr:`result` is first read, and an output that only passes it on (the API's answers) sends the text as it is.
    Read-only; equal to another with the same fields and result.
    """

    __slots__ = ("_json", "_result", "case_version_id", "created_at", "id", "kb_version")
    id: int
    case_version_id: int
    kb_version: str
    created_at: dt.datetime
    _result: dict[str, Any] | None
    _json: str | None

    def __init__(
        self,
        id: int,
        case_version_id: int,
        kb_version: str,
        result: dict[str, Any] | None,
        created_at: dt.datetime,
        *,
        result_json: str | None = None,
    ) -> None:
        if result is None and result_json is None:
            raise ValueError("a stored assessment needs its result, as data or as JSON text")
        fields = {"id": id, "case_version_id": case_version_id, "kb_version": kb_version, "created_at": created_at}
        for name, value in {**fields, "_result": result, "_json": result_json}.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a stored assessment is read-only ({name})")

    @property
    def result(self) -> dict[str, Any]:
        if self._result is None:
            assert self._json is not None
            object.__setattr__(self, "_result", json.loads(self._json))
        assert self._result is not None
        return self._result

    @property
    def result_json(self) -> str | None:
        """The result as the JSON text the store holds, when the store read it as text (else ``None``)."""
        return self._json

    def _key(self) -> tuple[Any, ...]:
        return (self.id, self.case_version_id, self.kb_version, self.created_at, self.result)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredAssessment) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # unhashable, as the dataclass it replaces (its result is a dict)

    def __repr__(self) -> str:
        return f"StoredAssessment(id={self.id}, case_version_id={self.case_version_id}, kb_version={self.kb_version!r})"


@dataclass(frozen=True, slots=True)
class CaseRead:
    """One case as a read shows it, read in one transaction: its number, the version asked for (``None``: the case
    has no such version), the newest assessment stored for that version under the knowledge base asked for
    (``None``: none, or none asked for), every version of the case, oldest first, and whether the read's audit row
    was written with it (``audited``)."""

    case_id: int
    version: CaseVersion | None
    assessment: StoredAssessment | None
    versions: list[CaseVersion]
    audited: bool = False


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """The audit row of a patient write, handed to the store to be written in the write's own transaction (with
    the case's number and outcome ``ok``): a case is never stored without it, nor it without the case."""

    user_id: int | None
    action: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class NewAssessment:
    """An assessment to store together with the case version it was computed from."""

    kb_version: str
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: dt.datetime
    user_id: int | None
    action: str  # e.g. "case.read", "case.update"
    case_id: int | None
    outcome: str  # "ok", "denied", "not_found", "invalid", "unauthenticated", "conflict", "error"
    detail: str | None  # never patient data


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How failed logins are throttled: more than ``max_failures`` attempts without a success, none more than
    ``window`` after the one before, lock the login name for ``lockout``."""

    max_failures: int
    window: dt.timedelta
    lockout: dt.timedelta


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str  # SHA-256 of the cookie value; the value itself is never stored
    user_id: int
    csrf_token: str
    created_at: dt.datetime
    last_seen: dt.datetime


class CaseRepository(Protocol):
    """Cases with their versions and assessments. Each method is one transaction."""

    def create_case(
        self,
        reference: str,
        data: dict[str, Any],
        by: int | None,
        assessment: NewAssessment,
        audit: AuditRecord | None = None,
    ) -> CaseVersion:
        """Version 1 of a new case with its assessment and (``audit``) its audit row, in one transaction."""
        ...

    def add_version(
        self,
        case_id: int,
        data: dict[str, Any],
        by: int | None,
        assessment: NewAssessment,
        base_version: int | None = None,
        audit: AuditRecord | None = None,
    ) -> CaseVersion:
        """The next version with its assessment and (``audit``) its audit row, in one transaction; with
        ``base_version``, only if that is still the latest (else :class:`StaleVersion`)."""
        ...

    def find_case(self, reference: str) -> CaseSummary | None: ...

    def read_case(
        self,
        case: int | str,
        version: int | None = None,
        kb_version: str | None = None,
        audit: AuditRecord | None = None,
    ) -> CaseRead | None:
        """A case named by its number (``int``) or its reference (``str``) as a read shows it (:class:`CaseRead`),
        in one transaction: ``version`` (the latest by default) with its newest assessment under ``kb_version`` (none
        looked for when ``None``) and the list of versions. ``None`` when no case has that number or reference.

        With ``audit``, the read's audit row (the case's number, outcome ``ok``) is written in the same transaction
        if the read found all it asked for (the version, and its assessment under ``kb_version`` when given); the
        answer's ``audited`` says whether it was."""
        ...

    def get_case(self, case_id: int) -> CaseSummary: ...

    def get_version(self, case_id: int, version: int | None = None) -> CaseVersion: ...

    def list_versions(self, case_id: int) -> list[CaseVersion]: ...

    def list_cases(
        self, search: str | None = None, limit: int = 200, offset: int = 0, where: CaseFilter | None = None
    ) -> list[CaseSummary]:
        """Cases, newest first; ``search`` is a case-insensitive part of the reference, ``where`` the statuses
        of their latest assessment (filtered by the store, from the stored :class:`Triage`)."""
        ...

    def count_cases(self, search: str | None = None, where: CaseFilter | None = None) -> int: ...

    def add_assessment(self, case_version_id: int, assessment: NewAssessment) -> StoredAssessment:
        """Another assessment of a stored version (e.g. under a new knowledge base); it becomes the case's
        :class:`Triage` when the version is the case's latest."""
        ...

    def get_assessment(self, case_version_id: int, kb_version: str | None = None) -> StoredAssessment | None: ...

    def list_assessments(self, case_id: int) -> list[tuple[int, StoredAssessment]]: ...


class UserRepository(Protocol):
    """The accounts. Each method is one transaction."""

    def add_user(self, email: str, password_hash: str, role: Role) -> User: ...

    def add_first_admin(self, email: str, password_hash: str) -> User:
        """An admin, only while there are no users at all (the first start's setup page)."""
        ...

    def has_users(self) -> bool: ...

    def get_user(self, user_id: int) -> User | None: ...

    def find_user(self, email: str) -> User | None: ...

    def list_users(self) -> list[User]: ...

    def set_password_hash(self, user_id: int, password_hash: str) -> User: ...

    def set_active(self, user_id: int, active: bool) -> User:
        """Activate or deactivate a user; deactivating ends their sessions, and refuses the only active admin
        (:class:`LastAdmin`)."""
        ...

    def set_role(self, user_id: int, role: Role) -> User:
        """Change a user's role; demoting the only active admin raises :class:`LastAdmin`."""
        ...


class LoginThrottle(Protocol):
    """Login attempts, counted per login name (whether or not a user has it)."""

    def reserve_login_attempt(
        self, counters: Sequence[tuple[str, LoginPolicy]], now: dt.datetime
    ) -> dt.datetime | None:
        """Count one attempt on each counter *before* its password is checked, in one transaction.

        Returns the end of the lockout when a counter is locked (then the password must not be checked), else
        ``None``. A counter locks when its count exceeds ``max_failures``; counts are forgotten once ``window``
        passes without an attempt, and after a lockout ends.
        """
        ...

    def login_succeeded(self, counters: Sequence[str], now: dt.datetime) -> None:
        """Forget the counts of these counters after a right password (a lockout set meanwhile stays)."""
        ...

    def lift_login_lockout(self, login_name: str) -> None:
        """Forget every count and lockout of ``login_name``, from every client (``"<login name> <client>"``)."""
        ...


class SessionRepository(Protocol):
    """Server-side sessions (the token's hash, never the token)."""

    def add_session(self, session: Session) -> None: ...

    def get_session(self, token_hash: str) -> Session | None: ...

    def get_session_user(self, token_hash: str) -> tuple[Session, User | None] | None:
        """The session with its user (``None``: no such user), in one transaction; ``None`` when there is no such
        session."""
        ...

    def touch_session(self, token_hash: str, at: dt.datetime) -> None: ...

    def delete_session(self, token_hash: str) -> None: ...

    def delete_user_sessions(self, user_id: int, keep: str | None = None) -> int:
        """End every session of a user but the one whose token hash is ``keep``; returns how many ended."""
        ...


class AuditLog(Protocol):
    """The audit trail: who did what to which case, and how it ended; never patient data."""

    def record_audit(
        self, user_id: int | None, action: str, case_id: int | None, outcome: str, detail: str | None = None
    ) -> AuditEntry: ...

    def list_audit(self, case_id: int | None = None, limit: int = 500) -> list[AuditEntry]: ...


class AccountStore(UserRepository, LoginThrottle, SessionRepository, AuditLog, Protocol):
    """What the account use cases need: users, the throttle, sessions and the audit trail."""


class CaseStore(CaseRepository, AccountStore, Protocol):
    """Everything the web application stores; the SQL store implements it all, each method one transaction."""
