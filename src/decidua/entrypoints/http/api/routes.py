"""The JSON API under ``/api`` (OpenAPI at ``/openapi.json``). Cookie sessions; send ``X-CSRF-Token`` on writes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from decidua.adapters import fhir
from decidua.adapters.store import AuditEntry, CaseSummary, CaseVersion, StoredAssessment, User
from decidua.app import users as user_admin
from decidua.app.accounts import Login, NotAuthenticated, change_own_password, log_in, log_out
from decidua.app.audit import AuditAction, audited
from decidua.app.casefile import case_schema
from decidua.app.cases import CaseView
from decidua.app.presenters import kb_data
from decidua.entrypoints.http.api.schemas import (
    AssessmentPublic,
    AuditPublic,
    CaseCreate,
    CasePublic,
    CaseSummaryPublic,
    CaseUpdate,
    CaseVersionPublic,
    ErrorPublic,
    FhirImportPublic,
    HealthPublic,
    LoginCreate,
    PasswordChange,
    PasswordReset,
    SessionPublic,
    UserCreate,
    UserPatch,
    UserPublic,
)
from decidua.entrypoints.http.context import (
    ADMIN,
    LOGGED_IN,
    MAX_ID,
    AppContext,
    CaseId,
    OptionalVersion,
    UserId,
    VersionNo,
    patient,
)
from decidua.entrypoints.http.shared import client_of, fhir_response, report_response, set_session_cookie

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Not logged in, or the session timed out."},
    403: {"model": ErrorPublic, "description": "The role does not allow this, or the CSRF token is missing."},
}
CONFLICT: dict[str, Any] = {"model": ErrorPublic, "description": "A case with that id exists, or it changed meanwhile."}
INVALID: dict[str, Any] = {"model": ErrorPublic, "description": "Invalid input: one problem per field."}
THROTTLED: dict[str, Any] = {
    "model": ErrorPublic,
    "description": "Too many failed logins for this e-mail address: locked for a while (see Retry-After).",
}
CONFLICT_USER: dict[str, Any] = {"model": ErrorPublic, "description": "The only active admin must stay one."}
MAX_PAGE = 500
CASE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorPublic, "description": "No such case (or version)."},
    422: {"model": ErrorPublic, "description": "Invalid case: one problem per field (path, value, allowed)."},
}


def user_public(u: User) -> UserPublic:
    return UserPublic(id=u.id, email=u.email, role=u.role, active=u.active, created_at=u.created_at)


def summary_public(s: CaseSummary) -> CaseSummaryPublic:
    return CaseSummaryPublic(
        id=s.id,
        reference=s.reference,
        latest_version=s.latest_version,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def version_public(v: CaseVersion) -> CaseVersionPublic:
    return CaseVersionPublic(
        case_id=v.case_id,
        reference=v.reference,
        version=v.version,
        created_at=v.created_at,
        created_by=v.created_by,
        case=v.data,
    )


def assessment_public(case_id: int, version: int, a: StoredAssessment) -> AssessmentPublic:
    return AssessmentPublic(
        case_id=case_id, version=version, kb_version=a.kb_version, created_at=a.created_at, result=a.result
    )


def case_public(v: CaseView) -> CasePublic:
    return CasePublic(
        id=v.version.case_id,
        reference=v.version.reference,
        version=version_public(v.version),
        assessment=assessment_public(v.version.case_id, v.version.version, v.stored),
        versions=[x.version for x in v.versions],
    )


def audit_public(e: AuditEntry) -> AuditPublic:
    return AuditPublic(
        id=e.id, at=e.at, user_id=e.user_id, action=e.action, case_id=e.case_id, outcome=e.outcome, detail=e.detail
    )


def build_api_router(ctx: AppContext) -> APIRouter:
    # Every 422 has decidua's shape (one problem per field), not FastAPI's default.
    router = APIRouter(prefix="/api", tags=["api"], responses={422: INVALID})
    svc = ctx.service

    @router.get("/health", tags=["meta"])
    def health() -> HealthPublic:
        """Liveness: the knowledge base in force and the database kind (no login needed)."""
        return HealthPublic(status="ok", kb_version=ctx.kb.kb_version, database=ctx.database)

    # --- session ---
    @router.post("/session", tags=["session"], responses={401: {"model": ErrorPublic}, 429: THROTTLED})
    def login(body: LoginCreate, request: Request, response: Response) -> SessionPublic:
        """Log in: sets the session cookie and returns the CSRF token for later writes.

        After too many failed logins for an e-mail address it is locked for a while (429 with Retry-After).
        """
        user = log_in(ctx.sessions, body.email, body.password, client_of(request))
        if user is None:
            raise NotAuthenticated("wrong e-mail address or password, or the account is not active")
        token, session = ctx.sessions.start(user)
        set_session_cookie(ctx, response, token)
        return SessionPublic(
            user=user_public(user),
            csrf_token=session.csrf_token,
            idle_timeout_minutes=ctx.settings.session_idle_minutes,
        )

    @router.get("/session", tags=["session"], responses=ERRORS)
    def current_session(who: Annotated[Login, LOGGED_IN]) -> SessionPublic:
        """The logged-in user and the session's CSRF token."""
        return SessionPublic(
            user=user_public(who.user),
            csrf_token=who.csrf_token,
            idle_timeout_minutes=ctx.settings.session_idle_minutes,
        )

    @router.delete("/session", tags=["session"], status_code=204, responses=ERRORS)
    def logout(request: Request, who: Annotated[Login, LOGGED_IN]) -> Response:
        log_out(ctx.sessions, who, request.cookies.get(ctx.settings.cookie_name))
        response = Response(status_code=204)
        response.delete_cookie(ctx.settings.cookie_name, path="/")
        return response

    @router.put(
        "/session/password", tags=["session"], status_code=204, responses={**ERRORS, 422: INVALID, 429: THROTTLED}
    )
    def change_password(body: PasswordChange, request: Request, who: Annotated[Login, LOGGED_IN]) -> Response:
        """Change your own password. Your other sessions end; this one stays. A wrong current password counts
        as a failed login."""
        new = body.new_password
        change_own_password(ctx.sessions, who, body.current_password, new, new, client_of(request))
        return Response(status_code=204)

    # --- cases ---
    @router.get("/cases", tags=["cases"], responses=ERRORS)
    def list_cases(
        who: Annotated[Login, patient(AuditAction.CASE_LIST)],
        response: Response,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> list[CaseSummaryPublic]:
        """Cases, newest first, ``limit`` at a time from ``offset``; ``q`` searches the case id (pseudonymous
        reference). The header ``X-Total-Count`` gives how many cases match."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_LIST):
            found = ctx.store.list_cases(q, limit, offset)
            response.headers["x-total-count"] = str(ctx.store.count_cases(q))
            return [summary_public(s) for s in found]

    @router.post("/cases", tags=["cases"], status_code=201, responses={**CASE_ERRORS, 409: CONFLICT})
    def create_case(body: CaseCreate, who: Annotated[Login, patient(AuditAction.CASE_CREATE)]) -> CasePublic:
        """Store a new case (version 1) and its assessment."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_CREATE) as note:
            version = svc.create(body.case, who.user.id, note)
            return case_public(svc.view(version.case_id))

    @router.get("/cases/{case_id}", tags=["cases"], responses=CASE_ERRORS)
    def read_case(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_READ)]) -> CasePublic:
        """The latest version with its assessment under the knowledge base in force."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_READ, case_id):
            return case_public(svc.view(case_id))

    @router.put("/cases/{case_id}", tags=["cases"], responses={**CASE_ERRORS, 409: CONFLICT})
    def update_case(
        case_id: CaseId, body: CaseUpdate, who: Annotated[Login, patient(AuditAction.CASE_UPDATE)]
    ) -> CasePublic:
        """Store the next version (earlier versions stay unchanged) and its assessment. A case equal to the latest
        version stores nothing new."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_UPDATE, case_id) as note:
            svc.update(case_id, body.case, who.user.id, body.base_version, note)
            return case_public(svc.view(case_id))

    @router.get("/cases/{case_id}/versions", tags=["cases"], responses=CASE_ERRORS)
    def list_versions(
        case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_VERSIONS)]
    ) -> list[CaseVersionPublic]:
        with audited(ctx.store, who.user.id, AuditAction.CASE_VERSIONS, case_id):
            return [version_public(v) for v in ctx.store.list_versions(case_id)]

    @router.get("/cases/{case_id}/versions/{version}", tags=["cases"], responses=CASE_ERRORS)
    def read_version(
        case_id: CaseId, version: VersionNo, who: Annotated[Login, patient(AuditAction.CASE_READ)]
    ) -> CaseVersionPublic:
        with audited(ctx.store, who.user.id, AuditAction.CASE_READ, case_id) as note:
            note.detail = f"version {version}"
            return version_public(ctx.store.get_version(case_id, version))

    @router.get("/cases/{case_id}/assessment", tags=["cases"], responses=CASE_ERRORS)
    def read_assessment(
        case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_ASSESSMENT)], version: OptionalVersion = None
    ) -> AssessmentPublic:
        """The assessment of a version (the latest by default) under the knowledge base in force."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_ASSESSMENT, case_id):
            v = svc.view(case_id, version)
            return assessment_public(case_id, v.version.version, v.stored)

    @router.get("/cases/{case_id}/assessments", tags=["cases"], responses=CASE_ERRORS)
    def list_assessments(
        case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_ASSESSMENTS)]
    ) -> list[AssessmentPublic]:
        """Every stored assessment of the case, with the case version and kb_version each used."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_ASSESSMENTS, case_id):
            ctx.store.get_case(case_id)
            return [assessment_public(case_id, n, a) for n, a in ctx.store.list_assessments(case_id)]

    @router.get(
        "/cases/{case_id}/report.pdf",
        tags=["cases"],
        responses={**CASE_ERRORS, 200: {"content": {"application/pdf": {}}}},
        response_class=Response,
    )
    def report_pdf(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_REPORT_PDF)]) -> Response:
        return report_response(ctx, who, case_id, "pdf")

    @router.get(
        "/cases/{case_id}/report.html",
        tags=["cases"],
        responses={**CASE_ERRORS, 200: {"content": {"text/html": {}}, "description": "The report as a web page."}},
        response_class=Response,  # errors are JSON like everywhere under /api
    )
    def report_html(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_REPORT_HTML)]) -> Response:
        return report_response(ctx, who, case_id, "html")

    @router.get(
        "/cases/{case_id}/fhir",
        tags=["fhir"],
        responses={**CASE_ERRORS, 200: {"content": {"application/fhir+json": {}}, "description": "A FHIR Bundle."}},
        response_class=JSONResponse,
    )
    def fhir_export(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_FHIR_EXPORT)]) -> Response:
        """The case and its assessment as an HL7 FHIR R4 Bundle (type collection)."""
        return fhir_response(ctx, who, case_id)

    @router.post(
        "/fhir/import",
        tags=["fhir"],
        status_code=201,
        responses={
            **CASE_ERRORS,
            200: {"model": FhirImportPublic, "description": "Unchanged: nothing stored."},
            409: CONFLICT,
        },
    )
    def fhir_import(
        bundle: dict[str, Any], response: Response, who: Annotated[Login, patient(AuditAction.CASE_FHIR_IMPORT)]
    ) -> FhirImportPublic:
        """A case from a FHIR Bundle: a new case (201), the next version of the case with the same case id
        (201), or nothing when it equals that case's latest version (200)."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_FHIR_IMPORT) as note:
            version, created = svc.import_case(fhir.import_bundle(bundle), who.user.id, note)
            if note.detail == "unchanged":
                response.status_code = 200
            return FhirImportPublic(created=created, case=case_public(svc.view(version.case_id)))

    @router.get("/cases/{case_id}/audit", tags=["admin"], responses=CASE_ERRORS)
    def case_audit(case_id: CaseId, who: Annotated[Login, ADMIN]) -> list[AuditPublic]:
        """The audit trail of one case (admins)."""
        return [audit_public(e) for e in ctx.store.list_audit(case_id)]

    # --- knowledge base and schema (no patient data) ---
    @router.get("/kb", tags=["meta"], responses=ERRORS)
    def knowledge_base(who: Annotated[Login, LOGGED_IN]) -> dict[str, Any]:
        """The knowledge base in force: rules, thresholds, choices, options, citations, local overrides."""
        return kb_data(ctx.kb)

    @router.get("/schema/case", tags=["meta"], responses=ERRORS)
    def schema(who: Annotated[Login, LOGGED_IN]) -> dict[str, Any]:
        """JSON Schema (2020-12) of the case file."""
        return case_schema()

    # --- users and audit (admins) ---
    @router.get("/users", tags=["admin"], responses=ERRORS)
    def list_users(who: Annotated[Login, ADMIN]) -> list[UserPublic]:
        return [user_public(u) for u in ctx.store.list_users()]

    @router.post("/users", tags=["admin"], status_code=201, responses={**ERRORS, 409: {"model": ErrorPublic}})
    def add_user(body: UserCreate, who: Annotated[Login, ADMIN]) -> UserPublic:
        user = user_admin.add_user(ctx.store, ctx.sessions.passwords, who.user.id, body.email, body.password, body.role)
        return user_public(user)

    @router.patch(
        "/users/{user_id}", tags=["admin"], responses={**ERRORS, 404: {"model": ErrorPublic}, 409: CONFLICT_USER}
    )
    def change_user(user_id: UserId, body: UserPatch, who: Annotated[Login, ADMIN]) -> UserPublic:
        """Activate or deactivate a user (deactivating ends their sessions), or change their role; the only
        active admin stays an active admin. Each change is audited, refusals too."""
        return user_public(user_admin.change_user(ctx.store, who.user.id, user_id, body.role, body.active))

    @router.put(
        "/users/{user_id}/password", tags=["admin"], responses={**ERRORS, 404: {"model": ErrorPublic}, 422: INVALID}
    )
    def reset_password(user_id: UserId, body: PasswordReset, who: Annotated[Login, ADMIN]) -> UserPublic:
        """Set a user's password (forgotten, or locked after failed logins): the lockout is lifted and the
        user's sessions end."""
        new = body.password
        return user_public(user_admin.set_password(ctx.store, ctx.sessions.passwords, who.user.id, user_id, new, new))

    @router.get("/audit", tags=["admin"], responses=ERRORS)
    async def audit(who: Annotated[Login, ADMIN], limit: int = 500) -> list[AuditPublic]:
        entries = await run_in_threadpool(ctx.store.list_audit, None, max(1, min(limit, 5000)))
        return [audit_public(e) for e in entries]

    return router
