"""Cases: list, create, read, edit, their versions and assessments, reports.

A case is addressed by its case id (the case file's pseudonymous reference, percent-encoded in the path), as
everywhere else in decidua; the database's number appears only as ``number`` in the answers (the audit trail
uses it). Each route parses the request, calls one case use case (:class:`decidua.app.cases.CaseService`, which
audits it) and shapes the answer; a create, an edit and an import answer in one shape (:class:`CaseSavedPublic`).

The answers that carry a stored assessment (about 100 KB of JSON) are written as JSON here, in the shape of their
documented response model (``response_model``, for OpenAPI), with the assessment's JSON as the store holds it put
in unparsed (:func:`answer`); a page of the case list is written from plain data (:func:`summary_data`) rather
than six models per case. Tests check that both give their model's JSON.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal

import pydantic_core
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from decidua.app.accounts import Login
from decidua.app.audit import AuditAction
from decidua.app.cases import CaseView, Saved
from decidua.app.ports import TRIAGE_COLUMNS, CaseFilter, CaseSummary, StatusWord, StoredAssessment
from decidua.core.findings import Status
from decidua.core.validation import MAX_CASE_ID
from decidua.entrypoints.http.api.public import (
    CASE_ERRORS,
    CONFLICT,
    ERRORS,
    assessment_public,
    case_public,
    saved_public,
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

_STAND_IN = {"decidua-result": secrets.token_hex(16)}  # where an answer's stored result goes (unguessable)
_STAND_IN_JSON = pydantic_core.to_json(_STAND_IN)


def _result_json(stored: StoredAssessment) -> bytes:
    text = stored.result_json
    return pydantic_core.to_json(stored.result) if text is None else text.encode()


def answer(view: CaseView, build: Callable[[CaseView], BaseModel], status_code: int = 200) -> Response:
    """The JSON of ``build(view)`` (a documented response model), with the stored assessment's result put in as the
    JSON text the store read (never parsed, validated or encoded again here: the store holds what
    :func:`~decidua.app.presenters.assessment_data` wrote)."""
    stored = view.stored
    stand_in = StoredAssessment(stored.id, stored.case_version_id, stored.kb_version, _STAND_IN, stored.created_at)
    body = build(dataclasses.replace(view, stored=stand_in)).model_dump_json().encode()
    head, found, tail = body.partition(_STAND_IN_JSON)
    if found and _STAND_IN_JSON not in tail:
        body = head + _result_json(stored) + tail
    else:  # a case holding the stand-in's text (it cannot guess it): the slow way
        body = build(view).model_dump_json().encode()
    return Response(body, status_code=status_code, media_type="application/json")


def _word(w: StatusWord) -> dict[str, str]:
    return {"status": w.status.value, "word": w.word}


def summary_data(s: CaseSummary) -> dict[str, Any]:
    """:func:`~decidua.entrypoints.http.api.public.summary_public` as plain data, in the model's field order (a test
    checks that both give the same JSON): a page of a hundred cases is written without making 600 models."""
    t = s.triage
    triage = {name: _word(getattr(t, name)) for name in TRIAGE_COLUMNS}
    return {
        "case_id": s.reference,
        "number": s.id,
        "latest_version": s.latest_version,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "triage": {**triage, "kb_version": t.kb_version, "assessed_at": t.assessed_at},
    }


def _saved(saved: Saved, status_code: int = 200) -> Response:
    return answer(saved.view, lambda v: saved_public(dataclasses.replace(saved, view=v)), status_code)


@router.get("/cases", responses=ERRORS, response_model=list[CaseSummaryPublic])
def list_cases(
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_LIST)],
    q: Annotated[
        str | None, Query(max_length=MAX_CASE_ID, description="Part of a case id (no case id is longer: 422).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    rpl: StatusQuery = None,
    rif: StatusQuery = None,
    blood_nk: StatusQuery = None,
    uterine_nk: StatusQuery = None,
    nk: Annotated[
        Literal["flagged"] | None,
        Query(description="`flagged`: only cases with the blood or the uterine NK flagged (as the page's filter)."),
    ] = None,
) -> Response:
    """Cases, newest first, ``limit`` at a time from ``offset``, each with the statuses of its latest version's
    stored assessment (``triage``); ``q`` searches the case id, ``rpl``, ``rif``, ``blood_nk``, ``uterine_nk`` and
    ``nk=flagged`` filter by them in the database, with the names and values the case list page uses. The header
    ``X-Total-Count`` gives how many cases match."""
    where = CaseFilter(rpl=rpl, rif=rif, blood_nk=blood_nk, uterine_nk=uterine_nk, any_nk_flagged=nk == "flagged")
    found = ctx.service.list_cases(who.user.id, q, limit, offset, where=where)
    page = pydantic_core.to_json([summary_data(s) for s in found.cases])
    return Response(page, media_type="application/json", headers={"x-total-count": str(found.total)})


@router.post("/cases", status_code=201, responses={**CASE_ERRORS, 409: CONFLICT}, response_model=CaseSavedPublic)
def create_case(body: CaseCreate, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_CREATE)]) -> Response:
    """Store a new case (version 1) and its assessment; a case id in use is a 409 (an edit is a PUT, an import
    over a stored case is `POST /api/fhir/import` or the web application's import)."""
    return _saved(Saved(ctx.service.create(body.case, who.user.id), created=True), 201)


@router.get("/cases/{case_id}", responses=CASE_ERRORS, response_model=CasePublic)
def read_case(
    case_id: CaseRef, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_READ, by_reference=True)]
) -> Response:
    """The latest version with its assessment under the knowledge base in force (the one stored for it; a new one
    is made and stored only when the knowledge base changed since)."""
    return answer(ctx.service.view(case_id, who.user.id), case_public)


@router.put("/cases/{case_id}", responses={**CASE_ERRORS, 409: CONFLICT}, response_model=CaseSavedPublic)
def update_case(
    case_id: CaseRef,
    body: CaseUpdate,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_UPDATE, by_reference=True)],
) -> Response:
    """Store the next version (earlier versions stay unchanged) and its assessment. A case equal to the latest
    version stores nothing new (``changed`` false)."""
    return _saved(ctx.service.update(case_id, body.case, who.user.id, body.base_version))


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


@router.get("/cases/{case_id}/assessment", responses=CASE_ERRORS, response_model=AssessmentPublic)
def read_assessment(
    case_id: CaseRef,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_ASSESSMENT, by_reference=True)],
    version: OptionalVersion = None,
) -> Response:
    """The assessment of a version (the latest by default) under the knowledge base in force."""
    return answer(
        ctx.service.assessment(case_id, who.user.id, version),
        lambda v: assessment_public(v.version.reference, v.version.version, v.stored),
    )


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
