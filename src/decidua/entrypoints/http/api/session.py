"""Logging in and out, and changing one's own password: a cookie session with a CSRF token for writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from decidua.app.accounts import Login, NotAuthenticated, change_own_password, log_in, log_out
from decidua.entrypoints.http.api.public import ERRORS, INVALID, THROTTLED, user_public
from decidua.entrypoints.http.api.schemas import ErrorPublic, LoginCreate, PasswordChange, SessionPublic
from decidua.entrypoints.http.deps import LOGGED_IN, Ctx
from decidua.entrypoints.http.shared import client_of, set_session_cookie

router = APIRouter(prefix="/session", tags=["session"])


@router.post("", responses={401: {"model": ErrorPublic}, 429: THROTTLED})
def login(body: LoginCreate, request: Request, response: Response, ctx: Ctx) -> SessionPublic:
    """Log in: sets the session cookie and returns the CSRF token for later writes.

    After too many failed logins for an e-mail address it is locked for a while (429 with Retry-After).
    """
    user = log_in(ctx.sessions, body.email, body.password, client_of(request))
    if user is None:
        raise NotAuthenticated("wrong e-mail address or password, or the account is not active")
    token, session = ctx.sessions.start(user)
    set_session_cookie(ctx, response, token)
    return SessionPublic(
        user=user_public(user), csrf_token=session.csrf_token, idle_timeout_minutes=ctx.settings.session_idle_minutes
    )


@router.get("", responses=ERRORS)
def current_session(ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> SessionPublic:
    """The logged-in user and the session's CSRF token."""
    return SessionPublic(
        user=user_public(who.user), csrf_token=who.csrf_token, idle_timeout_minutes=ctx.settings.session_idle_minutes
    )


@router.delete("", status_code=204, responses=ERRORS)
def logout(request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> Response:
    log_out(ctx.sessions, who, request.cookies.get(ctx.settings.cookie_name))
    response = Response(status_code=204)
    response.delete_cookie(ctx.settings.cookie_name, path="/")
    return response


@router.put("/password", status_code=204, responses={**ERRORS, 422: INVALID, 429: THROTTLED})
def change_password(body: PasswordChange, request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> Response:
    """Change your own password. Your other sessions end; this one stays. A wrong current password counts
    as a failed login."""
    new = body.new_password
    change_own_password(ctx.sessions, who, body.current_password, new, new, client_of(request))
    return Response(status_code=204)
