"""Logging in and out, the first start's setup page, and the user's own account."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from decidua.adapters.store import NotFirstUser
from decidua.app.accounts import Login, LoginThrottled, change_own_password, log_in, log_out, same, set_up_first_admin
from decidua.core.errors import InputInvalid
from decidua.entrypoints.http.deps import CSRF_FIELD, LOGGED_IN, AppContext, Ctx
from decidua.entrypoints.http.pages.common import LOGIN_CSRF_COOKIE, page, problems_text, safe_next
from decidua.entrypoints.http.shared import client_of, set_session_cookie

router = APIRouter(include_in_schema=False)


# --- login ---
@router.get("/login")
def login_form(request: Request, ctx: Ctx, next: str | None = None) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    first_start = not ctx.store.has_users()
    response = page(ctx, request, "login.html", login_csrf=token, next=safe_next(next), first_start=first_start)
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
async def login(request: Request, ctx: Ctx) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    sent = form.get(CSRF_FIELD)
    if not same(sent if isinstance(sent, str) else None, token):
        message = "The login form expired; please try again."
        return page(ctx, request, "login.html", 403, login_csrf=token or "", next=target, error=message)
    try:
        user = await run_in_threadpool(log_in, ctx.sessions, email, password, client_of(request))
    except LoginThrottled as exc:
        message = str(exc)[0].upper() + str(exc)[1:] + "."
        locked = page(ctx, request, "login.html", 429, login_csrf=token or "", next=target, error=message, email=email)
        locked.headers["retry-after"] = str(exc.retry_after)
        return locked
    if user is None:
        message = "Wrong e-mail address or password, or the account is not active."
        return page(ctx, request, "login.html", 401, login_csrf=token or "", next=target, error=message, email=email)
    cookie, _ = await run_in_threadpool(ctx.sessions.start, user)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(ctx, response, cookie)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> Response:
    log_out(ctx.sessions, who, request.cookies.get(ctx.settings.cookie_name))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(ctx.settings.cookie_name, path="/")
    return response


# --- first start: the first admin ---
def setup_open(ctx: AppContext, token: str | None) -> bool:
    return ctx.setup_token is not None and same(token, ctx.setup_token) and not ctx.store.has_users()


@router.get("/setup")
def setup_form(request: Request, ctx: Ctx, token: str = "") -> Response:
    """The one-time page of the first start (its link is printed by ``decidua serve``)."""
    if not setup_open(ctx, token):
        return RedirectResponse("/login", status_code=303)
    return page(ctx, request, "setup.html", token=token, email="", error=None)


@router.post("/setup")
async def setup(request: Request, ctx: Ctx) -> Response:
    form = await request.form()
    token, email = str(form.get("token", "")), str(form.get("email", "")).strip()
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    if not await run_in_threadpool(setup_open, ctx, token):
        return RedirectResponse("/login", status_code=303)
    try:
        cookie, _ = await run_in_threadpool(set_up_first_admin, ctx.sessions, email, password, again)
    except InputInvalid as exc:
        return page(ctx, request, "setup.html", 422, token=token, email=email, error=problems_text(exc))
    except NotFirstUser:
        return RedirectResponse("/login", status_code=303)
    response = RedirectResponse("/cases", status_code=303)
    set_session_cookie(ctx, response, cookie)
    return response


# --- the user's own account ---
@router.get("/account")
def account(request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
    return page(ctx, request, "account.html", errors={}, done=request.query_params.get("changed") == "1")


@router.post("/account/password")
async def change_password(request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> Response:
    form = await request.form()
    current, new, again = (str(form.get(k, "")) for k in ("current_password", "new_password", "new_password_again"))
    try:
        await run_in_threadpool(change_own_password, ctx.sessions, who, current, new, again, client_of(request))
    except InputInvalid as exc:
        errors = {p.path: p.allowed for p in exc.problems}
        return page(ctx, request, "account.html", 422, errors=errors, done=False)
    except LoginThrottled as exc:
        locked = page(ctx, request, "account.html", 429, errors={"current_password": str(exc)}, done=False)
        locked.headers["retry-after"] = str(exc.retry_after)
        return locked
    return RedirectResponse("/account?changed=1", status_code=303)
