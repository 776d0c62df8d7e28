"""Helpers the JSON API and the pages share: the client's address, the session cookie, reports and FHIR export."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from decidua.adapters import fhir
from decidua.adapters.report import render_html
from decidua.adapters.report.plots import PLOT_LOCK
from decidua.adapters.report.pool import pdf_pool
from decidua.app.accounts import Login
from decidua.app.audit import AuditAction
from decidua.app.cases import CaseKey, CaseView
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


def report_response(ctx: AppContext, login: Login, case_id: CaseKey, fmt: str) -> Response:
    """The report of the latest version (shared by the API and the pages). The file is named by the case's number
    (a case id may hold characters a header cannot)."""

    def html(v: CaseView) -> str:
        with PLOT_LOCK:
            return render_html(v.case, v.assessment, ctx.kb)

    def render(v: CaseView) -> tuple[int, int, bytes | str]:
        if fmt == "pdf":
            # WeasyPrint runs in the PDF workers, so that reports cannot starve other requests; with the workers busy
            # and their queue full, PdfBusy (503 with Retry-After, audited "busy") before anything is rendered
            pdf = pdf_pool(ctx.settings.pdf_workers, ctx.settings.pdf_queue).render(lambda: html(v))
            return v.version.case_id, v.version.version, pdf
        return v.version.case_id, v.version.version, html(v)

    action = AuditAction.CASE_REPORT_PDF if fmt == "pdf" else AuditAction.CASE_REPORT_HTML
    number, version, body = ctx.service.export(case_id, login.user.id, action, render)
    filename = f"decidua-case-{number}-v{version}.{fmt}"
    if fmt == "pdf":
        disposition = {"content-disposition": f'attachment; filename="{filename}"'}
        return Response(body, media_type="application/pdf", headers=disposition)
    return HTMLResponse(body, headers={"content-disposition": f'inline; filename="{filename}"'})


def fhir_response(ctx: AppContext, login: Login, case_id: CaseKey) -> Response:
    number, bundle = ctx.service.export(
        case_id,
        login.user.id,
        AuditAction.CASE_FHIR_EXPORT,
        lambda v: (v.version.case_id, fhir.export_bundle(v.case, v.assessment, ctx.kb)),
    )
    filename = f"decidua-case-{number}.fhir.json"
    return JSONResponse(
        bundle,
        media_type="application/fhir+json",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
