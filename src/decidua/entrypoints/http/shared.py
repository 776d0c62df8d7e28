"""Helpers the JSON API and the pages share: the client's address, the session cookie, reports and FHIR export."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from decidua.adapters import fhir
from decidua.adapters.report import render_html, render_pdf
from decidua.adapters.report.plots import PLOT_LOCK
from decidua.app.accounts import Login
from decidua.app.audit import AuditAction
from decidua.app.cases import CaseView
from decidua.entrypoints.http.deps import AppContext


def client_of(request: Request) -> str | None:
    """The client's address (behind a reverse proxy: the proxy's, unless uvicorn trusts its forwarded headers)."""
    return request.client.host if request.client else None


def set_session_cookie(ctx: AppContext, response: Response, token: str) -> None:
    response.set_cookie(
        ctx.settings.cookie_name,
        token,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
        path="/",
    )


def report_response(ctx: AppContext, login: Login, case_id: int, fmt: str) -> Response:
    """The report of the latest version (shared by the API and the pages)."""

    def render(v: CaseView) -> tuple[int, bytes | str]:
        with PLOT_LOCK:
            if fmt == "pdf":
                return v.version.version, render_pdf(v.case, v.assessment, ctx.kb)
            return v.version.version, render_html(v.case, v.assessment, ctx.kb)

    action = AuditAction.CASE_REPORT_PDF if fmt == "pdf" else AuditAction.CASE_REPORT_HTML
    version, body = ctx.service.export(case_id, login.user.id, action, render)
    filename = f"decidua-case-{case_id}-v{version}.{fmt}"
    if fmt == "pdf":
        disposition = {"content-disposition": f'attachment; filename="{filename}"'}
        return Response(body, media_type="application/pdf", headers=disposition)
    return HTMLResponse(body, headers={"content-disposition": f'inline; filename="{filename}"'})


def fhir_response(ctx: AppContext, login: Login, case_id: int) -> Response:
    bundle = ctx.service.export(
        case_id,
        login.user.id,
        AuditAction.CASE_FHIR_EXPORT,
        lambda v: fhir.export_bundle(v.case, v.assessment, ctx.kb),
    )
    filename = f"decidua-case-{case_id}.fhir.json"
    return JSONResponse(
        bundle,
        media_type="application/fhir+json",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
