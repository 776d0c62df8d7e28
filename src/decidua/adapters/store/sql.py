"""The SQL store (SQLite or PostgreSQL through SQLAlchemy 2); every method runs in one transaction."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

import pydantic_core
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from decidua.adapters.store.models import (
    AssessmentRow,
    AuditRow,
    CaseRow,
    CaseSummaryRow,
    CaseVersionRow,
    LoginThrottleRow,
    SessionRow,
    UserRow,
    UtcDateTime,
)
from decidua.app.ports import (
    TRIAGE_COLUMNS,
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
    StatusWord,
    StoredAssessment,
    StoreError,
    Triage,
    User,
    UserNotFound,
)
from decidua.app.presenters import triage_words
from decidua.core.findings import Status
from decidua.core.validation import MAX_CASE_ID


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def _json_text(value: Any) -> str:
    """A JSON column's text: compact JSON written by pydantic-core (a stored assessment is about 100 KB: several
    times faster than ``json.dumps``), NaN and infinity written as ``json.dumps`` writes them."""
    return pydantic_core.to_json(value, inf_nan_mode="constants").decode()


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets foreign keys switched on (they are off by default) and write-ahead
    logging, so that readers do not hold up writers (and the reverse) when several requests come at once; a
    writer waits up to 30 s for another to finish."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_json_text)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # kept by the file; "memory" for an in-memory database
            cursor.close()
            # SQLite's own lower() folds ASCII only: a search for "ü" would miss "Ü-1"
            dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

        return engine
    return create_engine(url, json_serializer=_json_text)


_VERSION_COLUMNS = (
    CaseVersionRow.id,
    CaseVersionRow.case_id,
    CaseRow.reference,
    CaseVersionRow.version,
    CaseVersionRow.data,
    CaseVersionRow.created_at,
    CaseVersionRow.created_by,
)
"""The fields of :class:`CaseVersion`, in its order."""
_SUMMARY_COLUMNS = (
    CaseRow.id,
    CaseRow.reference,
    CaseRow.created_at,
    CaseRow.created_by,
    CaseSummaryRow.latest_version,
    CaseSummaryRow.updated_at,
    CaseSummaryRow.kb_version,
    CaseSummaryRow.assessed_at,
    *(getattr(CaseSummaryRow, f"{name}{end}") for name in TRIAGE_COLUMNS for end in ("", "_word")),
)
"""A case and its summary row, as :class:`CaseSummary` reads them."""
_ASSESSMENT_COLUMNS = (
    AssessmentRow.id,
    AssessmentRow.case_version_id,
    AssessmentRow.kb_version,
    sql_cast(AssessmentRow.result, Text),
    AssessmentRow.created_at,
)
"""The fields of :class:`StoredAssessment`, the result as the JSON text stored (parsed only if read)."""
_SESSION_COLUMNS = (
    SessionRow.token_hash,
    SessionRow.user_id,
    SessionRow.csrf_token,
    SessionRow.created_at,
    SessionRow.last_seen,
)
"""The fields of :class:`Session`, in its order."""
_USER_COLUMNS = (UserRow.id, UserRow.email, UserRow.role, UserRow.active, UserRow.created_at, UserRow.password_hash)
"""The fields of :class:`User`, in its order."""


# The statements every request runs (its session, the case it reads, its audit row): Core, not the ORM (no unit of
# work or identity map for rows read once), and built once, so that SQLAlchemy neither builds them again nor
# matches their columns to its cached compilation on each request. An assessment's result is read as the JSON
# text stored: it is parsed only if someone reads it (the API's answers pass it on as it is).
_VERSIONS = (
    select(*_VERSION_COLUMNS).join(CaseRow, CaseRow.id == CaseVersionRow.case_id).order_by(CaseVersionRow.version)
)
_VERSIONS_BY_NUMBER = _VERSIONS.where(CaseRow.id == bindparam("case"))
_VERSIONS_BY_REFERENCE = _VERSIONS.where(CaseRow.reference == bindparam("case"))
_LATEST_OF_CASE = (
    select(*_VERSION_COLUMNS)
    .join(CaseRow, CaseRow.id == CaseVersionRow.case_id)
    .where(CaseVersionRow.case_id == bindparam("case"))
    .order_by(CaseVersionRow.version.desc())
    .limit(1)
)
_VERSION_OF_CASE = _LATEST_OF_CASE.where(CaseVersionRow.version == bindparam("version"))
_NEWEST_ASSESSMENT = (
    select(*_ASSESSMENT_COLUMNS)
    .where(AssessmentRow.case_version_id == bindparam("version_id"))
    .order_by(AssessmentRow.id.desc())
    .limit(1)
)
_ASSESSMENT_UNDER = _NEWEST_ASSESSMENT.where(AssessmentRow.kb_version == bindparam("kb_version"))
_SESSION_USER = (
    select(*_SESSION_COLUMNS, *_USER_COLUMNS)
    .outerjoin(UserRow, UserRow.id == SessionRow.user_id)
    .where(SessionRow.token_hash == bindparam("token_hash"))
)
_AUDIT_INSERT = insert(AuditRow).returning(AuditRow.id)
_CASE_NUMBER = select(CaseRow.id).where(CaseRow.reference == bindparam("reference"))
_LATEST_VERSION = select(
    CaseRow.reference,
    select(func.max(CaseVersionRow.version)).where(CaseVersionRow.case_id == CaseRow.id).scalar_subquery(),
).where(CaseRow.id == bindparam("case_id"))
_INSERT_CASE = insert(CaseRow).returning(CaseRow.id)
_INSERT_VERSION = insert(CaseVersionRow).returning(CaseVersionRow.id)
_INSERT_ASSESSMENT = insert(AssessmentRow)
_SUMMARY_TABLE = cast(Table, CaseSummaryRow.__table__)
_UPDATE_SUMMARY = update(_SUMMARY_TABLE).where(_SUMMARY_TABLE.c.case_id == bindparam("summary_of"))
_INSERT_SUMMARY = insert(_SUMMARY_TABLE)


def _audit_values(audit: AuditRecord, at: dt.datetime, case_id: int) -> dict[str, Any]:
    """The row of a patient read or write that succeeded, written with it."""
    who, action, detail = audit.user_id, audit.action, audit.detail
    return {"at": at, "user_id": who, "action": action, "case_id": case_id, "outcome": "ok", "detail": detail}


def _version_of(r: tuple[Any, ...]) -> CaseVersion:
    """A version from the :data:`_VERSION_COLUMNS` of a row."""
    return CaseVersion(r[0], r[1], r[2], r[3], dict(r[4]), r[5], r[6])


def _assessment_of(r: tuple[Any, ...]) -> StoredAssessment:
    """An assessment from the :data:`_ASSESSMENT_COLUMNS` of a row."""
    return StoredAssessment(r[0], r[1], r[2], None, r[4], result_json=r[3])


def _user(row: UserRow) -> User:
    return User(row.id, row.email, Role(row.role), row.active, row.created_at, row.password_hash)


def _assessment(row: AssessmentRow) -> StoredAssessment:
    return StoredAssessment(row.id, row.case_version_id, row.kb_version, dict(row.result), row.created_at)


def _audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(row.id, row.at, row.user_id, row.action, row.case_id, row.outcome, row.detail)


def _session(row: SessionRow) -> Session:
    return Session(row.token_hash, row.user_id, row.csrf_token, row.created_at, row.last_seen)


@functools.lru_cache(maxsize=1024)  # a few words per status and rule kind
def _status_word(status: str, word: str) -> StatusWord:
    return StatusWord(Status(status), word)


_TRIAGE_AT = tuple(zip(TRIAGE_COLUMNS, range(8, 8 + 2 * len(TRIAGE_COLUMNS), 2), strict=True))
"""Where each status of :data:`_SUMMARY_COLUMNS` is (its word follows it)."""


def _summary_of(r: tuple[Any, ...]) -> CaseSummary:
    """A case from a row of :data:`_SUMMARY_COLUMNS`: its latest version and the statuses of its newest
    assessment."""
    words = {name: _status_word(r[i], r[i + 1]) for name, i in _TRIAGE_AT}
    return CaseSummary(r[0], r[1], r[2], r[3], r[4], r[5], Triage(**words, kb_version=r[6], assessed_at=r[7]))


def _triage_values(assessment: NewAssessment, at: dt.datetime) -> dict[str, Any]:
    """The summary columns of an assessment just stored (the case list's statuses, words and date)."""
    values: dict[str, Any] = {"kb_version": assessment.kb_version, "assessed_at": at}
    for name, word in triage_words(assessment.result).items():
        values[name], values[f"{name}_word"] = word.status.value, word.word
    return values


def _filtered(where: CaseFilter | None) -> ColumnElement[bool]:
    """The case list's status filter on the summary rows (in the database)."""
    if where is None:
        return true()
    conditions = [getattr(CaseSummaryRow, name) == status.value for name, status in where.statuses().items()]
    if where.any_nk_flagged:
        flagged = Status.FLAGGED.value
        conditions.append(or_(CaseSummaryRow.blood_nk == flagged, CaseSummaryRow.uterine_nk == flagged))
    return and_(true(), *conditions)


class SqlCaseStore:
    """:class:`~decidua.app.ports.CaseStore` on a SQLAlchemy engine (schema made by the migrations)."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock

    # --- cases ---
    @staticmethod
    def _summaries() -> Select[Any]:
        """Cases with their summary rows (latest version, the case list's statuses): one row each, no grouping;
        columns, not ORM objects (a page of the list reads a hundred)."""
        return select(*_SUMMARY_COLUMNS).join(CaseSummaryRow, CaseSummaryRow.case_id == CaseRow.id)

    def _store_version(
        self,
        conn: Connection,
        case_id: int,
        reference: str,
        version: int,
        data: dict[str, Any],
        by: int | None,
        a: NewAssessment,
        audit: AuditRecord | None,
    ) -> CaseVersion:
        """The version and its assessment, the case's summary row made to show them and the write's audit row (same
        transaction; Core statements: a write stores each row once, with no use for the ORM's unit of work)."""
        now = self._clock()
        row = {"case_id": case_id, "version": version, "data": data, "created_at": now, "created_by": by}
        version_id = conn.execute(_INSERT_VERSION, row).scalar_one()
        assessment = {"case_version_id": version_id, "kb_version": a.kb_version, "result": a.result, "created_at": now}
        conn.execute(_INSERT_ASSESSMENT, assessment)
        if audit is not None:
            conn.execute(_AUDIT_INSERT, _audit_values(audit, now, case_id))
        values = {"version_id": version_id, "latest_version": version, "updated_at": now, **_triage_values(a, now)}
        updated = conn.execute(_UPDATE_SUMMARY, {**values, "summary_of": case_id})
        if not (isinstance(updated, CursorResult) and updated.rowcount):
            conn.execute(_INSERT_SUMMARY, {**values, "case_id": case_id})
        return CaseVersion(version_id, case_id, reference, version, dict(data), now, by)

    def create_case(
        self,
        reference: str,
        data: dict[str, Any],
        by: int | None,
        assessment: NewAssessment,
        audit: AuditRecord | None = None,
    ) -> CaseVersion:
        try:
            with self.engine.begin() as conn:
                if conn.execute(_CASE_NUMBER, {"reference": reference}).first() is not None:
                    raise DuplicateCase(
                        f"a case with case id {reference!r} exists already: edit it, or import it as its next version"
                    )
                case = {"reference": reference, "created_at": self._clock(), "created_by": by}
                case_id = conn.execute(_INSERT_CASE, case).scalar_one()
                return self._store_version(conn, case_id, reference, 1, data, by, assessment, audit)
        except IntegrityError:
            raise DuplicateCase(
                f"a case with case id {reference!r} exists already: edit it, or import it as its next version"
            ) from None

    def add_version(
        self,
        case_id: int,
        data: dict[str, Any],
        by: int | None,
        assessment: NewAssessment,
        base_version: int | None = None,
        audit: AuditRecord | None = None,
    ) -> CaseVersion:
        try:
            with self.engine.begin() as conn:
                case = conn.execute(_LATEST_VERSION, {"case_id": case_id}).first()
                if case is None:
                    raise CaseNotFound(f"no case {case_id}")
                reference, latest = case
                if base_version is not None and base_version != latest:
                    raise StaleVersion(base_version, latest or 0)
                # two edits of the same base at once: the unique (case, version) makes the second fail below
                return self._store_version(conn, case_id, reference, (latest or 0) + 1, data, by, assessment, audit)
        except IntegrityError:  # another edit took the same version number first
            raise StoreError("the case was changed at the same time; reload and try again") from None

    def find_case(self, reference: str) -> CaseSummary | None:
        with self.engine.connect() as conn:
            hit = conn.execute(self._summaries().where(CaseRow.reference == reference)).first()
        return None if hit is None else _summary_of(tuple(hit))

    def read_case(
        self,
        case: int | str,
        version: int | None = None,
        kb_version: str | None = None,
        audit: AuditRecord | None = None,
    ) -> CaseRead | None:
        by_number = isinstance(case, int)
        with self.engine.connect() as conn:
            rows = conn.execute(_VERSIONS_BY_NUMBER if by_number else _VERSIONS_BY_REFERENCE, {"case": case}).all()
            if not rows:  # every stored case has its version 1
                return None
            versions = [_version_of(tuple(r)) for r in rows]
            number = versions[0].case_id
            chosen = versions[-1] if version is None else next((v for v in versions if v.version == version), None)
            stored = None
            if chosen is not None and kb_version is not None:
                hit = conn.execute(_ASSESSMENT_UNDER, {"version_id": chosen.id, "kb_version": kb_version}).first()
                stored = None if hit is None else _assessment_of(tuple(hit))
            found = chosen is not None and (kb_version is None or stored is not None)
            if audit is not None and found:
                conn.execute(_AUDIT_INSERT, _audit_values(audit, self._clock(), number))
                conn.commit()
            return CaseRead(number, chosen, stored, versions, audited=audit is not None and found)

    def get_case(self, case_id: int) -> CaseSummary:
        with self.engine.connect() as conn:
            hit = conn.execute(self._summaries().where(CaseRow.id == case_id)).first()
        if hit is None:
            raise CaseNotFound(f"no case {case_id}")
        return _summary_of(tuple(hit))

    def get_version(self, case_id: int, version: int | None = None) -> CaseVersion:
        query, values = _LATEST_OF_CASE, {"case": case_id}
        if version is not None:
            query, values = _VERSION_OF_CASE, {**values, "version": version}
        with self.engine.connect() as conn:
            hit = conn.execute(query, values).first()
        if hit is None:
            raise CaseNotFound(f"no case {case_id}" + (f" version {version}" if version is not None else ""))
        return _version_of(tuple(hit))

    def list_versions(self, case_id: int) -> list[CaseVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(_VERSIONS_BY_NUMBER, {"case": case_id}).all()
        if not rows:
            raise CaseNotFound(f"no case {case_id}")
        return [_version_of(tuple(r)) for r in rows]

    @staticmethod
    def _matching(search: str | None) -> ColumnElement[bool]:
        search = (search or "").replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
        if not search:
            return true()
        if len(search) > MAX_CASE_ID:  # no case id is longer (and SQLite refuses LIKE patterns over 50,000)
            return false()
        return func.lower(CaseRow.reference).contains(search.lower(), autoescape=True)

    def list_cases(
        self, search: str | None = None, limit: int = 200, offset: int = 0, where: CaseFilter | None = None
    ) -> list[CaseSummary]:
        query = (
            self._summaries()
            .where(self._matching(search), _filtered(where))
            .order_by(CaseRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [_summary_of(tuple(r)) for r in conn.execute(query).all()]

    def count_cases(self, search: str | None = None, where: CaseFilter | None = None) -> int:
        query = select(func.count()).select_from(CaseRow).where(self._matching(search))
        if where is not None and where.active():
            query = query.join(CaseSummaryRow, CaseSummaryRow.case_id == CaseRow.id).where(_filtered(where))
        with self.engine.connect() as conn:
            return conn.scalar(query) or 0

    def add_assessment(self, case_version_id: int, assessment: NewAssessment) -> StoredAssessment:
        with self._sessions.begin() as s:
            now = self._clock()
            row = AssessmentRow(
                case_version_id=case_version_id,
                kb_version=assessment.kb_version,
                result=assessment.result,
                created_at=now,
            )
            s.add(row)
            s.flush()
            # the case list shows it if it assesses the latest version (one statement: no race with a new version)
            s.execute(
                update(CaseSummaryRow)
                .where(CaseSummaryRow.version_id == case_version_id)
                .values(**_triage_values(assessment, now))
            )
            return _assessment(row)

    def get_assessment(self, case_version_id: int, kb_version: str | None = None) -> StoredAssessment | None:
        query = _NEWEST_ASSESSMENT if kb_version is None else _ASSESSMENT_UNDER
        with self.engine.connect() as conn:
            hit = conn.execute(query, {"version_id": case_version_id, "kb_version": kb_version}).first()
        return None if hit is None else _assessment_of(tuple(hit))

    def list_assessments(self, case_id: int) -> list[tuple[int, StoredAssessment]]:
        with self._sessions() as s:
            rows = s.execute(
                select(CaseVersionRow.version, AssessmentRow)
                .join(CaseVersionRow, CaseVersionRow.id == AssessmentRow.case_version_id)
                .where(CaseVersionRow.case_id == case_id)
                .order_by(AssessmentRow.id)
            ).all()
            return [(v, _assessment(a)) for v, a in rows]

    # --- users ---
    def add_user(self, email: str, password_hash: str, role: Role) -> User:
        email = email.strip().lower()
        try:
            with self._sessions.begin() as s:
                if s.scalar(select(UserRow.id).where(UserRow.email == email)) is not None:
                    raise DuplicateUser(f"a user {email} exists already")
                row = UserRow(email=email, password_hash=password_hash, role=role.value, created_at=self._clock())
                s.add(row)
                s.flush()
                return _user(row)
        except IntegrityError:
            raise DuplicateUser(f"a user {email} exists already") from None

    def add_first_admin(self, email: str, password_hash: str) -> User:
        email = email.strip().lower()
        with self._sessions.begin() as s:
            if self.engine.dialect.name == "postgresql":  # two setups at once: the second waits, then sees the first
                s.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
            if s.scalar(select(func.count()).select_from(UserRow)):
                raise NotFirstUser("the first admin exists already; log in, or ask an admin for an account")
            row = UserRow(email=email, password_hash=password_hash, role=Role.ADMIN.value, created_at=self._clock())
            s.add(row)
            s.flush()
            return _user(row)

    def has_users(self) -> bool:
        with self._sessions() as s:
            return s.scalar(select(UserRow.id).limit(1)) is not None

    def get_user(self, user_id: int) -> User | None:
        with self._sessions() as s:
            row = s.get(UserRow, user_id)
            return None if row is None else _user(row)

    def find_user(self, email: str) -> User | None:
        with self._sessions() as s:
            row = s.scalars(select(UserRow).where(UserRow.email == email.strip().lower())).first()
            return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self._sessions() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.id))]

    def set_password_hash(self, user_id: int, password_hash: str) -> User:
        with self._sessions.begin() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise UserNotFound(f"no user {user_id}")
            row.password_hash = password_hash
            s.flush()
            return _user(row)

    @staticmethod
    def _lock_admins(s: OrmSession) -> None:
        """Make changes to admins take turns: this no-op write locks every admin row (PostgreSQL) or the database
        (SQLite) until the transaction ends, so two admins demoting each other at once cannot both pass the
        check below (the second sees the first's change)."""
        s.execute(update(UserRow).where(UserRow.role == Role.ADMIN.value).values(role=UserRow.role))

    def _user_to_change(self, s: OrmSession, user_id: int) -> UserRow:
        """The user's row, read after :meth:`_lock_admins`, so that the admin check sees every earlier change."""
        self._lock_admins(s)
        row = s.get(UserRow, user_id, populate_existing=True)
        if row is None:
            raise UserNotFound(f"no user {user_id}")
        return row

    @staticmethod
    def _check_other_admin(s: OrmSession, row: UserRow) -> None:
        """Refuse to take the admin role or activity away from the only active admin."""
        if row.role != Role.ADMIN.value or not row.active:
            return
        others = s.scalar(
            select(func.count())
            .select_from(UserRow)
            .where(UserRow.role == Role.ADMIN.value, UserRow.active, UserRow.id != row.id)
        )
        if not others:
            raise LastAdmin("this is the only active admin; make another user admin first")

    def set_active(self, user_id: int, active: bool) -> User:
        with self._sessions.begin() as s:
            row = self._user_to_change(s, user_id)
            if not active:
                self._check_other_admin(s, row)
                s.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
            row.active = active
            s.flush()
            return _user(row)

    def set_role(self, user_id: int, role: Role) -> User:
        with self._sessions.begin() as s:
            row = self._user_to_change(s, user_id)
            if role is not Role.ADMIN:
                self._check_other_admin(s, row)
            row.role = role.value
            s.flush()
            return _user(row)

    # --- login attempts ---
    def _upsert(self) -> Any:
        """The dialect's INSERT with ON CONFLICT (SQLite and PostgreSQL share the syntax)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(LoginThrottleRow)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(LoginThrottleRow)

    def reserve_login_attempt(
        self, counters: Sequence[tuple[str, LoginPolicy]], now: dt.datetime
    ) -> dt.datetime | None:
        t = LoginThrottleRow
        at = literal(now, UtcDateTime())
        with self._sessions.begin() as s:
            # Names whose attempts have aged out are forgotten; rows another request holds are left for later
            # (SKIP LOCKED), so this never waits on, or deadlocks with, a login in flight.
            longest = max(p.window for _, p in counters)
            aged = (
                select(t.login_name)
                .where(t.last_attempt_at < now - longest, or_(t.locked_until.is_(None), t.locked_until <= now))
                .with_for_update(skip_locked=True)
            )
            s.execute(delete(t).where(t.login_name.in_(aged)))
            # Only writes, each one statement, in the callers' fixed order: every request takes its turn (SQLite's
            # write lock, PostgreSQL's row locks), so requests in flight at once cannot all pass a check made before
            # any of them counted. A locked counter stops the count: a refused attempt adds nothing further on.
            for key, policy in counters:
                locked = and_(t.locked_until.is_not(None), t.locked_until > now)
                fresh = or_(t.last_attempt_at < now - policy.window, t.locked_until.is_not(None))
                count = case((fresh, 1), else_=t.attempts + 1)
                statement = (
                    self._upsert()
                    .values(login_name=key, attempts=1, last_attempt_at=at, locked_until=None)
                    .on_conflict_do_update(
                        index_elements=[t.login_name],
                        set_={
                            "attempts": case((locked, t.attempts), else_=count),
                            "last_attempt_at": case((locked, t.last_attempt_at), else_=at),
                            "locked_until": case(
                                (locked, t.locked_until),
                                (count > policy.max_failures, literal(now + policy.lockout, UtcDateTime())),
                                else_=null(),
                            ),
                        },
                    )
                    .returning(t.locked_until)
                )
                until = s.execute(statement).scalar_one()
                if until is not None and until > now:
                    return cast(dt.datetime, until)
        return None

    def login_succeeded(self, counters: Sequence[str], now: dt.datetime) -> None:
        t = LoginThrottleRow
        with self._sessions.begin() as s:
            for key in counters:  # one row at a time, in the order the attempt counted them: no lock-order deadlock
                s.execute(delete(t).where(t.login_name == key, or_(t.locked_until.is_(None), t.locked_until <= now)))

    def lift_login_lockout(self, login_name: str) -> None:
        t = LoginThrottleRow
        with self._sessions.begin() as s:
            s.execute(
                delete(t).where(
                    or_(t.login_name == login_name, t.login_name.startswith(f"{login_name} ", autoescape=True))
                )
            )

    # --- sessions ---
    def add_session(self, session: Session) -> None:
        with self._sessions.begin() as s:
            s.add(
                SessionRow(
                    token_hash=session.token_hash,
                    user_id=session.user_id,
                    csrf_token=session.csrf_token,
                    created_at=session.created_at,
                    last_seen=session.last_seen,
                )
            )

    def get_session(self, token_hash: str) -> Session | None:
        with self._sessions() as s:
            row = s.get(SessionRow, token_hash)
            return None if row is None else _session(row)

    def get_session_user(self, token_hash: str) -> tuple[Session, User | None] | None:
        with self.engine.connect() as conn:
            hit = conn.execute(_SESSION_USER, {"token_hash": token_hash}).first()
        if hit is None:
            return None
        values: tuple[Any, ...] = tuple(hit)
        token, user_id, csrf, created, seen, number, email, role, active, user_created, password_hash = values
        user = None if number is None else User(number, email, Role(role), active, user_created, password_hash)
        return Session(token, user_id, csrf, created, seen), user

    def touch_session(self, token_hash: str, at: dt.datetime) -> None:
        with self._sessions.begin() as s:
            row = s.get(SessionRow, token_hash)
            if row is not None:
                row.last_seen = at

    def delete_session(self, token_hash: str) -> None:
        with self._sessions.begin() as s:
            row = s.get(SessionRow, token_hash)
            if row is not None:
                s.delete(row)

    def delete_user_sessions(self, user_id: int, keep: str | None = None) -> int:
        query = delete(SessionRow).where(SessionRow.user_id == user_id)
        if keep is not None:
            query = query.where(SessionRow.token_hash != keep)
        with self._sessions.begin() as s:
            result = s.execute(query)
            return result.rowcount if isinstance(result, CursorResult) else 0

    # --- audit ---
    def record_audit(
        self, user_id: int | None, action: str, case_id: int | None, outcome: str, detail: str | None = None
    ) -> AuditEntry:
        at = self._clock()
        row = {"at": at, "user_id": user_id, "action": action, "case_id": case_id, "outcome": outcome, "detail": detail}
        with self.engine.begin() as conn:
            number = conn.execute(_AUDIT_INSERT, row).scalar_one()
        return AuditEntry(number, at, user_id, action, case_id, outcome, detail)

    def list_audit(self, case_id: int | None = None, limit: int = 500) -> list[AuditEntry]:
        query = select(AuditRow)
        if case_id is not None:
            query = query.where(AuditRow.case_id == case_id)
        with self._sessions() as s:
            return [_audit(r) for r in s.scalars(query.order_by(AuditRow.id.desc()).limit(limit))]
