"""Server-rendered pages: login, case list with search, structured case form, case view, import, KB, admin."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from decidua.adapters import fhir
from decidua.adapters.report.plots import PLOT_LOCK
from decidua.adapters.store import DuplicateCase, DuplicateUser, LastAdmin, NotFirstUser, Role, StaleVersion
from decidua.app import users as user_admin
from decidua.app.accounts import (
    Login,
    LoginThrottled,
    change_own_password,
    log_in,
    log_out,
    same,
    set_up_first_admin,
)
from decidua.app.audit import AuditAction, audited
from decidua.app.casefile import load_text
from decidua.app.presenters import WORDS, kb_data, not_indicated_heading
from decidua.core.errors import CaseInvalid, InputError, InputInvalid, Problem, shown
from decidua.entrypoints.http.context import (
    ADMIN,
    CSRF_FIELD,
    LOGGED_IN,
    MAX_ID,
    AppContext,
    CaseId,
    UserId,
    VersionNo,
    patient,
    render,
)
from decidua.entrypoints.http.pages.forms import CONDITION_LABELS, SECTIONS, form_state, form_to_data
from decidua.entrypoints.http.pages.views import STATUS_LABELS, grouped_findings, plots
from decidua.entrypoints.http.shared import client_of, fhir_response, report_response, set_session_cookie

LOGIN_CSRF_COOKIE = "decidua_login_csrf"
PAGE_SIZE = 50  # cases per page of the case list
PageNo = Annotated[int, Query(alias="page", ge=1, le=MAX_ID, description="The page of the list, from 1.")]
MAX_UPLOAD = 5 * 1024 * 1024


def safe_next(target: str | None) -> str:
    """Only a local path may follow the login (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cases"
    parts = urlsplit(target)
    return "/cases" if parts.scheme or parts.netloc else target


def problems_text(exc: InputInvalid) -> str:
    """The problems of a refused form, one after the other (a password is never quoted back)."""
    return "; ".join(f"{p.path}: {p.allowed}" if p.value is None else p.to_string() for p in exc.problems)


def _text_items(form: FormData) -> list[tuple[str, str]]:
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


def build_web_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    svc = ctx.service

    def page(request: Request, name: str, who: Login | None, status: int = 200, **values: Any) -> HTMLResponse:
        return render(ctx, request, name, status, status_labels=STATUS_LABELS, **values)

    def form_page(
        request: Request,
        who: Login,
        data: dict[str, Any],
        problems: list[Problem] | tuple[Problem, ...] = (),
        case_id: int | None = None,
        status: int = 200,
        base_version: int | None = None,
    ) -> HTMLResponse:
        return page(
            request,
            "case_form.html",
            who,
            status,
            state=form_state(data, problems),
            sections=SECTIONS,
            condition_labels=CONDITION_LABELS,
            case_id=case_id,
            base_version=base_version,
        )

    # --- login ---
    @router.get("/login")
    def login_form(request: Request, next: str | None = None) -> HTMLResponse:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        first_start = not ctx.store.has_users()
        response = page(request, "login.html", None, login_csrf=token, next=safe_next(next), first_start=first_start)
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=ctx.settings.secure_cookies,
            path="/login",
        )
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        target = safe_next(str(form.get("next", "")))
        token = request.cookies.get(LOGIN_CSRF_COOKIE)
        sent = form.get(CSRF_FIELD)
        if not same(sent if isinstance(sent, str) else None, token):
            message = "The login form expired; please try again."
            return page(request, "login.html", None, 403, login_csrf=token or "", next=target, error=message)
        try:
            user = await run_in_threadpool(log_in, ctx.sessions, email, password, client_of(request))
        except LoginThrottled as exc:
            message = str(exc)[0].upper() + str(exc)[1:] + "."
            locked = page(
                request, "login.html", None, 429, login_csrf=token or "", next=target, error=message, email=email
            )
            locked.headers["retry-after"] = str(exc.retry_after)
            return locked
        if user is None:
            message = "Wrong e-mail address or password, or the account is not active."
            return page(
                request, "login.html", None, 401, login_csrf=token or "", next=target, error=message, email=email
            )
        cookie, _ = await run_in_threadpool(ctx.sessions.start, user)
        response = RedirectResponse(target, status_code=303)
        set_session_cookie(ctx, response, cookie)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    # --- first start: the first admin ---
    def setup_open(token: str | None) -> bool:
        return ctx.setup_token is not None and same(token, ctx.setup_token) and not ctx.store.has_users()

    @router.get("/setup")
    def setup_form(request: Request, token: str = "") -> Response:
        """The one-time page of the first start (its link is printed by ``decidua serve``)."""
        if not setup_open(token):
            return RedirectResponse("/login", status_code=303)
        return page(request, "setup.html", None, token=token, email="", error=None)

    @router.post("/setup")
    async def setup(request: Request) -> Response:
        form = await request.form()
        token, email = str(form.get("token", "")), str(form.get("email", "")).strip()
        password, again = str(form.get("password", "")), str(form.get("password_again", ""))
        if not await run_in_threadpool(setup_open, token):
            return RedirectResponse("/login", status_code=303)
        try:
            cookie, _ = await run_in_threadpool(set_up_first_admin, ctx.sessions, email, password, again)
        except InputInvalid as exc:
            return page(request, "setup.html", None, 422, token=token, email=email, error=problems_text(exc))
        except NotFirstUser:
            return RedirectResponse("/login", status_code=303)
        response = RedirectResponse("/cases", status_code=303)
        set_session_cookie(ctx, response, cookie)
        return response

    # --- the user's own account ---
    @router.get("/account")
    def account(request: Request, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
        return page(request, "account.html", who, errors={}, done=request.query_params.get("changed") == "1")

    @router.post("/account/password")
    async def change_password(request: Request, who: Annotated[Login, LOGGED_IN]) -> Response:
        form = await request.form()
        current, new, again = (str(form.get(k, "")) for k in ("current_password", "new_password", "new_password_again"))
        try:
            await run_in_threadpool(change_own_password, ctx.sessions, who, current, new, again, client_of(request))
        except InputInvalid as exc:
            errors = {p.path: p.allowed for p in exc.problems}
            return page(request, "account.html", who, 422, errors=errors, done=False)
        except LoginThrottled as exc:
            locked = page(request, "account.html", who, 429, errors={"current_password": str(exc)}, done=False)
            locked.headers["retry-after"] = str(exc.retry_after)
            return locked
        return RedirectResponse("/account?changed=1", status_code=303)

    @router.post("/logout")
    def logout(request: Request, who: Annotated[Login, LOGGED_IN]) -> Response:
        log_out(ctx.sessions, who, request.cookies.get(ctx.settings.cookie_name))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(ctx.settings.cookie_name, path="/")
        return response

    # --- cases ---
    @router.get("/")
    def home() -> Response:
        return RedirectResponse("/cases", status_code=303)

    @router.get("/cases")
    def case_list(
        request: Request, who: Annotated[Login, patient(AuditAction.CASE_LIST)], q: str = "", page_no: PageNo = 1
    ) -> HTMLResponse:
        """Cases, newest first, :data:`PAGE_SIZE` to a page; ``q`` searches the case id."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_LIST):
            total = ctx.store.count_cases(q or None)
            pages = max(1, -(-total // PAGE_SIZE))
            current = min(page_no, pages)
            cases = ctx.store.list_cases(q or None, PAGE_SIZE, (current - 1) * PAGE_SIZE)
        first = (current - 1) * PAGE_SIZE + 1 if cases else 0
        return page(
            request,
            "cases.html",
            who,
            cases=cases,
            q=q,
            total=total,
            page_no=current,
            pages=pages,
            first=first,
            last=first + len(cases) - 1 if cases else 0,
        )

    @router.get("/cases/new")
    def new_case(request: Request, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
        return form_page(request, who, {"woman": {}})

    @router.post("/cases/new")
    async def create_case(request: Request, who: Annotated[Login, patient(AuditAction.CASE_CREATE)]) -> Response:
        data, problems = form_to_data(_text_items(await request.form()))
        try:
            version = await run_in_threadpool(_create, who, data, problems)
        except CaseInvalid as exc:
            return form_page(request, who, data, exc.problems, status=422)
        except DuplicateCase as exc:
            return form_page(request, who, data, [Problem("case_id", data.get("case_id"), str(exc))], status=409)
        return RedirectResponse(f"/cases/{version}", status_code=303)

    def _create(who: Login, data: dict[str, Any], problems: list[Problem]) -> int:
        with audited(ctx.store, who.user.id, AuditAction.CASE_CREATE) as note:
            if problems:
                raise CaseInvalid(problems)
            return svc.create(data, who.user.id, note).case_id

    @router.get("/cases/import")
    def import_form(request: Request, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
        return page(request, "import.html", who, text="", problems=[], error=None)

    @router.post("/cases/import")
    async def import_case(request: Request, who: Annotated[Login, patient(AuditAction.CASE_IMPORT)]) -> Response:
        form = await request.form(max_part_size=MAX_UPLOAD + 1)  # pasted text up to the same limit as a file
        text = str(form.get("text") or "")
        upload = form.get("file")
        raw = await upload.read(MAX_UPLOAD + 1) if isinstance(upload, UploadFile) and upload.filename else None
        await form.close()
        if raw is not None and len(raw) > MAX_UPLOAD:
            return page(request, "import.html", who, 413, text="", problems=[], error="The file is over 5 MB.")
        if raw is not None:
            text = raw.decode("utf-8", errors="replace")
        try:
            case_id = await run_in_threadpool(_import, who, text)
        except CaseInvalid as exc:
            return page(
                request, "import.html", who, 422, text=text, problems=exc.problems, error=str(exc).splitlines()[0]
            )
        except (InputError, DuplicateCase) as exc:
            status = 409 if isinstance(exc, DuplicateCase) else 422
            return page(request, "import.html", who, status, text=text, problems=[], error=str(exc))
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    def _import(who: Login, text: str) -> int:
        """A case file (YAML or JSON), or a FHIR Bundle (JSON with resourceType Bundle)."""
        with audited(ctx.store, who.user.id, AuditAction.CASE_IMPORT) as note:
            data = load_text(text, "yaml", "the import") if text.strip() else None  # YAML reads JSON too
            if data is None:
                raise InputError("paste a case file or a FHIR Bundle, or choose a file")
            if isinstance(data, dict) and data.get("resourceType") == "Bundle":
                note.detail = "fhir"
                version, _ = svc.import_case(fhir.import_bundle(data), who.user.id, note)
                return version.case_id
            return svc.create(data, who.user.id, note).case_id

    @router.get("/cases/{case_id}")
    def case_view(
        request: Request, case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_READ)]
    ) -> HTMLResponse:
        with audited(ctx.store, who.user.id, AuditAction.CASE_READ, case_id):
            view = svc.view(case_id)
            with PLOT_LOCK:
                svgs = plots(view.case, view.assessment, ctx.kb)
        result = view.stored.result
        return page(
            request,
            "case_view.html",
            who,
            view=view,
            result=result,
            groups=grouped_findings(result, ctx.kb),
            plots=svgs,
            refs={r["key"]: i + 1 for i, r in enumerate(result.get("references", []))},
            not_indicated_heading=not_indicated_heading(result["pathway"]["workup_indicated"]),
            words=WORDS,
            case_yaml=yaml.safe_dump(view.version.data, sort_keys=False, allow_unicode=True),
            history=ctx.store.list_assessments(case_id),
        )

    @router.get("/cases/{case_id}/versions/{version}")
    def version_view(
        request: Request, case_id: CaseId, version: VersionNo, who: Annotated[Login, patient(AuditAction.CASE_READ)]
    ) -> HTMLResponse:
        with audited(ctx.store, who.user.id, AuditAction.CASE_READ, case_id) as note:
            note.detail = f"version {version}"
            v = ctx.store.get_version(case_id, version)
            versions = ctx.store.list_versions(case_id)
        text = yaml.safe_dump(v.data, sort_keys=False, allow_unicode=True)
        return page(request, "version.html", who, v=v, text=text, versions=versions)

    @router.get("/cases/{case_id}/edit")
    def edit_form(
        request: Request, case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_READ)]
    ) -> HTMLResponse:
        with audited(ctx.store, who.user.id, AuditAction.CASE_READ, case_id) as note:
            note.detail = "edit form"
            v = ctx.store.get_version(case_id)
        return form_page(request, who, v.data, case_id=case_id, base_version=v.version)

    @router.post("/cases/{case_id}/edit")
    async def update_case(
        request: Request, case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_UPDATE)]
    ) -> Response:
        form = await request.form()
        data, problems = form_to_data(_text_items(form))
        raw_base = str(form.get("base_version", ""))
        base = int(raw_base) if re.fullmatch(r"[0-9]{1,9}", raw_base) else None
        if base is None:
            problems.append(Problem("base_version", raw_base, "the version the edit started from; reopen the form"))
        try:
            await run_in_threadpool(_update, who, case_id, data, problems, base)
        except CaseInvalid as exc:
            return form_page(request, who, data, exc.problems, case_id=case_id, status=422, base_version=base)
        except StaleVersion as exc:
            # What was typed stays on the page; saving it again now deliberately replaces the newer version.
            problem = Problem("base_version", exc.base, str(exc) + "; or save again to store what is shown here")
            return form_page(request, who, data, [problem], case_id=case_id, status=409, base_version=exc.latest)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    def _update(who: Login, case_id: int, data: dict[str, Any], problems: list[Problem], base: int | None) -> None:
        with audited(ctx.store, who.user.id, AuditAction.CASE_UPDATE, case_id) as note:
            if problems:
                ctx.store.get_case(case_id)
                raise CaseInvalid(problems)
            svc.update(case_id, data, who.user.id, base, note)

    @router.get("/cases/{case_id}/report.pdf")
    def report_pdf(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_REPORT_PDF)]) -> Response:
        return report_response(ctx, who, case_id, "pdf")

    @router.get("/cases/{case_id}/report.html")
    def report_html(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_REPORT_HTML)]) -> Response:
        return report_response(ctx, who, case_id, "html")

    @router.get("/cases/{case_id}/fhir.json")
    def fhir_export(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_FHIR_EXPORT)]) -> Response:
        return fhir_response(ctx, who, case_id)

    @router.get("/cases/{case_id}/case.yaml")
    def case_file(case_id: CaseId, who: Annotated[Login, patient(AuditAction.CASE_EXPORT)]) -> Response:
        with audited(ctx.store, who.user.id, AuditAction.CASE_EXPORT, case_id):
            v = ctx.store.get_version(case_id)
        body = yaml.safe_dump(v.data, sort_keys=False, allow_unicode=True)
        return Response(
            body,
            media_type="application/yaml",
            headers={"content-disposition": f'attachment; filename="decidua-case-{case_id}-v{v.version}.yaml"'},
        )

    # --- knowledge base ---
    @router.get("/kb")
    def knowledge_base(request: Request, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
        return page(request, "kb.html", who, kb=kb_data(ctx.kb))

    # --- admin ---
    def users_page(
        request: Request, who: Login, status: int = 200, error: str | None = None, notice: str | None = None
    ) -> HTMLResponse:
        users = ctx.store.list_users()
        return page(request, "users.html", who, status, users=users, roles=list(Role), error=error, notice=notice)

    @router.get("/admin/users")
    def users(request: Request, who: Annotated[Login, ADMIN]) -> HTMLResponse:
        return users_page(request, who)

    @router.post("/admin/users")
    async def add_user(request: Request, who: Annotated[Login, ADMIN]) -> Response:
        form = await request.form()
        email, role = (str(form.get(k, "")).strip() for k in ("email", "role"))
        password = str(form.get("password", ""))  # never trimmed: every character counts
        try:
            await run_in_threadpool(
                user_admin.add_user, ctx.store, ctx.sessions.passwords, who.user.id, email, password, role
            )
        except InputInvalid as exc:
            return users_page(request, who, 422, problems_text(exc))
        except DuplicateUser as exc:
            return users_page(request, who, 422, f"email: {exc}")
        return RedirectResponse("/admin/users", status_code=303)

    async def change_user(request: Request, who: Login, user_id: int, **change: str) -> Response:
        try:
            await run_in_threadpool(user_admin.change_user, ctx.store, who.user.id, user_id, **change)
        except InputInvalid as exc:
            problem = exc.problems[0]
            return users_page(
                request, who, 422, f"{problem.path}: got {shown(problem.value)}; allowed: {problem.allowed}"
            )
        except LastAdmin as exc:
            return users_page(request, who, 409, str(exc))
        return RedirectResponse("/admin/users", status_code=303)

    @router.post("/admin/users/{user_id}/active")
    async def set_active(request: Request, user_id: UserId, who: Annotated[Login, ADMIN]) -> Response:
        value = (await request.form()).get("active")
        return await change_user(request, who, user_id, active=value if isinstance(value, str) else "")

    @router.post("/admin/users/{user_id}/role")
    async def set_role(request: Request, user_id: UserId, who: Annotated[Login, ADMIN]) -> Response:
        role = (await request.form()).get("role")
        return await change_user(request, who, user_id, role=role if isinstance(role, str) else "")

    @router.post("/admin/users/{user_id}/password")
    async def reset_password(request: Request, user_id: UserId, who: Annotated[Login, ADMIN]) -> Response:
        form = await request.form()
        new, again = str(form.get("password", "")), str(form.get("password_again", ""))
        passwords = ctx.sessions.passwords
        try:
            user = await run_in_threadpool(
                user_admin.set_password, ctx.store, passwords, who.user.id, user_id, new, again
            )
        except InputInvalid as exc:
            return users_page(request, who, 422, "password: " + "; ".join(p.allowed for p in exc.problems))
        return users_page(request, who, notice=f"New password set for {user.email}; their sessions have ended.")

    @router.get("/admin/audit")
    def audit(request: Request, who: Annotated[Login, ADMIN], case: str = "") -> HTMLResponse:
        """The audit trail, newest first; ``case`` (a case number) filters it, empty shows all."""
        wanted = int(case) if re.fullmatch(r"[0-9]{1,9}", case.strip()) else None
        error = None if wanted is not None or not case.strip() else f"case: got {case!r}; allowed: a case number"
        status = 200 if error is None else 422
        entries = ctx.store.list_audit(wanted) if error is None else []
        users = {u.id: u.email for u in ctx.store.list_users()}
        return page(request, "audit.html", who, status, entries=entries, case=wanted, error=error, users=users)

    @router.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    return router


__all__ = ["build_web_router", "safe_next"]
