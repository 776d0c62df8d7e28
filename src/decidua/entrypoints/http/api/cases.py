"""Cases: list, create, read, edit, their versions and assessments, reports.

Each route parses the request, calls one case use case (:class:`decidua.app.cases.CaseService`, which audits it)
and shapes the answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from decidua.app.accounts import Login
from decidua.app.audit import AuditAction
from decidua.entrypoints.http.api.public import (
    CASE_ERRORS,
    CONFLICT,
    ERRORS,
    assessment_public,
    case_public,
    summary_public,
    version_public,
)
from decidua.entrypoints.http.api.schemas import (
    AssessmentPublic,
    CaseCreate,
    CasePublic,
    CaseSummaryPublic,
    CaseUpdate,
    CaseVersionPublic,
    LabImportCreate,
    LabImportPublic,
)
from decidua.entrypoints.http.deps import MAX_ID, CaseId, Ctx, OptionalVersion, VersionNo, patient
from decidua.entrypoints.http.shared import report_response

MAX_PAGE = 500

router = APIRouter(tags=["cases"])


@router.get("/cases", responses=ERRORS)
def list_cases(
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_LIST)],
    response: Response,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[CaseSummaryPublic]:
    """Cases, newest first, ``limit`` at a time from ``offset``; ``q`` searches the case id (pseudonymous
    reference). The header ``X-Total-Count`` gives how many cases match."""
    found = ctx.service.list_cases(who.user.id, q, limit, offset)
    response.headers["x-total-count"] = str(found.total)
    return [summary_public(s) for s in found.cases]


@router.post("/cases", status_code=201, responses={**CASE_ERRORS, 409: CONFLICT})
def create_case(body: CaseCreate, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_CREATE)]) -> CasePublic:
    """Store a new case (version 1) and its assessment."""
    return case_public(ctx.service.create(body.case, who.user.id))


@router.get("/cases/{case_id}", responses=CASE_ERRORS)
def read_case(case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_READ)]) -> CasePublic:
    """The latest version with its assessment under the knowledge base in force."""
    return case_public(ctx.service.view(case_id, who.user.id))


@router.put("/cases/{case_id}", responses={**CASE_ERRORS, 409: CONFLICT})
def update_case(
    case_id: CaseId, body: CaseUpdate, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_UPDATE)]
) -> CasePublic:
    """Store the next version (earlier versions stay unchanged) and its assessment. A case equal to the latest
    version stores nothing new."""
    return case_public(ctx.service.update(case_id, body.case, who.user.id, body.base_version).view)


@router.get("/cases/{case_id}/versions", responses=CASE_ERRORS)
def list_versions(
    case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_VERSIONS)]
) -> list[CaseVersionPublic]:
    return [version_public(v) for v in ctx.service.versions(case_id, who.user.id)]


@router.get("/cases/{case_id}/versions/{version}", responses=CASE_ERRORS)
def read_version(
    case_id: CaseId, version: VersionNo, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_READ)]
) -> CaseVersionPublic:
    return version_public(ctx.service.version(case_id, who.user.id, version).version)


@router.get("/cases/{case_id}/assessment", responses=CASE_ERRORS)
def read_assessment(
    case_id: CaseId,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_ASSESSMENT)],
    version: OptionalVersion = None,
) -> AssessmentPublic:
    """The assessment of a version (the latest by default) under the knowledge base in force."""
    v = ctx.service.assessment(case_id, who.user.id, version)
    return assessment_public(case_id, v.version.version, v.stored)


@router.get("/cases/{case_id}/assessments", responses=CASE_ERRORS)
def list_assessments(
    case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_ASSESSMENTS)]
) -> list[AssessmentPublic]:
    """Every stored assessment of the case, with the case version and kb_version each used."""
    return [assessment_public(case_id, n, a) for n, a in ctx.service.assessments(case_id, who.user.id)]


@router.get(
    "/cases/{case_id}/report.pdf",
    responses={**CASE_ERRORS, 200: {"content": {"application/pdf": {}}}},
    response_class=Response,
)
def report_pdf(case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_REPORT_PDF)]) -> Response:
    return report_response(ctx, who, case_id, "pdf")


@router.get(
    "/cases/{case_id}/report.html",
    responses={**CASE_ERRORS, 200: {"content": {"text/html": {}}, "description": "The report as a web page."}},
    response_class=Response,  # errors are JSON like everywhere under /api
)
def report_html(case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_REPORT_HTML)]) -> Response:
    return report_response(ctx, who, case_id, "html")


@router.post("/cases/{case_id}/lab-results", status_code=201, responses={**CASE_ERRORS, 409: CONFLICT})
def import_lab_results(
    case_id: CaseId,
    body: LabImportCreate,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_LAB_IMPORT)],
) -> LabImportPublic:
    """Laboratory results from an HL7 v2 ORU^R01 message merged into the next version of the case. A message with
    segments decidua does not read is refused (422, each segment and why) unless ``skip_unread``."""
    saved, read = ctx.service.import_lab(
        case_id, body.message, who.user.id, skip_unread=body.skip_unread, base_version=body.base_version
    )
    return LabImportPublic(case=case_public(saved.view), read=len(read.values), unread=list(read.unread))
