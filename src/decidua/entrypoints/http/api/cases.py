"""Cases: list, create, read, edit, their versions and assessments, reports.

A case is addressed by its case id (the case file's pseudonymous reference, percent-encoded in the path), as
everywhere else in decidua; the database's number appears only as ``number`` in the answers (the audit trail
uses it). Each route parses the request, calls one case use case (:class:`decidua.app.cases.CaseService`, which
audits it) and shapes the answer; a create, an edit and an import answer in one shape (:class:`CaseSavedPublic`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from decidua.app.accounts import Login
from decidua.app.audit import AuditAction
from decidua.app.ports import CaseFilter
from decidua.core.findings import Status
from decidua.entrypoints.http.api.public import (
    CASE_ERRORS,
    CONFLICT,
    ERRORS,
    assessment_public,
    case_public,
    saved_public,
    summary_public,
    version_public,
)
from decidua.entrypoints.http.api.schemas import (
    AssessmentPublic,
    CaseCreate,
    CasePublic,
    CaseSavedPublic,
    CaseSummaryPublic,
    CaseUpdate,
    CaseVersionPublic,
    LabImportCreate,
    LabImportPublic,
)
from decidua.entrypoints.http.deps import MAX_ID, CaseRef, Ctx, OptionalVersion, VersionNo, patient
from decidua.entrypoints.http.shared import report_response

MAX_PAGE = 500
StatusQuery = Annotated[Status | None, Query(description="Only cases whose latest assessment has this status.")]

router = APIRouter(tags=["cases"])


@router.get("/cases", responses=ERRORS)
def list_cases(
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_LIST)],
    response: Response,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    rpl: StatusQuery = None,
    rif: StatusQuery = None,
    blood_nk: StatusQuery = None,
    uterine_nk: StatusQuery = None,
    any_nk_flagged: Annotated[bool, Query(description="Only cases with the blood or uterine NK flagged.")] = False,
) -> list[CaseSummaryPublic]:
    """Cases, newest first, ``limit`` at a time from ``offset``, each with the statuses of its latest version's
    stored assessment (``triage``); ``q`` searches the case id, ``rpl``, ``rif``, ``blood_nk``, ``uterine_nk`` and
    ``any_nk_flagged`` filter by them (in the database). The header ``X-Total-Count`` gives how many cases match."""
    where = CaseFilter(rpl=rpl, rif=rif, blood_nk=blood_nk, uterine_nk=uterine_nk, any_nk_flagged=any_nk_flagged)
    found = ctx.service.list_cases(who.user.id, q, limit, offset, where=where)
    response.headers["x-total-count"] = str(found.total)
    return [summary_public(s) for s in found.cases]


@router.post("/cases", status_code=201, responses={**CASE_ERRORS, 409: CONFLICT})
def create_case(body: CaseCreate, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_CREATE)]) -> CaseSavedPublic:
    """Store a new case (version 1) and its assessment; a case id in use is a 409 (an edit is a PUT, an import
    over a stored case is `POST /api/fhir/import` or the web application's import)."""
    view = ctx.service.create(body.case, who.user.id)
    return CaseSavedPublic(created=True, changed=True, case=case_public(view))


@router.get("/cases/{case_id}", responses=CASE_ERRORS)
def read_case(
    case_id: CaseRef, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_READ, by_reference=True)]
) -> CasePublic:
    """The latest version with its assessment under the knowledge base in force."""
    return case_public(ctx.service.view(case_id, who.user.id))


@router.put("/cases/{case_id}", responses={**CASE_ERRORS, 409: CONFLICT})
def update_case(
    case_id: CaseRef,
    body: CaseUpdate,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_UPDATE, by_reference=True)],
) -> CaseSavedPublic:
    """Store the next version (earlier versions stay unchanged) and its assessment. A case equal to the latest
    version stores nothing new (``changed`` false)."""
    return saved_public(ctx.service.update(case_id, body.case, who.user.id, body.base_version))


@router.get("/cases/{case_id}/versions", responses=CASE_ERRORS)
def list_versions(
    case_id: CaseRef, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_VERSIONS, by_reference=True)]
) -> list[CaseVersionPublic]:
    return [version_public(v) for v in ctx.service.versions(case_id, who.user.id)]


@router.get("/cases/{case_id}/versions/{version}", responses=CASE_ERRORS)
def read_version(
    case_id: CaseRef,
    version: VersionNo,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_READ, by_reference=True)],
) -> CaseVersionPublic:
    return version_public(ctx.service.version(case_id, who.user.id, version).version)


@router.get("/cases/{case_id}/assessment", responses=CASE_ERRORS)
def read_assessment(
    case_id: CaseRef,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_ASSESSMENT, by_reference=True)],
    version: OptionalVersion = None,
) -> AssessmentPublic:
    """The assessment of a version (the latest by default) under the knowledge base in force."""
    v = ctx.service.assessment(case_id, who.user.id, version)
    return assessment_public(v.version.reference, v.version.version, v.stored)


@router.get("/cases/{case_id}/assessments", responses=CASE_ERRORS)
def list_assessments(
    case_id: CaseRef, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_ASSESSMENTS, by_reference=True)]
) -> list[AssessmentPublic]:
    """Every stored assessment of the case, with the case version and kb_version each used."""
    return [assessment_public(case_id, n, a) for n, a in ctx.service.assessments(case_id, who.user.id)]


@router.get(
    "/cases/{case_id}/report.pdf",
    responses={**CASE_ERRORS, 200: {"content": {"application/pdf": {}}}},
    response_class=Response,
)
def report_pdf(
    case_id: CaseRef, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_REPORT_PDF, by_reference=True)]
) -> Response:
    return report_response(ctx, who, case_id, "pdf")


@router.get(
    "/cases/{case_id}/report.html",
    responses={**CASE_ERRORS, 200: {"content": {"text/html": {}}, "description": "The report as a web page."}},
    response_class=Response,  # errors are JSON like everywhere under /api
)
def report_html(
    case_id: CaseRef, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_REPORT_HTML, by_reference=True)]
) -> Response:
    return report_response(ctx, who, case_id, "html")


@router.post("/cases/{case_id}/lab-results", status_code=201, responses={**CASE_ERRORS, 409: CONFLICT})
def import_lab_results(
    case_id: CaseRef,
    body: LabImportCreate,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_LAB_IMPORT, by_reference=True)],
) -> LabImportPublic:
    """Laboratory results from an HL7 v2 ORU^R01 message merged into the next version of the case. A message with
    segments decidua does not read is refused (422, each segment and why) unless ``skip_unread``."""
    saved, read = ctx.service.import_lab(
        case_id, body.message, who.user.id, skip_unread=body.skip_unread, base_version=body.base_version
    )
    return LabImportPublic(
        created=False,
        changed=saved.changed,
        case=case_public(saved.view),
        read=len(read.values),
        unread=list(read.unread),
    )
