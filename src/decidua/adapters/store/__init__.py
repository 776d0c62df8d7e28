"""Persistence of the web application: versioned cases, assessments, users, sessions and the audit trail."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from decidua.adapters.store.base import (
    AuditEntry,
    CaseNotFound,
    CaseStore,
    CaseSummary,
    CaseVersion,
    DuplicateCase,
    DuplicateUser,
    NewAssessment,
    NotFirstUser,
    NotFound,
    Role,
    Session,
    StoredAssessment,
    StoreError,
    User,
    UserNotFound,
)
from decidua.adapters.store.migrate import upgrade
from decidua.adapters.store.sql import SqlCaseStore, make_engine

__all__ = [
    "AuditEntry",
    "CaseNotFound",
    "CaseStore",
    "CaseSummary",
    "CaseVersion",
    "DuplicateCase",
    "DuplicateUser",
    "NewAssessment",
    "NotFirstUser",
    "NotFound",
    "Role",
    "Session",
    "SqlCaseStore",
    "StoreError",
    "StoredAssessment",
    "User",
    "UserNotFound",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, or ``None`` for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def open_store(url: str) -> SqlCaseStore:
    """Open the database at ``url`` (creating a SQLite file and its folder if needed) and migrate it to head."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    return SqlCaseStore(engine)
