"""Users (add, activate or deactivate, change role, set a password) and the audit trail: admins only."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from decidua.adapters.store import DuplicateUser, LastAdmin, Role
from decidua.app import users as user_admin
from decidua.app.accounts import Login
from decidua.core.errors import InputInvalid, shown
from decidua.entrypoints.http.deps import ADMIN, AppContext, Ctx, UserId
from decidua.entrypoints.http.pages.common import page, problems_text

router = APIRouter(prefix="/admin", include_in_schema=False)


def users_page(
    ctx: AppContext, request: Request, status: int = 200, error: str | None = None, notice: str | None = None
) -> HTMLResponse:
    users = ctx.store.list_users()
    return page(ctx, request, "users.html", status, users=users, roles=list(Role), error=error, notice=notice)


@router.get("/users")
def users(request: Request, ctx: Ctx, who: Annotated[Login, ADMIN]) -> HTMLResponse:
    return users_page(ctx, request)


@router.post("/users")
async def add_user(request: Request, ctx: Ctx, who: Annotated[Login, ADMIN]) -> Response:
    form = await request.form()
    email, role = (str(form.get(k, "")).strip() for k in ("email", "role"))
    password = str(form.get("password", ""))  # never trimmed: every character counts
    try:
        await run_in_threadpool(
            user_admin.add_user, ctx.store, ctx.sessions.passwords, who.user.id, email, password, role
        )
    except InputInvalid as exc:
        return users_page(ctx, request, 422, problems_text(exc))
    except DuplicateUser as exc:
        return users_page(ctx, request, 422, f"email: {exc}")
    return RedirectResponse("/admin/users", status_code=303)


async def change_user(ctx: AppContext, request: Request, who: Login, user_id: int, **change: str) -> Response:
    try:
        await run_in_threadpool(user_admin.change_user, ctx.store, who.user.id, user_id, **change)
    except InputInvalid as exc:
        problem = exc.problems[0]
        return users_page(ctx, request, 422, f"{problem.path}: got {shown(problem.value)}; allowed: {problem.allowed}")
    except LastAdmin as exc:
        return users_page(ctx, request, 409, str(exc))
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/active")
async def set_active(request: Request, user_id: UserId, ctx: Ctx, who: Annotated[Login, ADMIN]) -> Response:
    value = (await request.form()).get("active")
    return await change_user(ctx, request, who, user_id, active=value if isinstance(value, str) else "")


@router.post("/users/{user_id}/role")
async def set_role(request: Request, user_id: UserId, ctx: Ctx, who: Annotated[Login, ADMIN]) -> Response:
    role = (await request.form()).get("role")
    return await change_user(ctx, request, who, user_id, role=role if isinstance(role, str) else "")


@router.post("/users/{user_id}/password")
async def reset_password(request: Request, user_id: UserId, ctx: Ctx, who: Annotated[Login, ADMIN]) -> Response:
    form = await request.form()
    new, again = str(form.get("password", "")), str(form.get("password_again", ""))
    try:
        user = await run_in_threadpool(
            user_admin.set_password, ctx.store, ctx.sessions.passwords, who.user.id, user_id, new, again
        )
    except InputInvalid as exc:
        return users_page(ctx, request, 422, "password: " + "; ".join(p.allowed for p in exc.problems))
    return users_page(ctx, request, notice=f"New password set for {user.email}; their sessions have ended.")


@router.get("/audit")
def audit(request: Request, ctx: Ctx, who: Annotated[Login, ADMIN], case: str = "") -> HTMLResponse:
    """The audit trail, newest first; ``case`` (a case number) filters it, empty shows all."""
    wanted = int(case) if re.fullmatch(r"[0-9]{1,9}", case.strip()) else None
    error = None if wanted is not None or not case.strip() else f"case: got {case!r}; allowed: a case number"
    status = 200 if error is None else 422
    entries = ctx.store.list_audit(wanted) if error is None else []
    users = {u.id: u.email for u in ctx.store.list_users()}
    return page(ctx, request, "audit.html", status, entries=entries, case=wanted, error=error, users=users)
