"""A case as an HL7 FHIR R4 Bundle: export, and import as a new case or the next version of one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from decidua.app.accounts import Login
from decidua.app.audit import AuditAction
from decidua.entrypoints.http.api.public import CASE_ERRORS, CONFLICT, saved_public
from decidua.entrypoints.http.api.schemas import CaseSavedPublic
from decidua.entrypoints.http.deps import MAX_ID, CaseRef, Ctx, patient
from decidua.entrypoints.http.shared import fhir_response

router = APIRouter(tags=["fhir"])


@router.get(
    "/cases/{case_id}/fhir",
    responses={**CASE_ERRORS, 200: {"content": {"application/fhir+json": {}}, "description": "A FHIR Bundle."}},
    response_class=JSONResponse,
)
def fhir_export(
    case_id: CaseRef, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_FHIR_EXPORT, by_reference=True)]
) -> Response:
    """The case and its assessment as an HL7 FHIR R4 Bundle (type collection)."""
    return fhir_response(ctx, who, case_id)


@router.post(
    "/fhir/import",
    status_code=201,
    responses={
        **CASE_ERRORS,
        200: {"model": CaseSavedPublic, "description": "Unchanged: nothing stored."},
        409: CONFLICT,
    },
)
def fhir_import(
    bundle: dict[str, Any],
    response: Response,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_FHIR_IMPORT)],
    base_version: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="The version the import starts from: 409 if the case changed since."),
    ] = None,
    replace: Annotated[
        bool, Query(description="Store the Bundle even where it lacks what the latest version holds.")
    ] = False,
) -> CaseSavedPublic:
    """A case from a FHIR Bundle: a new case (201), the next version of the case with the same case id (201), or
    nothing when it equals that case's latest version (200). A Bundle that lacks anything the latest version holds
    (pregnancies, investigations, a typing) is refused (409, one problem per thing) unless ``replace=true``."""
    saved = ctx.service.import_bundle(bundle, who.user.id, base_version=base_version, replace=replace)
    if not saved.changed:
        response.status_code = 200
    return saved_public(saved)
