"""Users and the audit trail (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from decidua.app import users as user_admin
from decidua.app.accounts import Login
from decidua.app.ports import CaseNotFound
from decidua.entrypoints.http.api.public import CASE_ERRORS, CONFLICT_USER, ERRORS, INVALID, audit_public, user_public
from decidua.entrypoints.http.api.schemas import (
    AuditPublic,
    ErrorPublic,
    PasswordReset,
    UserCreate,
    UserPatch,
    UserPublic,
)
from decidua.entrypoints.http.deps import ADMIN, CaseRef, Ctx, UserId

router = APIRouter(tags=["admin"])


@router.get("/users", responses=ERRORS)
def list_users(ctx: Ctx, who: Annotated[Login, ADMIN]) -> list[UserPublic]:
    return [user_public(u) for u in ctx.store.list_users()]


@router.post("/users", status_code=201, responses={**ERRORS, 409: {"model": ErrorPublic}})
def add_user(body: UserCreate, ctx: Ctx, who: Annotated[Login, ADMIN]) -> UserPublic:
    user = user_admin.add_user(ctx.store, ctx.sessions.passwords, who.user.id, body.email, body.password, body.role)
    return user_public(user)


@router.patch("/users/{user_id}", responses={**ERRORS, 404: {"model": ErrorPublic}, 409: CONFLICT_USER})
def change_user(user_id: UserId, body: UserPatch, ctx: Ctx, who: Annotated[Login, ADMIN]) -> UserPublic:
    """Activate or deactivate a user (deactivating ends their sessions), or change their role; the only
    active admin stays an active admin. Each change is audited, refusals too."""
    return user_public(user_admin.change_user(ctx.store, who.user.id, user_id, body.role, body.active))


@router.put("/users/{user_id}/password", responses={**ERRORS, 404: {"model": ErrorPublic}, 422: INVALID})
def reset_password(user_id: UserId, body: PasswordReset, ctx: Ctx, who: Annotated[Login, ADMIN]) -> UserPublic:
    """Set a user's password (forgotten, or locked after failed logins): the lockout is lifted and the
    user's sessions end."""
    new = body.password
    return user_public(user_admin.set_password(ctx.store, ctx.sessions.passwords, who.user.id, user_id, new, new))


@router.get("/cases/{case_id}/audit", responses=CASE_ERRORS)
def case_audit(case_id: CaseRef, ctx: Ctx, who: Annotated[Login, ADMIN]) -> list[AuditPublic]:
    """The audit trail of one case, named by its case id like every case route (admins). The rows name the case
    by its number (``case_number``): the audit trail holds no case ids."""
    found = ctx.store.find_case(case_id)
    if found is None:
        raise CaseNotFound(f"no case with case id {case_id!r}")
    return [audit_public(e) for e in ctx.store.list_audit(found.id)]


@router.get("/audit", responses=ERRORS)
async def audit(ctx: Ctx, who: Annotated[Login, ADMIN], limit: int = 500) -> list[AuditPublic]:
    entries = await run_in_threadpool(ctx.store.list_audit, None, max(1, min(limit, 5000)))
    return [audit_public(e) for e in entries]
