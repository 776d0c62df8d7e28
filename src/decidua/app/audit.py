"""The audit trail's vocabulary, defined once, and the one wrapper every use case writes its audit row with.

Each read and write of a patient record, each login and each change to an account writes exactly one row: who
(the user's number, never an e-mail address typed), what (:class:`AuditAction`), which case, and how it ended
(:class:`Outcome`), failures included. Rows never hold patient data: ``detail`` names users by number.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from decidua.app.ports import AuditLog, AuditRecord
from decidua.core.errors import InputError


class AuditAction(StrEnum):
    CASE_LIST = "case.list"
    CASE_CREATE = "case.create"
    CASE_READ = "case.read"
    CASE_UPDATE = "case.update"
    CASE_VERSIONS = "case.versions"
    CASE_ASSESSMENT = "case.assessment"
    CASE_ASSESSMENTS = "case.assessments"
    CASE_REPORT_PDF = "case.report_pdf"
    CASE_REPORT_HTML = "case.report_html"
    CASE_EXPORT = "case.export"
    CASE_IMPORT = "case.import"
    CASE_FHIR_EXPORT = "case.fhir_export"
    CASE_FHIR_IMPORT = "case.fhir_import"
    CASE_LAB_IMPORT = "case.lab_import"
    LOGIN = "login"
    LOGOUT = "logout"
    USER_ADD = "user.add"
    USER_CHANGE = "user.change"
    USER_ROLE = "user.role"
    USER_ACTIVE = "user.active"
    USER_INACTIVE = "user.inactive"
    USER_PASSWORD = "user.password"
    USER_PASSWORD_RESET = "user.password_reset"


class Outcome(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    DENIED = "denied"
    UNAUTHENTICATED = "unauthenticated"
    FAILED = "failed"  # a wrong password
    LOCKED = "locked"  # refused by the failed-login throttle
    BUSY = "busy"  # refused for want of capacity (the PDF workers' queue full): nothing was read out
    ERROR = "error"  # anything else: a bug


def outcome_of(exc: BaseException) -> Outcome:
    """How a use case that raised ``exc`` ended, for its audit row."""
    declared = getattr(exc, "audit_outcome", None)
    if declared is not None:
        return Outcome(declared)
    if isinstance(exc, InputError):
        return Outcome.INVALID
    return Outcome.ERROR


@dataclass
class AuditNote:
    """Filled in by the code inside :func:`audited`: the case number once known, and a detail (no patient data).

    A patient write hands :meth:`record` to the store, which writes the row in the write's own transaction; the
    block then marks it ``written`` and :func:`audited` writes no second ``ok`` row.
    """

    case_id: int | None
    user_id: int | None = None
    action: str = ""
    detail: str | None = None
    written: bool = False

    def record(self) -> AuditRecord:
        """The row of this use case's successful write, for the store to write with it."""
        return AuditRecord(self.user_id, self.action, self.detail)


@contextmanager
def audited(log: AuditLog, user_id: int | None, action: AuditAction, case_id: int | None = None) -> Iterator[AuditNote]:
    """Run the block and write one audit row with its outcome (a failure too, then re-raise it).

    An unexpected error is recorded with its type only (its message may hold patient data). A row the store wrote
    with the block's write (``note.written``) is that row; a failure after it still gets its own.
    """
    note = AuditNote(case_id, user_id, action.value)
    try:
        yield note
    except BaseException as exc:
        outcome = outcome_of(exc)
        detail = type(exc).__name__ if outcome is Outcome.ERROR else note.detail
        log.record_audit(user_id, action, note.case_id, outcome, detail)
        raise
    if not note.written:
        log.record_audit(user_id, action, note.case_id, Outcome.OK, note.detail)


def record(
    log: AuditLog,
    user_id: int | None,
    action: AuditAction,
    outcome: Outcome,
    detail: str | None = None,
    case_id: int | None = None,
) -> None:
    """One audit row for something decided without running a block (a refused request, a failed login)."""
    log.record_audit(user_id, action, case_id, outcome, detail)
