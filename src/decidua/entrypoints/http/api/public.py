"""What the API's routes share: the stored records in their public shapes, and the documented error responses."""

from __future__ import annotations

from typing import Any

from decidua.adapters.store import AuditEntry, CaseSummary, CaseVersion, StoredAssessment, User
from decidua.app.cases import CaseView, Saved
from decidua.entrypoints.http.api.schemas import (
    AssessmentPublic,
    AuditPublic,
    CasePublic,
    CaseSavedPublic,
    CaseSummaryPublic,
    CaseVersionPublic,
    ErrorPublic,
    StatusPublic,
    TriagePublic,
    UserPublic,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Not logged in, or the session timed out."},
    403: {"model": ErrorPublic, "description": "The role does not allow this, or the CSRF token is missing."},
}
CONFLICT: dict[str, Any] = {
    "model": ErrorPublic,
    "description": (
        "A case with that id exists, it changed since `base_version`, or an import lacks what its latest version "
        "holds (one problem per thing; `replace=true` stores it anyway)."
    ),
}
INVALID: dict[str, Any] = {"model": ErrorPublic, "description": "Invalid input: one problem per field."}
THROTTLED: dict[str, Any] = {
    "model": ErrorPublic,
    "description": "Too many failed logins for this e-mail address: locked for a while (see Retry-After).",
}
CONFLICT_USER: dict[str, Any] = {"model": ErrorPublic, "description": "The only active admin must stay one."}
CASE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorPublic, "description": "No such case (or version)."},
    422: {"model": ErrorPublic, "description": "Invalid case: one problem per field (path, value, allowed)."},
}


def user_public(u: User) -> UserPublic:
    return UserPublic(id=u.id, email=u.email, role=u.role, active=u.active, created_at=u.created_at)


def summary_public(s: CaseSummary) -> CaseSummaryPublic:
    t = s.triage
    statuses = {
        name: StatusPublic(status=w.status.value, word=w.word)
        for name, w in (("rpl", t.rpl), ("rif", t.rif), ("blood_nk", t.blood_nk), ("uterine_nk", t.uterine_nk))
    }
    return CaseSummaryPublic(
        case_id=s.reference,
        number=s.id,
        latest_version=s.latest_version,
        created_at=s.created_at,
        updated_at=s.updated_at,
        triage=TriagePublic(**statuses, kb_version=t.kb_version, assessed_at=t.assessed_at),
    )


def version_public(v: CaseVersion) -> CaseVersionPublic:
    return CaseVersionPublic(
        case_id=v.reference, version=v.version, created_at=v.created_at, created_by=v.created_by, case=v.data
    )


def assessment_public(reference: str, version: int, a: StoredAssessment) -> AssessmentPublic:
    return AssessmentPublic(
        case_id=reference, version=version, kb_version=a.kb_version, created_at=a.created_at, result=a.result
    )


def case_public(v: CaseView) -> CasePublic:
    return CasePublic(
        case_id=v.version.reference,
        number=v.version.case_id,
        version=version_public(v.version),
        assessment=assessment_public(v.version.reference, v.version.version, v.stored),
        versions=[x.version for x in v.versions],
    )


def saved_public(s: Saved) -> CaseSavedPublic:
    return CaseSavedPublic(created=s.created, changed=s.changed, case=case_public(s.view))


def audit_public(e: AuditEntry) -> AuditPublic:
    return AuditPublic(
        id=e.id, at=e.at, user_id=e.user_id, action=e.action, case_number=e.case_id, outcome=e.outcome, detail=e.detail
    )
