"""The one place where errors become HTTP responses (JSON under ``/api``, pages elsewhere).

* ``CaseInvalid`` / ``InputInvalid`` / ``InputError`` / request validation -> 422 with field-level problems
  (path, value, allowed)
* ``NotFound`` (no such case, version or user) -> 404; ``DuplicateCase``, ``DuplicateUser``, ``ImportRemoves`` (one
  problem per thing the import lacks), other ``StoreError`` -> 409
* ``PdfUnavailable`` (WeasyPrint's system libraries missing) -> 503 naming what to install; ``PdfBusy`` (the PDF
  workers' queue full) -> 503 with ``Retry-After``
* ``NotAuthenticated`` -> 401 (pages: a redirect to the login form); ``Forbidden`` (also CSRF) -> 403
* ``LoginThrottled`` -> 429 with ``Retry-After`` (seconds)
* anything else -> 500 with no detail; the log names the exception type and frames, never its message,
  which may quote patient data.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from decidua.adapters.report import PdfUnavailable
from decidua.adapters.store import DuplicateCase, DuplicateUser, NotFound, StoreError
from decidua.app.accounts import Forbidden, LoginThrottled, NotAuthenticated
from decidua.app.cases import ImportRemoves
from decidua.core.errors import MAX_SHOWN, CaseInvalid, InputError, InputInvalid, Problem, shown
from decidua.entrypoints.http.deps import CASES_PREFIX, AppContext, render

log = logging.getLogger("decidua.web")
access_log = logging.getLogger("decidua.web.access")


FASTAPI_BODY_ERROR = "There was an error parsing the body"  # FastAPI's 400 for a body it could not decode


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


def _jsonable(value: object) -> object:
    """The rejected value as JSON, when it is short and plain (no NaN); otherwise its shortened text."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")  # an unpaired surrogate cannot be sent
    except (TypeError, ValueError):
        return shown(value)
    return value if len(text) <= MAX_SHOWN else shown(value)


def problem_data(problems: list[Problem] | tuple[Problem, ...]) -> list[dict[str, Any]]:
    return [{"path": p.path, "value": _jsonable(p.value), "allowed": p.allowed} for p in problems]


def _validation_problems(exc: RequestValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        out.append(Problem(".".join(loc) or "(body)", err.get("input"), str(err.get("msg", "invalid"))))
    return out


def install_error_handlers(app: FastAPI, ctx: AppContext) -> None:
    def respond(request: Request, status: int, detail: str, problems: list[Problem] | None = None) -> Response:
        if is_api(request):
            return JSONResponse({"detail": detail, "problems": problem_data(problems or [])}, status_code=status)
        return render(
            ctx, request, "error.html", status_code=status, status=status, detail=detail, problems=problems or []
        )

    async def input_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InputInvalid)
        subject = "the case" if isinstance(exc, CaseInvalid) else f"the {exc.source}"  # a case's source may be a path
        return respond(request, 422, f"{subject} is invalid ({len(exc.problems)} problem(s))", list(exc.problems))

    async def input_error(request: Request, exc: Exception) -> Response:
        return respond(request, 422, str(exc))

    async def request_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return respond(request, 422, "the request is invalid", _validation_problems(exc))

    async def not_found(request: Request, exc: Exception) -> Response:
        return respond(request, 404, str(exc))

    async def conflict(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ImportRemoves):
            allowed = f"held by version {exc.version}; absent from the import (import with replace to remove it)"
            return respond(request, 409, str(exc), [Problem(r.path, r.was, allowed) for r in exc.removals])
        path = "case_id" if isinstance(exc, DuplicateCase) else "email" if isinstance(exc, DuplicateUser) else ""
        problems = [Problem(path, None, str(exc))] if path else []
        return respond(request, 409, str(exc), problems)

    async def unauthenticated(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return JSONResponse({"detail": str(exc), "problems": []}, status_code=401)
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=303)
        return RedirectResponse("/login", status_code=303)

    async def throttled(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginThrottled)
        response = respond(request, 429, str(exc))
        response.headers["retry-after"] = str(exc.retry_after)
        return response

    async def forbidden(request: Request, exc: Exception) -> Response:
        return respond(request, 403, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_ERROR:  # e.g. bytes that are not UTF-8 in a string
            return respond(request, 422, "the request body is not JSON", [Problem("(body)", None, "JSON in UTF-8")])
        response = respond(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():  # e.g. a 405's Allow, which RFC 9110 requires
            response.headers[name] = value
        return response

    async def unavailable(request: Request, exc: Exception) -> Response:
        response = respond(request, 503, str(exc))
        retry_after = getattr(exc, "retry_after", None)  # PdfBusy: the PDF workers' queue is full
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    app.add_exception_handler(PdfUnavailable, unavailable)
    app.add_exception_handler(InputInvalid, input_invalid)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(StoreError, conflict)
    app.add_exception_handler(NotAuthenticated, unauthenticated)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(LoginThrottled, throttled)
    app.add_exception_handler(StarletteHTTPException, http_error)


class SafeErrors:
    """Outermost guard: any unexpected exception becomes a bare 500, logged without its message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("internal error %s on %s %s\n%s", type(exc).__name__, scope["method"], scope["path"], frames)
            if not started:
                response = JSONResponse({"detail": "internal error", "problems": []}, status_code=500)
                await response(scope, receive, send)


class AccessLog:
    """One line per request: method, path (never the query string, which may hold a search), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            ms = (time.perf_counter() - start) * 1000
            access_log.info("%s %s %s %.0fms", scope["method"], loggable_path(scope), status or 500, ms)


API_CASE_PATHS = frozenset(
    {"versions", "assessment", "assessments", "audit", "lab-results", "report.pdf", "report.html", "fhir"}
)
PAGE_CASE_PATHS = frozenset({"versions", "edit", "lab", "report.pdf", "report.html", "fhir.json", "case.yaml"})


def _known(rest: list[str], names: frozenset[str]) -> list[str]:
    """The rest of a case path if it is one of the routes' (a name, then numbers), else ``...``: a case id typed
    without percent-encoding its ``/`` would otherwise leave its tail in the log."""
    if not rest or rest == [""] or (rest[0] in names and all(p.isdigit() for p in rest[1:])):
        return rest
    return ["..."]


def loggable_path(scope: Any) -> str:
    """The request path as sent (percent-encoded), so that a ``%0A`` in a URL cannot start a forged log line;
    control characters of a decoded path are escaped when the server gives no raw path. A case id (a pseudonym:
    patient data) never reaches the log: the API's is written ``{case_id}``, and a page path that does not name a
    case by its number ``{case}``; the audit trail names the case by its number."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope["path"]).encode("unicode_escape").decode()
    if path.startswith(CASES_PREFIX):
        parts = path[len(CASES_PREFIX) :].split("/")
        return CASES_PREFIX + "/".join(["{case_id}", *_known(parts[1:], API_CASE_PATHS)])
    if path.startswith("/cases/"):
        parts = path[len("/cases/") :].split("/")
        first = parts[0] if parts[0].isdigit() or parts[0] in ("new", "import", "") else "{case}"
        return "/cases/" + "/".join([first, *_known(parts[1:], PAGE_CASE_PATHS)])
    return path


class HeadAsGet:
    """HEAD is answered as GET without the body (uptime monitors and ``curl -I`` use it; FastAPI routes are GET)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


SECURITY_HEADERS = [
    (
        b"content-security-policy",
        (
            b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            b"script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        ),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """CSP, no sniffing, no referrer; pages with patient data are never cached (``no-store``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
