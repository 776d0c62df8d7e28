"""``decidua db``: back up the web application's database to one portable file, and restore it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decidua.entrypoints.cli.common import escape, fail, input_errors, out_console
from decidua.entrypoints.cli.serve import DatabaseUrl, database_url_or_default, describe, open_store_or_exit

app = typer.Typer(no_args_is_help=True)

BackupFile = Annotated[
    Path, typer.Argument(help="The backup file (gzip-compressed JSON Lines, e.g. decidua-2026-11-30.jsonl.gz).")
]


@app.command("backup")
def backup_command(file: BackupFile, database_url: DatabaseUrl = None) -> None:
    """Write every user, case version, assessment and audit row to FILE, read in one snapshot (safe while the
    server works). The file holds patient data: it is created readable by its owner only."""
    from decidua.adapters.store import sqlite_path
    from decidua.adapters.store.backup import backup

    url = database_url_or_default(database_url)
    if file.is_dir():
        fail(f"FILE: {escape(str(file))} is a folder; allowed: a file name")
    path = sqlite_path(url)
    if path is not None and not path.exists():  # never back up a new, empty database made by mistake
        fail(
            f"--database-url: no database at {escape(str(path))}; give the URL `decidua serve` uses "
            "(--database-url or DECIDUA_DATABASE_URL)"
        )
    store = open_store_or_exit(url)
    try:
        with input_errors():
            summary = backup(store.engine, file)
    finally:
        store.engine.dispose()
    out_console.print(f"{file}: {describe(url)}, {summary.describe()}", soft_wrap=True)


@app.command("restore")
def restore_command(file: BackupFile, database_url: DatabaseUrl = None) -> None:
    """Restore FILE into an EMPTY database (a new SQLite file, or a new PostgreSQL database) and bring it to this
    decidua's schema; then point `decidua serve --database-url` at it. A database that holds data is refused.
    A backup of SQLite restores into PostgreSQL and the reverse. Everyone logs in again afterwards."""
    from sqlalchemy.exc import OperationalError

    from decidua.adapters.store import create_private_file, sqlite_path
    from decidua.adapters.store.backup import restore
    from decidua.adapters.store.sql import make_engine

    url = database_url_or_default(database_url)
    if not file.is_file():
        fail(f"FILE: no file at {escape(str(file))}")
    path = sqlite_path(url)
    if path is not None:
        create_private_file(path)
    try:
        engine = make_engine(url)
    except ModuleNotFoundError as exc:
        fail(f"--database-url: {escape(describe(url))} needs the {exc.name} driver: pip install 'decidua\\[postgres]'")
    try:
        with input_errors():
            summary = restore(engine, file)
    except OperationalError as exc:  # say which database, never its password
        fail(f"--database-url: cannot open {escape(describe(url))} ({type(exc.orig).__name__}); nothing was restored")
    finally:
        engine.dispose()
    out_console.print(f"{describe(url)}: restored {file} ({summary.describe()})", soft_wrap=True)
