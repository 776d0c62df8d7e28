"""The FastAPI application factory: everything it uses is passed in (settings, store, knowledge base, clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.templating import Jinja2Templates

from decidua import __version__
from decidua.adapters import fhir, hl7
from decidua.adapters.store import CaseStore, LoginPolicy
from decidua.app.accounts import Passwords, Sessions
from decidua.app.casefile import case_schema
from decidua.app.cases import CaseService
from decidua.app.presenters import SCOPE
from decidua.core.errors import shown
from decidua.entrypoints.http import api, pages
from decidua.entrypoints.http.deps import AppContext, CaseIdSegment
from decidua.entrypoints.http.errors import AccessLog, HeadAsGet, SafeErrors, SecurityHeaders, install_error_handlers
from decidua.entrypoints.http.limits import BodyLimit, BodyLimits
from decidua.entrypoints.http.pages.common import MAX_UPLOAD
from decidua.entrypoints.http.settings import Settings
from decidua.knowledge.loader import KnowledgeBase


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("decidua.entrypoints.http.pages", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["scope_text"] = SCOPE
    env.filters["show"] = shown  # repr, cut short
    env.filters["when"] = lambda d: d.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if d else ""
    return Jinja2Templates(env=env)


def create_app(
    settings: Settings,
    store: CaseStore,
    kb: KnowledgeBase,
    *,
    clock: Callable[[], dt.datetime] = utcnow,
    database: str = "sql",
    passwords: Passwords | None = None,
    setup_token: str | None = None,
) -> FastAPI:
    """The decidua web application: JSON API under ``/api`` (OpenAPI at ``/openapi.json``) and the pages.

    Parameters
    ----------
    settings
        Session timeouts, cookie security.
    store
        Where cases, assessments, users, sessions and the audit trail live (migrated already).
    kb
        The knowledge base in force (with any clinic override applied).
    clock
        The current time (UTC); tests pass a fake one to check the idle timeout.
    database
        The kind of database, shown on the pages ("sqlite", "postgresql"); never the URL.
    passwords
        The password hasher (argon2id with the library's defaults unless given).
    setup_token
        A secret for the first start: while the database has no users, ``/setup?token=...`` lets whoever holds
        it create the first admin (``decidua serve`` prints that link). ``None`` disables the setup page.
    """

    templates = _templates()
    passwords = passwords or Passwords()
    lockout = dt.timedelta(minutes=settings.login_lockout_minutes)  # also the window failures are counted in
    ctx = AppContext(
        settings=settings,
        store=store,
        kb=kb,
        service=CaseService(store, kb, read_bundle=fhir.import_bundle, read_lab=hl7.lab_import),
        sessions=Sessions(
            store,
            clock,
            dt.timedelta(minutes=settings.session_idle_minutes),
            dt.timedelta(hours=settings.session_max_hours),
            passwords,
            LoginPolicy(settings.login_max_failures, lockout, lockout),
            LoginPolicy(settings.login_max_failures_all_clients, lockout, lockout),
        ),
        templates=templates,
        clock=clock,
        database=database,
        setup_token=setup_token,
    )
    app = FastAPI(
        title="decidua",
        summary="Decision support for NK-cell and alloimmune causes of recurrent pregnancy loss; not a diagnosis.",
        version=__version__,
        description=f"Knowledge base {kb.kb_version} in force (the assessments name the version they used).",
        openapi_url="/openapi.json",
        docs_url=None,  # Swagger UI loads scripts from a CDN, which the pages' CSP forbids; /openapi.json serves
        redoc_url=None,
    )
    app.state.context = ctx
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented way to extend it
    install_error_handlers(app, ctx)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("decidua.entrypoints.http.pages", "static")]), name="static")
    limits = BodyLimits(json=settings.max_body_bytes, fhir=settings.max_fhir_bytes, upload=MAX_UPLOAD)
    app.add_middleware(BodyLimit, limits=limits)  # bodies over their limit refused before anything reads them
    app.add_middleware(CaseIdSegment)  # a case id with a `/` (`%2F`) stays one segment of /api/cases/...
    app.add_middleware(HeadAsGet)  # the routes see a GET, the access log still a HEAD
    app.add_middleware(SafeErrors)  # inside the access log, which sees its 500
    app.add_middleware(AccessLog)
    app.add_middleware(SecurityHeaders)
    return app


CASE_FILE = "CaseFile"  # the case file's schema in the OpenAPI components; its parts are CaseFile_<name>


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document with the ``case`` of a create or an edit declared by the case file's JSON Schema
    (the one ``decidua schema`` prints), its definitions moved into the components, so that a client or a
    property-based tester can generate a valid case from the spec alone."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        openapi_version=app.openapi_version,
    )
    schema = case_schema()
    definitions = schema.pop("$defs", {})
    for key in ("$schema", "$id"):
        schema.pop(key, None)

    def moved(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: f"#/components/schemas/{CASE_FILE}_{v.removeprefix('#/$defs/')}" if k == "$ref" else moved(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [moved(v) for v in node]
        return node

    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components[CASE_FILE] = moved(schema)
    components.update({f"{CASE_FILE}_{name}": moved(d) for name, d in definitions.items()})
    for body in ("CaseCreate", "CaseUpdate"):
        if body in components:
            described = components[body]["properties"]["case"].get("description", "")
            components[body]["properties"]["case"] = {
                "$ref": f"#/components/schemas/{CASE_FILE}",
                "description": described,
            }
    app.openapi_schema = spec
    return spec
