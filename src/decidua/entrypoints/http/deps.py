"""What every route depends on: the application's context (built once by the app factory and kept in
``app.state``), the logged-in user with the access check, and the path parameters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from decidua.adapters.store import CaseStore, Role
from decidua.app.accounts import (
    ADMIN_ONLY,
    CLINICAL,
    CsrfRejected,
    Forbidden,
    Login,
    NotAuthenticated,
    Sessions,
    require_role,
    same,
)
from decidua.app.audit import AuditAction, Outcome, record
from decidua.app.cases import CaseService
from decidua.core.validation import MAX_CASE_ID
from decidua.entrypoints.http.settings import Settings
from decidua.knowledge.loader import KnowledgeBase

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ID = 2**31 - 1  # ids and version numbers are PostgreSQL integers; larger ones cannot name anything
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case number.")]
CASES_PREFIX = "/api/cases/"  # the API's routes of one case, addressed by its case id (see CaseIdSegment)
VersionNo = Annotated[int, Path(ge=1, le=MAX_ID, description="The version number, from 1.")]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user number.")]
OptionalVersion = Annotated[int | None, Query(ge=1, le=MAX_ID, description="A version number; default: the latest.")]
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    store: CaseStore
    kb: KnowledgeBase
    service: CaseService
    sessions: Sessions
    templates: Jinja2Templates
    clock: Callable[[], dt.datetime]
    database: str  # "sqlite", "postgresql": shown on the pages, never the URL (it may hold a password)
    setup_token: str | None = None  # the first start's one-time setup link (``/setup?token=...``); None: no setup


async def context(request: Request) -> AppContext:
    """The application's context, set by :func:`decidua.entrypoints.http.app.create_app`."""
    ctx: AppContext = request.app.state.context
    return ctx


Ctx = Annotated[AppContext, Depends(context)]


async def case_reference(  # async: FastAPI runs a plain function dependency in a worker thread
    case_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=12 * MAX_CASE_ID,  # a 4-byte UTF-8 character percent-encoded is 12
            description="The case id (the case file's pseudonymous reference), percent-encoded: `/` is `%2F`.",
        ),
    ],
) -> str:
    """The case id of an API path (kept percent-encoded by :class:`CaseIdSegment` so that it may hold a ``/``)."""
    return unquote(case_id)


CaseRef = Annotated[str, Depends(case_reference)]


class CaseIdSegment:
    """Keeps the case id segment of ``/api/cases/{case_id}/...`` percent-encoded while routing, so that a case id
    holding ``/`` (``2024%2F17``) is one path segment; :func:`case_reference` decodes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        path = scope.get("path", "")
        if isinstance(raw, bytes) and path.startswith(CASES_PREFIX):
            segments = raw.decode("latin-1").split("/")
            if len(segments) > 3 and unquote("/".join(segments)) == path:
                rest = "".join("/" + unquote(s) for s in segments[4:])
                scope = {**scope, "path": CASES_PREFIX + segments[3] + rest}
        await self.app(scope, receive, send)


async def _case_number(request: Request, ctx: AppContext, by_reference: bool) -> int | None:
    """The number of the case a refused request named, for its audit row (None: no such case)."""
    raw = request.path_params.get("case_id")
    if raw is None:
        return None
    if by_reference:
        found = await run_in_threadpool(ctx.store.find_case, unquote(raw))
        return None if found is None else found.id
    try:
        number = int(raw)
    except ValueError:
        return None
    return number if 1 <= number <= MAX_ID else None


async def check_csrf(request: Request, login: Login) -> None:
    """An unsafe request must carry the session's CSRF token (header, or form field for HTML forms)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not same(sent, login.csrf_token):
        raise CsrfRejected("missing or wrong CSRF token")


def guard(
    roles: frozenset[Role], action: AuditAction | None = None, *, by_reference: bool = False
) -> Callable[[Request], Awaitable[Login]]:
    """A dependency: the logged-in user, with the role checked and (on unsafe methods) the CSRF token.

    With ``action`` (every patient endpoint) a failure writes an audit row (``unauthenticated`` or ``denied``) with
    the case's number, read from the path's ``case_id`` (a case id with ``by_reference``, else a number).
    The application's context comes from ``request.app.state.context``, set by the app factory.
    """

    async def dependency(request: Request) -> Login:
        ctx: AppContext = request.app.state.context
        token = request.cookies.get(ctx.settings.cookie_name)
        try:
            login = await run_in_threadpool(ctx.sessions.resume, token)
        except NotAuthenticated:
            if action:
                case_id = await _case_number(request, ctx, by_reference)
                await run_in_threadpool(record, ctx.store, None, action, Outcome.UNAUTHENTICATED, None, case_id)
            raise
        try:
            require_role(login, roles)
            if request.method not in SAFE_METHODS:
                await check_csrf(request, login)
        except Forbidden as exc:
            if action:
                case_id = await _case_number(request, ctx, by_reference)
                detail = type(exc).__name__
                await run_in_threadpool(record, ctx.store, login.user.id, action, Outcome.DENIED, detail, case_id)
            raise
        request.state.login = login
        return login

    return dependency


def render(ctx: AppContext, request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page with what every page shows: the user, the CSRF token, the knowledge base and database in use."""
    who: Login | None = getattr(request.state, "login", None)
    context = {
        "who": who,
        "csrf_token": who.csrf_token if who else "",
        "kb_version": ctx.kb.kb_version,
        "database": ctx.database,
        "idle_minutes": ctx.settings.session_idle_minutes,
        **values,
    }
    return ctx.templates.TemplateResponse(request, name, context, status_code=status_code)


def patient(action: AuditAction, *, by_reference: bool = False) -> Any:
    """``Depends`` for a patient endpoint: clinicians and admins; failures audited as ``action`` (with the case
    named in the path by its number, or by its case id with ``by_reference``)."""
    return Depends(guard(CLINICAL, action, by_reference=by_reference))


LOGGED_IN: Any = Depends(guard(CLINICAL))
ADMIN: Any = Depends(guard(ADMIN_ONLY))
