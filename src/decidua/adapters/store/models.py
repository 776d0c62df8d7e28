"""SQLAlchemy 2 tables of the web application (typed ORM). The schema itself is created by the migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# JSON on SQLite, JSONB on PostgreSQL.
JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")

# Constraint names fixed by convention, so that migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A UTC timestamp stored without zone (SQLite has none) and read back as an aware datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    active: Mapped[bool] = mapped_column(default=True)


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    versions: Mapped[list[CaseVersionRow]] = relationship(
        back_populates="case", order_by="CaseVersionRow.version", lazy="raise"
    )


class CaseVersionRow(Base):
    __tablename__ = "case_versions"
    __table_args__ = (UniqueConstraint("case_id", "version", name="uq_case_versions_case_id_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    case: Mapped[CaseRow] = relationship(back_populates="versions", lazy="raise")


class AssessmentRow(Base):
    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_version_id: Mapped[int] = mapped_column(ForeignKey("case_versions.id"), index=True)
    kb_version: Mapped[str] = mapped_column(String(200))
    result: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class CaseSummaryRow(Base):
    """One row per case: its latest version and the statuses of that version's newest assessment, written in the
    transaction that stores them, so that the case list reads and filters one row per case (no grouping of the
    versions, no re-assessment). Statuses are ``flagged``, ``within_range`` or ``not_assessed``; each with the word
    the case page shows (``*_word``)."""

    __tablename__ = "case_summaries"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("case_versions.id"), unique=True)  # the latest version
    latest_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())  # when the latest version was saved
    kb_version: Mapped[str | None] = mapped_column(String(200))  # None: the latest version has no assessment
    assessed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    rpl: Mapped[str] = mapped_column(String(16))
    rpl_word: Mapped[str] = mapped_column(String(200))
    rif: Mapped[str] = mapped_column(String(16))
    rif_word: Mapped[str] = mapped_column(String(200))
    blood_nk: Mapped[str] = mapped_column(String(16))
    blood_nk_word: Mapped[str] = mapped_column(String(200))
    uterine_nk: Mapped[str] = mapped_column(String(16))
    uterine_nk_word: Mapped[str] = mapped_column(String(200))


class SessionRow(Base):
    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class LoginThrottleRow(Base):
    __tablename__ = "login_throttle"

    # The login name as typed (trimmed, lower-cased), whether or not a user has it, so that a locked name looks
    # the same for an account that exists and one that does not; "<login name> <client address>" per client.
    login_name: Mapped[str] = mapped_column(String(400), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)  # counted before the password is checked; a success deletes
    last_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class AuditRow(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    # No foreign keys: the trail also records attempts on cases that do not exist and by no one logged in.
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
