"""Managing accounts (admins on the pages and the API, or the server's command line): add a user, change a
role or whether the user may log in, set a new password. Each is written once here and audited, refusals too."""

from __future__ import annotations

from decidua.app.accounts import Passwords, new_account, reset_password
from decidua.app.audit import AuditAction, Outcome, audited, record
from decidua.app.ports import AccountStore, Role, User, UserNotFound
from decidua.core.errors import InputInvalid, Problem, shown

COMMAND_LINE = " from the command line"


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InputInvalid([Problem("role", value, allowed)], "the user change") from None


def _active(value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise InputInvalid([Problem("active", value, "true, false")], "the user change")


def add_user(
    store: AccountStore,
    passwords: Passwords,
    actor: int | None,
    email: str,
    password: str,
    role: Role | str,
    *,
    via: str = "",
) -> User:
    """A new account. The address, password and role are checked inside the audited block, so a refused one
    (invalid, or a duplicate address: ``conflict``) has its audit row like an accepted one."""
    with audited(store, actor, AuditAction.USER_ADD) as note:
        problems: list[Problem] = []
        try:
            address, hashed = new_account(passwords, email, password)
        except InputInvalid as exc:
            problems += exc.problems
        try:
            checked_role = _role(role)
        except InputInvalid as exc:
            problems += exc.problems
        if problems:
            raise InputInvalid(problems, "the new account")
        user = store.add_user(address, hashed, checked_role)
        note.detail = f"user {user.id} ({user.role.value}){via}"
        return user


def change_user(
    store: AccountStore,
    actor: int | None,
    user_id: int,
    role: Role | str | None = None,
    active: bool | str | None = None,
    *,
    via: str = "",
) -> User:
    """Change a user's role and/or whether they may log in; each change is one audit row, refusals too.

    Raises
    ------
    UserNotFound
        No such user (audited as ``user.change``, ``not_found``).
    InputInvalid
        A role or activity value that means nothing (audited under the action it would have been).
    LastAdmin
        Demoting or deactivating the only active admin (audited as ``conflict``).
    """
    user = store.get_user(user_id)
    if user is None:
        record(store, actor, AuditAction.USER_CHANGE, Outcome.NOT_FOUND, f"user {user_id}")
        raise UserNotFound(f"no user {user_id}")
    if role is not None:
        try:
            wanted = _role(role)
        except InputInvalid:
            record(store, actor, AuditAction.USER_ROLE, Outcome.INVALID, f"user {user_id}: got {shown(role)}")
            raise
        if wanted is not user.role:
            with audited(store, actor, AuditAction.USER_ROLE) as note:
                note.detail = f"user {user_id}: {wanted.value}{via}"
                user = store.set_role(user_id, wanted)
    if active is not None:
        try:
            wanted_active = _active(active)
        except InputInvalid:
            record(store, actor, AuditAction.USER_ACTIVE, Outcome.INVALID, f"user {user_id}: got {shown(active)}")
            raise
        if wanted_active is not user.active:
            action = AuditAction.USER_ACTIVE if wanted_active else AuditAction.USER_INACTIVE
            with audited(store, actor, action) as note:
                note.detail = f"user {user_id}{via}"
                user = store.set_active(user_id, wanted_active)
    return user


def set_password(
    store: AccountStore, passwords: Passwords, actor: int | None, user_id: int, new: str, again: str, *, via: str = ""
) -> User:
    """An admin's (or the command line's) reset: a new password, the failed-login lockout lifted, every session of
    the user ended.

    Raises
    ------
    InputInvalid
        With the problem at ``new_password`` (the two differ, or too short).
    UserNotFound
        No such user.
    """
    with audited(store, actor, AuditAction.USER_PASSWORD_RESET) as note:
        note.detail = f"user {user_id}{via}"
        if new != again:
            raise InputInvalid([Problem("new_password", None, "the two new passwords differ")], "password change")
        try:
            hashed = passwords.hash(new)
        except ValueError as exc:
            raise InputInvalid([Problem("new_password", None, str(exc))], "password change") from None
        if store.get_user(user_id) is None:
            raise UserNotFound(f"no user {user_id}")
        return reset_password(store, user_id, hashed)
