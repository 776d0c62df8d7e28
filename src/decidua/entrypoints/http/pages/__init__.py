"""Server-rendered pages of the web application (Jinja2 templates, plain CSS, a little vanilla JS): module-level
routers (account, cases, admin) and the few pages of their own here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from decidua.app.accounts import Login
from decidua.app.presenters import kb_data
from decidua.entrypoints.http.deps import LOGGED_IN, Ctx
from decidua.entrypoints.http.pages import account, admin, cases
from decidua.entrypoints.http.pages.common import page

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> Response:
    return RedirectResponse("/cases", status_code=303)


@router.get("/kb")
def knowledge_base(request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
    return page(ctx, request, "kb.html", kb=kb_data(ctx.kb))


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


router.include_router(account.router)
router.include_router(cases.router)
router.include_router(admin.router)

__all__ = ["router"]
