"""Persistence of the web application: versioned cases, assessments, users, sessions and the audit trail."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decidua.app.ports import (
    AuditEntry,
    CaseNotFound,
    CaseStore,
    CaseSummary,
    CaseVersion,
    DuplicateCase,
    DuplicateUser,
    LastAdmin,
    LoginPolicy,
    NewAssessment,
    NotFirstUser,
    NotFound,
    Role,
    Session,
    StaleVersion,
    StoredAssessment,
    StoreError,
    User,
    UserNotFound,
)

if TYPE_CHECKING:
    from decidua.adapters.store.sql import SqlCaseStore


def __getattr__(name: str) -> Any:
    # SQLAlchemy and Alembic load only when a store is used, not when a command merely names a Role.
    if name == "SqlCaseStore":
        from decidua.adapters.store.sql import SqlCaseStore

        return SqlCaseStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuditEntry",
    "CaseNotFound",
    "CaseStore",
    "CaseSummary",
    "CaseVersion",
    "DuplicateCase",
    "DuplicateUser",
    "LastAdmin",
    "LoginPolicy",
    "NewAssessment",
    "NotFirstUser",
    "NotFound",
    "Role",
    "Session",
    "SqlCaseStore",
    "StaleVersion",
    "StoreError",
    "StoredAssessment",
    "User",
    "UserNotFound",
    "create_private_file",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, or ``None`` for other databases and in-memory SQLite."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_private_file(path: Path) -> None:
    """A new SQLite database file (and its folder) readable by its owner only: it holds pseudonymised patient
    data, and SQLite gives its ``-wal`` and ``-shm`` files the same permissions. An existing file is left as is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def open_store(url: str) -> SqlCaseStore:
    """Open the database at ``url`` (creating a SQLite file and its folder if needed) and migrate it to head."""
    from decidua.adapters.store.migrate import upgrade
    from decidua.adapters.store.sql import SqlCaseStore, make_engine

    path = sqlite_path(url)
    if path is not None:
        create_private_file(path)
    engine = make_engine(url)
    upgrade(engine)
    return SqlCaseStore(engine)
