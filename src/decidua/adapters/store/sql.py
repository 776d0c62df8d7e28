"""The SQL store (SQLite or PostgreSQL through SQLAlchemy 2); every method runs in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Engine,
    Select,
    and_,
    case,
    create_engine,
    delete,
    event,
    false,
    func,
    literal,
    null,
    or_,
    select,
    text,
    true,
    update,
)
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


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets foreign keys switched on (they are off by default) and write-ahead
    logging, so that readers do not hold up writers (and the reverse) when several requests come at once; a
    writer waits up to 30 s for another to finish."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # kept by the file; "memory" for an in-memory database
            cursor.close()
            # SQLite's own lower() folds ASCII only: a search for "ü" would miss "Ü-1"
            dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

        return engine
    return create_engine(url)


def _user(row: UserRow) -> User:
    return User(row.id, row.email, Role(row.role), row.active, row.created_at, row.password_hash)


def _version(row: CaseVersionRow, reference: str) -> CaseVersion:
    return CaseVersion(row.id, row.case_id, reference, row.version, dict(row.data), row.created_at, row.created_by)


def _assessment(row: AssessmentRow) -> StoredAssessment:
    return StoredAssessment(row.id, row.case_version_id, row.kb_version, dict(row.result), row.created_at)


def _audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(row.id, row.at, row.user_id, row.action, row.case_id, row.outcome, row.detail)


def _session(row: SessionRow) -> Session:
    return Session(row.token_hash, row.user_id, row.csrf_token, row.created_at, row.last_seen)


def _triage(row: CaseSummaryRow) -> Triage:
    words = {name: StatusWord(Status(getattr(row, name)), getattr(row, f"{name}_word")) for name in TRIAGE_COLUMNS}
    return Triage(**words, kb_version=row.kb_version, assessed_at=row.assessed_at)


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
    def _summaries(self) -> Select[CaseRow, CaseSummaryRow]:
        """Cases with their summary rows (latest version, the case list's statuses): one row each, no grouping."""
        return select(CaseRow, CaseSummaryRow).join(CaseSummaryRow, CaseSummaryRow.case_id == CaseRow.id)

    @staticmethod
    def _summary(row: CaseRow, summary: CaseSummaryRow) -> CaseSummary:
        return CaseSummary(
            row.id,
            row.reference,
            row.created_at,
            row.created_by,
            summary.latest_version,
            summary.updated_at,
            _triage(summary),
        )

    def _store_version(
        self,
        s: OrmSession,
        case: CaseRow,
        version: int,
        data: dict[str, Any],
        by: int | None,
        a: NewAssessment,
        audit: AuditRecord | None,
    ) -> CaseVersion:
        """The version and its assessment, the case's summary row made to show them and the write's audit row (same
        transaction)."""
        now = self._clock()
        row = CaseVersionRow(case_id=case.id, version=version, data=data, created_at=now, created_by=by)
        s.add(row)
        s.flush()
        s.add(AssessmentRow(case_version_id=row.id, kb_version=a.kb_version, result=a.result, created_at=now))
        if audit is not None:
            s.add(
                AuditRow(
                    at=now,
                    user_id=audit.user_id,
                    action=audit.action,
                    case_id=case.id,
                    outcome="ok",
                    detail=audit.detail,
                )
            )
        values = {"version_id": row.id, "latest_version": version, "updated_at": now, **_triage_values(a, now)}
        summary = s.get(CaseSummaryRow, case.id)
        if summary is None:
            s.add(CaseSummaryRow(case_id=case.id, **values))
        else:
            for name, value in values.items():
                setattr(summary, name, value)
        s.flush()
        return _version(row, case.reference)

    def create_case(
        self,
        reference: str,
        data: dict[str, Any],
        by: int | None,
        assessment: NewAssessment,
        audit: AuditRecord | None = None,
    ) -> CaseVersion:
        try:
            with self._sessions.begin() as s:
                if s.scalar(select(CaseRow.id).where(CaseRow.reference == reference)) is not None:
                    raise DuplicateCase(f"a case with reference {reference!r} exists already")
                case = CaseRow(reference=reference, created_at=self._clock(), created_by=by)
                s.add(case)
                s.flush()
                return self._store_version(s, case, 1, data, by, assessment, audit)
        except IntegrityError:
            raise DuplicateCase(f"a case with reference {reference!r} exists already") from None

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
            with self._sessions.begin() as s:
                case = s.get(CaseRow, case_id)
                if case is None:
                    raise CaseNotFound(f"no case {case_id}")
                latest = s.scalar(select(func.max(CaseVersionRow.version)).where(CaseVersionRow.case_id == case_id))
                if base_version is not None and base_version != latest:
                    raise StaleVersion(base_version, latest or 0)
                # two edits of the same base at once: the unique (case, version) makes the second fail below
                return self._store_version(s, case, (latest or 0) + 1, data, by, assessment, audit)
        except IntegrityError:  # another edit took the same version number first
            raise StoreError("the case was changed at the same time; reload and try again") from None

    def find_case(self, reference: str) -> CaseSummary | None:
        with self._sessions() as s:
            hit = s.execute(self._summaries().where(CaseRow.reference == reference)).first()
            return None if hit is None else self._summary(hit[0], hit[1])

    def get_case(self, case_id: int) -> CaseSummary:
        with self._sessions() as s:
            hit = s.execute(self._summaries().where(CaseRow.id == case_id)).first()
            if hit is None:
                raise CaseNotFound(f"no case {case_id}")
            return self._summary(hit[0], hit[1])

    def get_version(self, case_id: int, version: int | None = None) -> CaseVersion:
        with self._sessions() as s:
            query = (
                select(CaseVersionRow, CaseRow.reference)
                .join(CaseRow, CaseRow.id == CaseVersionRow.case_id)
                .where(CaseVersionRow.case_id == case_id)
            )
            if version is not None:
                query = query.where(CaseVersionRow.version == version)
            hit = s.execute(query.order_by(CaseVersionRow.version.desc()).limit(1)).first()
            if hit is None:
                raise CaseNotFound(f"no case {case_id}" + (f" version {version}" if version is not None else ""))
            return _version(*hit)

    def list_versions(self, case_id: int) -> list[CaseVersion]:
        with self._sessions() as s:
            rows = s.execute(
                select(CaseVersionRow, CaseRow.reference)
                .join(CaseRow, CaseRow.id == CaseVersionRow.case_id)
                .where(CaseVersionRow.case_id == case_id)
                .order_by(CaseVersionRow.version)
            ).all()
            if not rows:
                raise CaseNotFound(f"no case {case_id}")
            return [_version(*r) for r in rows]

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
        with self._sessions() as s:
            return [self._summary(r[0], r[1]) for r in s.execute(query).all()]

    def count_cases(self, search: str | None = None, where: CaseFilter | None = None) -> int:
        query = select(func.count()).select_from(CaseRow).where(self._matching(search))
        if where is not None and where.active():
            query = query.join(CaseSummaryRow, CaseSummaryRow.case_id == CaseRow.id).where(_filtered(where))
        with self._sessions() as s:
            return s.scalar(query) or 0

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
        query = select(AssessmentRow).where(AssessmentRow.case_version_id == case_version_id)
        if kb_version is not None:
            query = query.where(AssessmentRow.kb_version == kb_version)
        with self._sessions() as s:
            row = s.scalars(query.order_by(AssessmentRow.id.desc()).limit(1)).first()
            return None if row is None else _assessment(row)

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
        with self._sessions.begin() as s:
            row = AuditRow(
                at=self._clock(), user_id=user_id, action=action, case_id=case_id, outcome=outcome, detail=detail
            )
            s.add(row)
            s.flush()
            return _audit(row)

    def list_audit(self, case_id: int | None = None, limit: int = 500) -> list[AuditEntry]:
        query = select(AuditRow)
        if case_id is not None:
            query = query.where(AuditRow.case_id == case_id)
        with self._sessions() as s:
            return [_audit(r) for r in s.scalars(query.order_by(AuditRow.id.desc()).limit(limit))]
