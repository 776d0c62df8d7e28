"""``decidua users``: create accounts (the first admin before the first start) and list them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from decidua.adapters.cli.common import fail, out_console
from decidua.adapters.cli.serve import DatabaseUrl, database_url_or_default, describe, open_store_or_exit
from decidua.adapters.store import DuplicateUser, Role

app = typer.Typer(no_args_is_help=True)


@app.command("add")
def add_command(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (the login name).", show_default=False)],
    role: Annotated[
        Role, typer.Option(help="clinician: cases; admin: also users and the audit trail.")
    ] = Role.CLINICIAN,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user; the password is asked for (twice) unless --password-stdin is given."""
    from decidua.adapters.api.auth import Passwords, check_email

    try:
        email = check_email(email)
    except ValueError as exc:
        fail(escape(str(exc)))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = Passwords().hash(password)
    except ValueError as exc:
        fail(f"password: {exc}")
    url = database_url_or_default(database_url)
    store = open_store_or_exit(url)
    try:
        user = store.add_user(email, hashed, role)
        store.record_audit(None, "user.add", None, "ok", f"user {user.id} ({role.value}) from the command line")
    except DuplicateUser as exc:
        fail(escape(str(exc)))
    finally:
        store.engine.dispose()
    out_console.print(f"user {user.email} ({user.role.value}) added to {describe(url)}", markup=False, soft_wrap=True)


@app.command("list")
def list_command(database_url: DatabaseUrl = None) -> None:
    """List the users (e-mail, role, active)."""
    store = open_store_or_exit(database_url_or_default(database_url))
    try:
        found = store.list_users()
    finally:
        store.engine.dispose()
    table = Table("id", "e-mail", "role", "status", "created (UTC)", box=box.SIMPLE)
    for u in found:
        status = "active" if u.active else "inactive"
        table.add_row(str(u.id), u.email, u.role.value, status, u.created_at.strftime("%Y-%m-%d %H:%M"))
    out_console.print(table)
