"""``decidua users``: create accounts (the first admin before the first start), list them, change their role or
activity, set a password."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Annotated

import typer

from decidua.app.ports import Role
from decidua.entrypoints.cli.common import escape, fail, out_console, print_json, print_table
from decidua.entrypoints.cli.serve import DatabaseUrl, database_url_or_default, describe, open_store_or_exit

if TYPE_CHECKING:
    from decidua.adapters.store.sql import SqlCaseStore
    from decidua.app.accounts import Passwords
    from decidua.app.ports import User

app = typer.Typer(no_args_is_help=True)


@cache
def passwords() -> Passwords:
    """The password hasher, made when a command first needs it (it hashes a dummy password when made: ~0.1 s)."""
    from decidua.app.accounts import Passwords

    return Passwords()


def read_password(password_stdin: bool) -> str:
    """The password from standard input (one line), or asked for twice at the terminal."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("the password is asked for at a terminal; without one, pass it on standard input with --password-stdin")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
]


def checked_account(email: str, password_stdin: bool) -> tuple[str, str]:
    """The login name and a password read from standard input or the terminal, both checked; exits with code 2
    naming the field when either is not allowed (before any database is opened)."""
    from decidua.app.accounts import check_email

    try:
        address = check_email(email)
    except ValueError as exc:
        fail(escape(str(exc)))
    password = read_password(password_stdin)
    try:
        passwords().hash(password)
    except ValueError as exc:
        fail(f"password: {exc}")
    return address, password


@contextmanager
def existing_user(email: str, database_url: str | None) -> Iterator[tuple[SqlCaseStore, User]]:
    """The store of an existing database and the user with this (checked) e-mail address; exits with code 2
    naming what is missing. The store is closed when the block ends."""
    url = database_url_or_default(database_url)
    store = existing_store(url)
    try:
        user = store.find_user(email)
        if user is None:
            fail(f"no user {escape(email)} in {escape(describe(url))}")
        yield store, user
    finally:
        store.engine.dispose()


def existing_store(url: str) -> SqlCaseStore:
    """The store at ``url``, which must exist already (a mistyped SQLite path is an error, not a new database)."""
    from decidua.adapters.store import sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        fail(
            f"--database-url: no database at {escape(str(path))}; give the database `decidua serve` uses "
            "(--database-url or DECIDUA_DATABASE_URL)"
        )
    return open_store_or_exit(url)


@app.command("add")
def add_command(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (the login name).", show_default=False)],
    role: Annotated[
        Role, typer.Option(help="clinician: cases; admin: also users and the audit trail.")
    ] = Role.CLINICIAN,
    password_stdin: PasswordStdin = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user; the password is asked for (twice) unless --password-stdin is given."""
    from decidua.app import users as user_admin
    from decidua.app.ports import DuplicateUser

    email, password = checked_account(email, password_stdin)
    url = database_url_or_default(database_url)
    store = open_store_or_exit(url)
    try:
        user = user_admin.add_user(store, passwords(), None, email, password, role, via=user_admin.COMMAND_LINE)
    except DuplicateUser as exc:
        fail(escape(str(exc)))
    finally:
        store.engine.dispose()
    out_console.print(f"user {user.email} ({user.role.value}) added to {describe(url)}", markup=False, soft_wrap=True)


@app.command("password")
def password_command(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (the login name).", show_default=False)],
    password_stdin: PasswordStdin = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a user's password (a forgotten one, or the only admin locked out): lifts a failed-login lockout and
    ends the user's sessions."""
    from decidua.app import users as user_admin

    email, password = checked_account(email, password_stdin)
    with existing_user(email, database_url) as (store, user):
        user_admin.set_password(store, passwords(), None, user.id, password, password, via=user_admin.COMMAND_LINE)
    out_console.print(f"new password set for {user.email}; their sessions have ended", markup=False, soft_wrap=True)


@app.command("change")
def change_command(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (the login name).", show_default=False)],
    role: Annotated[Role | None, typer.Option(help="The new role.")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Let the user log in, or not (ends their sessions).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a user's role or whether they may log in; the only active admin stays an active admin."""
    from decidua.app import users as user_admin
    from decidua.app.accounts import check_email
    from decidua.app.ports import LastAdmin

    if role is None and active is None:
        fail("give --role and/or --active/--inactive")
    try:
        email = check_email(email)
    except ValueError as exc:
        fail(escape(str(exc)))
    with existing_user(email, database_url) as (store, user):
        try:
            user = user_admin.change_user(store, None, user.id, role, active, via=user_admin.COMMAND_LINE)
        except LastAdmin as exc:
            fail(escape(str(exc)))
    status = "active" if user.active else "inactive"
    out_console.print(f"{user.email}: {user.role.value}, {status}", markup=False, soft_wrap=True)


@app.command("list")
def list_command(
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: id, email, role, active, created_at.")] = False,
) -> None:
    """List the users (e-mail, role, active)."""
    store = existing_store(database_url_or_default(database_url))
    try:
        found = store.list_users()
    finally:
        store.engine.dispose()
    if as_json:
        print_json(
            [
                {"id": u.id, "email": u.email, "role": u.role.value, "active": u.active, "created_at": u.created_at}
                for u in found
            ]
        )
        return
    from rich import box
    from rich.table import Table

    table = Table("id", "e-mail", "role", "status", "created (UTC)", box=box.SIMPLE)
    for u in found:
        status = "active" if u.active else "inactive"
        table.add_row(str(u.id), u.email, u.role.value, status, u.created_at.strftime("%Y-%m-%d %H:%M"))
    print_table(table)
